"""`hwnas tables validate`: table sums vs measured whole networks; fit and store a calibration."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.errors import HwnasError
from hwnas.io import save_figure
from hwnas.stats import kendall_tau

from .backends import (
    HOST_BACKENDS,
    Backend,
    available_cores,
    backend_from_provenance,
    core_list,
    host_cores,
    measure_file,
    parse_core_list,
)
from .blockmodels import CONSTANT_BLOCKS, ModelCache


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

    def __post_init__(self):
        if self.rounds < 1:
            raise HwnasError(f"--rounds {self.rounds} must be at least 1")
        if self.samples < 0:
            raise HwnasError(f"--samples {self.samples} must be >= 0")
        if not 0.0 < self.fit_fraction < 1.0:
            raise HwnasError(f"--fit-fraction {self.fit_fraction} must be between 0 and 1")
        object.__setattr__(self, "table", Path(self.table))


# --------------------------------------------------------------------------- metrics


def metrics(pred, meas) -> dict:
    """MAPE (%), RMSE (ms), share within ±5% / ±10%, Kendall τ, n."""
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    if pred.size == 0:
        return {"n": 0}
    rel = (pred - meas) / meas
    return {
        "n": int(pred.size),
        "mape_pct": float(100 * np.abs(rel).mean()),
        "rmse_ms": float(np.sqrt(((pred - meas) ** 2).mean())),
        "within_5pct": float((np.abs(rel) <= 0.05).mean()),
        "within_10pct": float((np.abs(rel) <= 0.10).mean()),
        "mean_error_pct": float(100 * rel.mean()),
        "kendall_tau": kendall_tau(pred, meas),
    }


# --------------------------------------------------------------------------- calibration


COUNT = "#layers"  # in a sums dict: how many measured (non-identity) layers the network has
ELEMENTS = "#elements"  # ... and their input + output tensor elements, summed


def type_sums(table, space, arch) -> dict[str, float]:
    """Σ of uncalibrated layer latencies (ms) per op type (key prefix) of one network, and
    under ``COUNT`` its number of measured layers and under ``ELEMENTS`` their tensor
    elements (the multipliers of the per-layer and per-element edge terms)."""
    from hwnas.latency import key_elements

    out: dict[str, float] = {COUNT: 0.0, ELEMENTS: 0.0}
    for info in space.layers(arch):
        t = info.key[0].split("_")[0]
        ms = table.lookup(info.key)
        out[t] = out.get(t, 0.0) + ms
        if ms > 0:
            out[COUNT] += 1.0
            out[ELEMENTS] += key_elements(info.key)
    return out


def _types(sums: dict[str, float]) -> dict[str, float]:
    return {t: v for t, v in sums.items() if t not in (COUNT, ELEMENTS)}


def raw_total(sums: dict[str, float]) -> float:
    return sum(_types(sums).values())


def _apply(cal: dict, sums: dict[str, float]) -> float:
    """The same prediction as ``LatencyTable.predict`` under ``cal``."""
    per = cal.get("per_type", {})
    return (
        cal["scale"] * sum(per.get(t, 1.0) * v for t, v in _types(sums).items())
        + cal.get("per_layer_ms", 0.0) * sums.get(COUNT, 0.0)
        + cal.get("per_element_ms", 0.0) * sums.get(ELEMENTS, 0.0)
        + cal["offset_ms"]
    )


def fit_affine(sums: list[dict], meas) -> dict:
    """measured ≈ scale · Σ blocks + offset (least squares; offset only for < 3 networks)."""
    raw = np.array([raw_total(s) for s in sums])
    meas = np.asarray(meas, float)
    if len(raw) < 3 or np.ptp(raw) <= 1e-9 * max(raw.max(), 1e-12):
        return {"scale": 1.0, "offset_ms": float((meas - raw).mean()), "per_type": {}}
    (a, b), *_ = np.linalg.lstsq(np.stack([raw, np.ones_like(raw)], 1), meas, rcond=None)
    if a <= 0:
        return {"scale": 1.0, "offset_ms": float((meas - raw).mean()), "per_type": {}}
    return {"scale": float(a), "offset_ms": float(b), "per_type": {}}


def fit_per_type(sums: list[dict], meas) -> dict | None:
    """measured ≈ Σ_t c_t · Σ_{blocks of type t} + offset, for op types whose sums vary over
    the networks (the rest share one factor); None when the data cannot support it."""
    meas = np.asarray(meas, float)
    types = sorted({t for s in sums for t in _types(s)})
    cols = {t: np.array([s.get(t, 0.0) for s in sums]) for t in types}
    varying = [
        t
        for t in types  # blocks in every network: their factor is the offset's
        if t not in CONSTANT_BLOCKS and np.ptp(cols[t]) > 1e-6
    ]
    rest = [t for t in types if t not in varying]
    if not varying or len(meas) < len(varying) + 4:
        return None
    design = [cols[t] for t in varying]
    rest_sum = sum((cols[t] for t in rest), np.zeros(len(meas)))
    has_rest = np.ptp(rest_sum) > 1e-6
    if has_rest:
        design.append(rest_sum)
    design.append(np.ones(len(meas)))
    coef, *_ = np.linalg.lstsq(np.stack(design, 1), meas, rcond=None)
    k = len(varying)
    if (coef[:k] <= 0).any() or (has_rest and coef[k] <= 0):
        return None
    per = {t: float(c) for t, c in zip(varying, coef[:k])}
    rest_factor = float(coef[k]) if has_rest else 1.0
    per.update({t: rest_factor for t in rest})
    return {"scale": 1.0, "offset_ms": float(coef[-1]), "per_type": per}


def fit_overhead(sums: list[dict], meas) -> dict | None:
    """measured ≈ scale · Σ blocks + per_layer · (measured layers) + offset: standalone block
    timings each carry a per-invoke overhead a whole network pays once, so the per-layer term
    comes out negative; None when the data cannot support it."""
    meas = np.asarray(meas, float)
    raw = np.array([raw_total(s) for s in sums])
    n = np.array([s.get(COUNT, 0.0) for s in sums])
    if len(meas) < 5 or np.ptp(n) <= 0 or np.ptp(raw) <= 0:
        return None
    (a, c, b), *_ = np.linalg.lstsq(np.stack([raw, n, np.ones_like(raw)], 1), meas, rcond=None)
    if a <= 0:
        return None
    return {"scale": float(a), "offset_ms": float(b), "per_type": {}, "per_layer_ms": float(c)}


def fit_edges(edges: dict, space):
    """Fits on top of the edges ``hwnas profile`` measured (``edges.py``): the measured
    per-layer and per-element edge terms stay, scale and offset are fitted on whole networks
    (least squares on the edge-corrected sums)."""
    from .edges import edge_calibration

    base = edge_calibration(edges, space)

    def fit(sums: list[dict], meas) -> dict | None:
        meas = np.asarray(meas, float)
        x = np.array(
            [
                raw_total(s)
                + base["per_layer_ms"] * s.get(COUNT, 0.0)
                + base["per_element_ms"] * s.get(ELEMENTS, 0.0)
                for s in sums
            ]
        )
        if len(meas) < 3 or np.ptp(x) <= 0:
            return None
        (a, b), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), meas, rcond=None)
        if a <= 0:
            return None
        return {
            "scale": float(a),
            "offset_ms": float(b),
            "per_type": {},
            "per_layer_ms": float(a * base["per_layer_ms"]),
            "per_element_ms": float(a * base["per_element_ms"]),
        }

    return fit


def _loo_mape(fit, sums, meas) -> float:
    errs = []
    for i in range(len(meas)):
        keep = [j for j in range(len(meas)) if j != i]
        cal = fit([sums[j] for j in keep], [meas[j] for j in keep])
        if cal is None:
            return float("inf")
        errs.append(abs(_apply(cal, sums[i]) - meas[i]) / meas[i])
    return float(100 * np.mean(errs)) if errs else float("inf")


def fit_calibration(sums: list[dict], meas, edges_fit=None) -> dict:
    """The affine, per-op-type, per-layer-overhead or (with ``edges_fit``, ``fit_edges``)
    measured-edges calibration, whichever has the lowest leave-one-out MAPE."""
    best, kind, err = fit_affine(sums, meas), "affine", _loo_mape(fit_affine, sums, meas)
    fits = [("per_type", fit_per_type), ("overhead", fit_overhead)]
    if edges_fit is not None:
        fits.append(("edges", edges_fit))
    for name, fit in fits:
        cal = fit(sums, meas)
        if cal is not None:
            loo = _loo_mape(fit, sums, meas)
            if loo < err:
                best, kind, err = cal, name, loo
    return {**best, "model": kind, "fitted_on": len(meas)}


# --------------------------------------------------------------------------- validate


def table_backend(table, cfg: ValidateConfig, log=None) -> Backend:
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
        cores = check_host_cores(table, cfg.cores, log or (lambda m: print(m, file=sys.stderr)))
    phone = prov.get("device") if name == "adb" else None
    return backend_from_provenance(
        prov,
        serial=cfg.serial or (phone or {}).get("serial"),
        benchmark_binary=cfg.benchmark_binary,
        cores=cores,
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

    log = log or (lambda m: print(m, file=sys.stderr))
    table = LatencyTable.load(cfg.table)
    space = space or table.space()
    table.check_space(space)
    prof = table.meta.get("profile", {})
    warmup, runs = (int(prof.get(k, d)) for k, d in (("warmup", 10), ("runs", 50)))
    own = backend is None
    backend = backend or table_backend(table, cfg, log)
    if hasattr(backend, "min_seconds"):  # short windows measured 50% apart run to run
        backend.min_seconds = cfg.min_seconds
    cache = ModelCache.at(cfg.cache_dir, int(prof.get("seed", 0)))
    archs = sample_archs(space, cfg.samples, cfg.seed)
    records = []
    try:
        with progress_bar(
            f"validating {table.path.name}", len(archs) * (cfg.rounds + 1), cfg.progress
        ) as bar:
            for arch in archs:  # convert (cached) every network before timing any
                bar.update(status=arch.name)
                sums = type_sums(table, space, arch)  # raises on missing keys, before work
                built = cache.network(space, arch, backend.model_format, backend.precision)
                records.append(
                    {
                        "name": arch.name,
                        "choices": list(arch.choices),
                        "raw_ms": raw_total(sums),
                        "sums_ms": sums,
                        "round_ms": [],
                        "path": built.path,
                        "conversion_s": round(built.seconds, 3),
                    }
                )
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
    finally:
        if own and hasattr(backend, "close"):
            backend.close()
    for rec in records:
        rec["measured_ms"] = float(np.median(rec.pop("round_ms")))
        rec.pop("path")
    report = _report(records, cfg, table, space)
    if cfg.save:
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
        saved.save(table.path)
    report["plot"] = str(_plot(records, report, cfg.plot or _beside(table.path, ".validate.png")))
    return report


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
    edges_fit = fit_edges(edges, space) if edges else None
    split_cal = fit_calibration([sums[i] for i in fit_idx], meas[fit_idx], edges_fit)
    for i, r in enumerate(records):
        r["held_out"] = i in hold_idx
        r["calibrated_ms"] = _apply(split_cal, sums[i])
    final = fit_calibration(sums, meas, edges_fit)
    extra = {}
    if edges:  # what the profile's own measurement predicts, before any network is fitted
        from .edges import edge_calibration

        edge_pred = np.array([_apply(edge_calibration(edges, space), s) for s in sums])
        extra = {
            "held_out_edges": metrics(edge_pred[hold_idx], meas[hold_idx]),
            "all_edges": metrics(edge_pred, meas),
        }
    final_pred = np.array([_apply(final, s) for s in sums])
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
    "metrics",
    "kendall_tau",
    "fit_calibration",
    "fit_affine",
    "fit_per_type",
    "fit_overhead",
    "fit_edges",
    "type_sums",
    "sample_archs",
]
