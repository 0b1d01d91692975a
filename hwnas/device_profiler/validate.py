"""`hwnas tables validate`: table sums vs measured whole networks; fit and store a calibration."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.errors import HwnasError
from hwnas.io import atomic_write_rows, save_figure

from .backends import (
    HOST_BACKENDS,
    Backend,
    backend_from_provenance,
    measure_file,
)
from .blockmodels import ModelCache
from .cores import available_cores, core_list, default_jobs, host_cores, parse_core_list
from .opprofile import block_times, profiled_ms, summarize
from .calibration import (
    apply_calibration,
    fit_calibration,
    fit_edges,
    metrics,
    raw_total,
    type_sums,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidateConfig:
    table: Path
    samples: int = 30  # random architectures, besides the space's reference ones
    seed: int = 0
    fit_fraction: float = 0.5  # share of the networks the calibration is fitted on
    serial: str | None = None  # adb tables only
    benchmark_binary: Path | None = None
    cores: str | None = None  # phone or host cores (default: the table's)
    threads: int | None = None  # default: the table's; another count is refused
    cache_dir: Path | None = None
    plot: Path | None = None  # default: <table>.validate.png
    save: bool = True  # store the calibration (fitted on all networks) in the sidecar
    rounds: int = 3  # passes over all networks, each shuffled; median of the round medians
    min_seconds: float = 0.2  # host backends: each network times at least this long a round
    progress: bool | None = None
    jobs: int | None = None  # processes converting the networks first (None: usable cores)
    op_profile: bool = True  # also profile each network per operator: its blocks' own times

    def __post_init__(self):
        if self.rounds < 1:
            raise HwnasError(f"--rounds {self.rounds} must be at least 1")
        if self.jobs is not None and self.jobs < 1:
            raise HwnasError(f"--jobs must be at least 1 (got {self.jobs})")
        if self.samples < 0:
            raise HwnasError(f"--samples {self.samples} must be >= 0")
        if not 0.0 < self.fit_fraction < 1.0:
            raise HwnasError(f"--fit-fraction {self.fit_fraction} must be between 0 and 1")
        object.__setattr__(self, "table", Path(self.table))


# --------------------------------------------------------------------------- validate


def table_backend(table, cfg: ValidateConfig, log=None, space=None) -> Backend:
    """The backend and settings that built ``table``: its threads (another ``cfg.threads``
    is an error: the blocks were timed with the table's), on the host its pinned cores
    (``check_host_cores``)."""
    prov = table.provenance
    name = prov.get("backend")
    if name is None:
        raise HwnasError(f"{table.path}: its provenance names no backend; cannot re-measure")
    threads = int(prov.get("threads") or 1)
    if cfg.threads is not None and cfg.threads != threads:
        raise HwnasError(
            f"{table.path} was measured with {threads} thread(s), --threads "
            f"{cfg.threads} would time the networks differently from its blocks; "
            f"drop --threads, or profile again with --threads {cfg.threads}"
        )
    cores = cfg.cores
    if name in HOST_BACKENDS:
        cores = check_host_cores(table, cfg.cores, log or logger.info)
    phone = prov.get("device") if name == "adb" else None
    return backend_from_provenance(
        prov,
        serial=cfg.serial or (phone or {}).get("serial"),
        benchmark_binary=cfg.benchmark_binary,
        cores=cores,
        space=space,
    )


def check_host_cores(table, asked: str | None, log) -> tuple[int, ...] | None:
    """The cores to validate a host table on.  Its own pinned cores when this machine has
    them (``asked`` must then be those: other cores would time the networks unlike the
    blocks, an error); when it lacks them (fewer cores here than where the table was
    measured) ``asked`` or the default, with a warning; for a table that recorded none
    (measured unpinned) a note.  None: the backend's default."""
    prov = table.provenance
    name = table.path.name if table.path else "the table"
    threads = int(prov.get("threads") or 1)
    avail = available_cores()
    want = parse_core_list(asked) if asked else None
    if avail is None:
        return want  # the backend says this OS cannot pin, if asked
    now = want or host_cores(None, threads)
    theirs = prov.get("cores")
    if not theirs:
        log(
            f"note: {name} records no pinned cores (measured unpinned); validating pinned "
            f"to cores {core_list(now)}"
        )
        return want
    theirs = tuple(sorted(int(c) for c in theirs))
    if set(theirs) <= set(avail) and len(theirs) >= threads:
        if want is not None and want != theirs:
            raise HwnasError(
                f"{name} was measured pinned to cores {core_list(theirs)}, "
                f"--cores {asked} would time the networks on other cores than "
                f"its blocks; drop --cores, or profile again with --cores {asked}"
            )
        return theirs
    log(
        f"warning: {name} was measured pinned to cores {core_list(theirs)} "
        f"({prov.get('host_cores', '?')} on its machine); this one offers only "
        f"{core_list(avail)}: validating on cores {core_list(now)}, so the figures mix "
        f"two settings"
    )
    return want


def sample_archs(space, samples: int, seed: int) -> list:
    """The space's reference architectures, then ``samples`` seeded random ones."""
    from hwnas.space import Arch, random_arch, reference_arch, reference_names

    archs = []
    for name in reference_names(space):
        try:
            archs.append(reference_arch(space, name))
        except (KeyError, ValueError, IndexError, StopIteration):
            continue  # a custom space whose layout the reference does not fit
    rng = random.Random(seed)
    archs += [
        Arch.of(space, random_arch(space, rng=rng).choices, f"random-{seed}-{i}")
        for i in range(samples)
    ]
    return archs


def validate(cfg: ValidateConfig, *, backend: Backend | None = None, space=None, log=None) -> dict:
    """Measure sampled + reference networks end to end on the table's backend; report
    predicted vs measured before/after calibration on held-out networks; store the
    calibration (refitted on all networks) unless ``cfg.save`` is False."""
    from hwnas.latency import LatencyTable
    from hwnas.progress import progress_bar

    log = log or logger.info
    table = LatencyTable.load(cfg.table)
    space = space or table.space()
    table.check_space(space)
    prof = table.meta.get("profile", {})
    warmup, runs = (int(prof.get(k, d)) for k, d in (("warmup", 10), ("runs", 50)))
    own = backend is None
    backend = backend or table_backend(table, cfg, log, space)
    if hasattr(backend, "min_seconds"):  # short windows measured 50% apart run to run
        backend.min_seconds = cfg.min_seconds
    cache = ModelCache.at(cfg.cache_dir, int(prof.get("seed", 0)))
    archs = sample_archs(space, cfg.samples, cfg.seed)
    fmt, precision = backend.model_format, backend.precision
    records = []
    try:
        cache.prefetch(  # int8 TFLite networks: ~10 s each in the converter, so in parallel
            [cache.network_job(space, a, fmt, precision) for a in archs],
            fmt,
            precision,
            default_jobs(cfg.jobs),
            cfg.progress,
            log,
        )
        profiled = cfg.op_profile and hasattr(backend, "op_times")
        steps = len(archs) * (cfg.rounds + 1 + profiled)
        with progress_bar(f"validating {table.path.name}", steps, cfg.progress) as bar:
            for arch in archs:  # convert (cached) every network before timing any
                bar.update(status=arch.name)
                records.append(_converted(table, space, arch, cache, backend))
                bar.advance(1)

            def timed(path) -> float:
                return measure_file(backend, path, warmup=warmup, runs=runs, repeats=1)["median_ms"]

            rng = random.Random(cfg.seed + 2)
            for _ in range(cfg.rounds):  # each round shuffled: a burst hits one round
                order = list(records)
                rng.shuffle(order)
                for rec in order:
                    rec["round_ms"].append(timed(rec["path"]))
                    bar.advance(1)
            for rec in records:
                rec["measured_ms"] = float(np.median(rec.pop("round_ms")))
            blocks = (
                _in_network(records, archs, table, space, backend, (warmup, runs), bar)
                if profiled
                else None
            )
    finally:
        if own and hasattr(backend, "close"):
            backend.close()
    for rec in records:
        rec.pop("path")
    report = _report(records, cfg, table, space)
    if blocks is not None and blocks[1]:  # at least one network profiled
        report["in_network"] = {"profiler": backend.op_profiler, **summarize(blocks[0], blocks[1])}
        path = _beside(table.path, ".in_network.csv")
        atomic_write_rows(path, blocks[0])
        report["in_network"]["csv"] = str(path)
    if blocks is not None and blocks[2]:
        log(f"note: {blocks[2]}")
    elif blocks is None and cfg.op_profile:
        log(
            f"note: {backend.name} has no per-operator profiler (LiteRT's Python API offers "
            f"none), so the blocks' own times inside the networks were not measured"
        )
    if cfg.save:
        _store(table, report)
    report["plot"] = str(_plot(records, report, cfg.plot or _beside(table.path, ".validate.png")))
    return report


def _in_network(records, archs, table, space, backend, counts, bar):
    """Each network profiled per operator once (``backend.op_times``), its nodes given to
    its layers (``opprofile.block_times``): (one row per measured layer — the table's
    standalone time and the layer's time inside that network —, one row per network, a
    note when some time could not be given to layers).  A layer's time is its share of the
    profiled time times the network's measured latency: profilers slow every node (ONNX
    Runtime's made 0.35 ms networks take 1.9× as long), so their sums are not latencies."""
    from hwnas.latency import key_type
    from hwnas.space.builder import module_name

    rows, nets, notes = [], [], set()
    warmup, runs = counts
    for rec, arch in zip(records, archs):
        bar.update(status=f"profiling {arch.name}")
        try:
            ops = backend.op_times(rec["path"], warmup=warmup, runs=runs)
        except HwnasError as e:  # a report beside the calibration: never worth losing it
            notes.add(f"per-operator profiles stopped at {arch.name}: {e}")
            break
        layers = space.layers(arch)
        modules = [module_name(i.name) for i in layers]
        tflite = rec["path"] if backend.model_format == "tflite" else None
        per, note = block_times(ops, modules, tflite)
        notes.update([note] if note else [])
        measured = rec["measured_ms"]
        profiled = profiled_ms(ops)
        scale = measured / profiled if profiled > 0 else 0.0
        for info, mod in zip(layers, modules):
            row = {
                "network": arch.name,
                "layer": info.name,
                "op": info.key[0],
                "type": key_type(info.key),
                "table_ms": table.lookup(info.key),
                "in_network_ms": scale * per.get(mod, 0.0),
            }
            if row["table_ms"] > 0 or row["in_network_ms"] > 0:  # identity layers: neither
                rows.append(row)
        nets.append(
            {
                "network": arch.name,
                "measured_ms": measured,
                "profiled_ms": profiled,
                "blocks_ms": sum(per.values()),
            }
        )
        bar.advance(1)
    return rows, nets, " ".join(sorted(notes))  # rows of the networks profiled before a stop


def _converted(table, space, arch, cache, backend) -> dict:
    """``arch``'s record before timing: its table sums and its converted (cached) file."""
    sums = type_sums(table, space, arch)  # raises on missing keys, before work
    built = cache.network(space, arch, backend.model_format, backend.precision)
    return {
        "name": arch.name,
        "choices": list(arch.choices),
        "raw_ms": raw_total(sums),
        "sums_ms": sums,
        "round_ms": [],
        "path": built.path,
        "conversion_s": round(built.seconds, 3),
    }


def _store(table, report: dict) -> None:
    """Save the calibration fitted on all networks in the table, with the held-out figures."""
    saved = table.with_calibration(report["calibration"])
    h = report["held_out_calibrated"]
    if h.get("n"):
        saved.meta["validation"] = {
            "held_out": h["n"],
            "within_10pct": h["within_10pct"],
            "within_5pct": h["within_5pct"],
            "mape_pct": h["mape_pct"],
            "kendall_tau": h["kendall_tau"],
            "fit_networks": report["fit_networks"],
        }
    if "in_network" in report:
        saved.meta["in_network"] = {k: v for k, v in report["in_network"].items() if k != "csv"}
    saved.save(table.path)


def _report(records: list[dict], cfg: ValidateConfig, table, space) -> dict:
    n = len(records)
    order = list(range(n))
    random.Random(cfg.seed + 1).shuffle(order)
    n_fit = min(max(1, round(cfg.fit_fraction * n)), n - 1) if n > 1 else n
    fit_idx, hold_idx = order[:n_fit], order[n_fit:]
    sums = [r["sums_ms"] for r in records]
    meas = np.array([r["measured_ms"] for r in records])
    raw = np.array([r["raw_ms"] for r in records])
    edges = table.meta.get("edges")
    edge_fits = fit_edges(edges, space) if edges else ()
    split_cal = fit_calibration([sums[i] for i in fit_idx], meas[fit_idx], edge_fits)
    for i, r in enumerate(records):
        r["held_out"] = i in hold_idx
        r["calibrated_ms"] = apply_calibration(split_cal, sums[i])
    final = fit_calibration(sums, meas, edge_fits)
    extra = {}
    if edges:  # what the profile's own measurement predicts, before any network is fitted
        from .edges import edge_calibration

        edge_pred = np.array([apply_calibration(edge_calibration(edges, space), s) for s in sums])
        extra = {
            "held_out_edges": metrics(edge_pred[hold_idx], meas[hold_idx]),
            "all_edges": metrics(edge_pred, meas),
        }
    final_pred = np.array([apply_calibration(final, s) for s in sums])
    return {
        "table": str(table.path),
        "space": table.meta["space"],
        "backend": table.provenance.get("backend"),
        "device": table.provenance.get("device"),
        "networks": n,
        "fit_networks": len(fit_idx),
        "held_out_networks": len(hold_idx),
        "all_raw": metrics(raw, meas),
        "held_out_raw": metrics(raw[hold_idx], meas[hold_idx]),
        **extra,
        "held_out_calibrated": metrics(
            [records[i]["calibrated_ms"] for i in hold_idx], meas[hold_idx]
        ),
        "split_calibration": split_cal,
        "calibration": final,
        "all_calibrated_in_sample": metrics(final_pred, meas),
        "records": records,
    }


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.stem + suffix)


def _plot(records: list[dict], report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meas = np.array([r["measured_ms"] for r in records])
    fig, ax = plt.subplots(figsize=(5.5, 5))
    held = np.array([r["held_out"] for r in records])
    raw = np.array([r["raw_ms"] for r in records])
    cal = np.array([r["calibrated_ms"] for r in records])
    ax.scatter(meas, raw, s=18, marker="x", c="tab:gray", label="Σ blocks (raw)")
    ax.scatter(meas[held], cal[held], s=22, c="tab:blue", label="calibrated (held out)")
    ax.scatter(
        meas[~held],
        cal[~held],
        s=22,
        facecolors="none",
        edgecolors="tab:blue",
        label="calibrated (fit set)",
    )
    lo, hi = 0.9 * min(meas.min(), raw.min()), 1.1 * max(meas.max(), raw.max())
    xs = np.linspace(lo, hi, 2)
    ax.plot(xs, xs, "k-", lw=1)
    for f in (0.9, 1.1):
        ax.plot(xs, f * xs, "k:", lw=0.8)
    h = report["held_out_calibrated"]
    ax.set(
        xlabel="measured (ms)",
        ylabel="predicted (ms)",
        xlim=(lo, hi),
        ylim=(lo, hi),
        title=f"{report['space']['name']} on {report['backend']}: held-out "
        f"MAPE {h.get('mape_pct', float('nan')):.1f}%",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path


__all__ = [
    "ValidateConfig",
    "validate",
    "sample_archs",
]
