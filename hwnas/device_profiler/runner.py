"""`hwnas profile`: measure every distinct block of a space into a latency table, resumably."""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.convert import check_precision
from hwnas.errors import HwnasError
from hwnas.io import OutputLock
from hwnas.space import SearchSpace, get_space

from .backends import BACKEND_FORMATS, BACKENDS, Backend, get_backend
from .blockmodels import RECIPE_VERSION, ModelCache, is_analytic
from .cores import default_jobs
from .measure import measure_block, more_passes, row_key, store_edges
from .presets import Preset, get_preset
from .ruler import refine_unit, supports_ruler, table_ruler
from .sidecar import check_table_out, dynamic, existing, now, provenance, table_meta

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProfileConfig:
    """One profiling job; ``None`` settings come from the device preset or the space."""

    device: str = "host"  # preset name or preset file
    backend: str | None = None  # adb | host-ort | host-litert (None: the preset's)
    space: str | SearchSpace = "fbnet"
    resolution: int | None = None
    precision: str | None = None  # int8 | fp32
    threads: int | None = None
    warmup: int = 10
    runs: int = 50
    repeats: int = 3
    out: Path | None = None  # default: latency_tables/<device-or-backend>_<space>_r<res>.csv
    resume: bool = False  # re-running the same command resumes too; this only documents it
    serial: str | None = None
    benchmark_binary: Path | None = None
    cores: str | None = None
    seed: int = 0
    num_classes: int | None = None
    width_mult: float | None = None
    cache_dir: Path | None = None
    limit: int | None = None  # measure at most this many new blocks in this call
    keys: tuple | None = None  # only these table keys (e.g. what some networks need)
    progress: bool | None = None
    edges: bool = True  # measure the block models' edges once the table is complete
    passes: int = 2  # once complete, every block is timed again in passes - 1 shuffled passes
    min_seconds: float | None = None  # host backends: each repeat runs at least this long
    # (None: the backend's ``default_min_seconds``)
    ruler: bool = True  # host backends: time every run in step with the reference (ruler.py)
    calibrate: int = 20  # once complete: whole networks fitting the calibration
    jobs: int | None = None  # processes converting model files first (None: usable cores)

    def __post_init__(self):
        if self.min_seconds is not None and not 0 <= self.min_seconds <= 60:
            raise HwnasError(f"--min-seconds must be in [0, 60] (got {self.min_seconds})")
        if self.passes < 1:
            raise HwnasError(f"--passes must be at least 1 (got {self.passes})")
        if self.calibrate < 0:
            raise HwnasError(f"--calibrate must be >= 0 (got {self.calibrate})")
        if self.jobs is not None and self.jobs < 1:
            raise HwnasError(f"--jobs must be at least 1 (got {self.jobs})")
        if self.warmup < 0 or self.runs < 1 or self.repeats < 1:
            raise HwnasError(
                f"need --warmup >= 0, --runs >= 1 and --repeats >= 1 (got "
                f"{self.warmup}, {self.runs}, {self.repeats})"
            )
        if self.threads is not None and self.threads < 1:
            raise HwnasError(f"--threads {self.threads} must be at least 1")
        if self.precision is not None:
            check_precision(self.precision)
        if self.backend is not None and self.backend not in BACKENDS:
            raise HwnasError(f"--backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.resolution is not None and self.resolution < 1:
            raise HwnasError(f"--resolution {self.resolution} must be positive")
        if self.benchmark_binary is not None and not Path(self.benchmark_binary).is_file():
            raise HwnasError(f"--benchmark-binary {self.benchmark_binary} is not a file")
        if self.limit is not None and self.limit < 0:
            raise HwnasError(f"limit {self.limit} must be >= 0")
        for name in ("out", "benchmark_binary", "cache_dir"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Path):
                object.__setattr__(self, name, Path(v))


@dataclass
class ProfileResult:
    """What a profile call did (the bench reads the split of conversion vs measurement)."""

    path: Path
    total: int  # distinct keys in the space
    measured: int = 0
    analytic: int = 0
    skipped: int = 0  # already in the table
    converted: int = 0
    conversion_s: float = 0.0
    measure_s: float = 0.0
    repeat_cvs: list = field(default_factory=list)
    backend: str = ""
    ruler: dict | None = None  # the table's ruler record (ruler.py), None without one


def resolve_space(cfg: ProfileConfig) -> SearchSpace:
    if isinstance(cfg.space, SearchSpace):
        return cfg.space
    try:
        return get_space(
            cfg.space,
            resolution=cfg.resolution,
            num_classes=cfg.num_classes,
            width_mult=cfg.width_mult,
        )
    except KeyError as e:
        raise HwnasError(e.args[0]) from None


def default_out(preset: Preset, backend: str, space: SearchSpace, precision: str) -> Path:
    who = preset.name if backend == "adb" else backend
    tail = "" if precision == "int8" else f"_{precision}"
    return Path("latency_tables") / f"{who}_{space.name}_r{space.resolution}{tail}.csv"


def _adb_ready(serial: str | None) -> bool:
    """Whether an ADB device (``serial``, or any) answers; False when adb support is absent."""
    try:
        from hwnas.device_profiler.adb import find_devices
    except ImportError:
        return False
    try:
        found = find_devices([serial] if serial else [], timeout_s=5.0)
    except HwnasError:
        return False
    return any(d.state == "device" and (serial is None or d.serial == serial) for d in found)


def choose_backend(cfg: ProfileConfig, preset: Preset) -> tuple[str, str | None]:
    """(backend name, fallback note). A preset's adb backend falls back to the host when no
    device answers; an explicit ``--backend adb`` does not."""
    name = cfg.backend or preset.backend
    if name != "adb" or _adb_ready(cfg.serial):
        return name, None
    where = f" at {cfg.serial}" if cfg.serial else ""
    if cfg.backend == "adb":
        raise HwnasError(
            f"no ADB device found{where} (USB debugging on? for TCP pass --serial "
            f"HOST:PORT); or profile the host with --backend host-ort"
        )
    note = (
        f"no ADB device found{where} for {preset.name}: profiling this host with host-ort "
        f"instead (the table's provenance says host)"
    )
    return "host-ort", note


def make_backend(
    name: str, cfg: ProfileConfig, precision: str, threads: int, host_cores: str | None = None
) -> Backend:
    """The backend to profile with; a host backend is pinned to ``host_cores`` (default:
    the last ``threads`` cores this process may run on)."""
    if name == "adb":
        return get_backend(
            "adb",
            serial=cfg.serial,
            benchmark_binary=cfg.benchmark_binary,
            cores=cfg.cores,
            threads=threads,
            precision=precision,
        )
    return get_backend(name, threads=threads, precision=precision, seed=cfg.seed, cores=host_cores)


def profile(cfg: ProfileConfig, *, backend: Backend | None = None) -> Path:
    """Profile ``cfg``'s space into its table; returns the CSV path."""
    return profile_run(cfg, backend=backend).path


def profile_host(space: SearchSpace, out: Path) -> Path:
    """Profile this host with ONNX Runtime (``host-ort``) into ``out``, default settings: what
    a search runs when no table for its space exists yet."""
    return profile(ProfileConfig(space=space, backend="host-ort", device="host", out=out))


def profile_run(cfg: ProfileConfig, *, backend: Backend | None = None, log=None) -> ProfileResult:
    """Measure every key of the space not yet in the table, in a seeded shuffled order,
    writing CSV + sidecar atomically after each block (an interrupt loses at most the
    block in flight; running again continues)."""
    log = log or logger.info
    preset = get_preset(cfg.device)
    space = resolve_space(cfg)
    precision = cfg.precision or preset.precision
    threads = cfg.threads or preset.threads
    note = None
    if backend is None:
        name, note = choose_backend(cfg, preset)
        if note:
            log(note)
        # --cores of a phone preset that fell back to the host name the phone's cores
        pin = None if note else cfg.cores or (None if preset.is_phone else preset.cores)
        backend = make_backend(name, cfg, precision, threads, pin)
    fmt = getattr(backend, "model_format", BACKEND_FORMATS.get(backend.name, "tflite"))
    if hasattr(backend, "min_seconds"):  # a 10 µs block x 50 runs is 0.5 ms: too short for
        if cfg.min_seconds is None:  # the CPU to settle (pass medians 50% apart on host-ort)
            cfg = dataclasses.replace(
                cfg, min_seconds=getattr(backend, "default_min_seconds", 0.05)
            )
        backend.min_seconds = cfg.min_seconds
    out = cfg.out or default_out(preset, backend.name, space, precision)
    job = _Job(cfg, space, backend, ModelCache.at(cfg.cache_dir, cfg.seed), fmt, precision, out)
    result = ProfileResult(out, 0, backend=backend.name)
    lock = OutputLock(out, also=[out.with_suffix(".json")])  # the table and its sidecar
    try:
        check_table_out(out)
        lock.acquire()  # one writer per table; removes a killed run's temporaries
        _fill(job, provenance(backend, preset, note), result, log)
    finally:
        lock.release()
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    return result


@dataclass
class _Job:
    """What one profile call measures with, and where it writes."""

    cfg: ProfileConfig
    space: SearchSpace
    backend: Backend
    cache: ModelCache
    fmt: str
    precision: str
    out: Path


def _fill(job: _Job, prov: dict, result: ProfileResult, log) -> None:
    """Measure the blocks the table lacks (under the output lock), then, once it has every
    block asked for, the extra passes and the edges."""
    from hwnas.latency import write_table_atomic
    from hwnas.progress import progress_bar

    cfg, space, backend, out = job.cfg, job.space, job.backend, job.out
    rows, old_meta = existing(out, space, prov)
    done = {row_key(r) for r in rows}
    infos = space.all_layer_infos()
    random.Random(cfg.seed).shuffle(infos)  # drift spreads evenly over block types
    if cfg.keys is not None:
        wanted = {tuple(k) for k in cfg.keys}
        infos = [i for i in infos if i.key in wanted]
    todo = [i for i in infos if i.key not in done]
    result.total, result.skipped = len(infos), len(infos) - len(todo)
    complete = cfg.limit is None or cfg.limit >= len(todo)  # after this run
    if cfg.limit is not None:
        todo = todo[: cfg.limit]
    _prefetch(job, todo, complete, old_meta, result, log)
    known = old_meta.get("provenance", {}).get("ruler")
    if known or (cfg.ruler and not rows):  # a table keeps how it began, with or without
        record = table_ruler(space, backend, job.cache, known, log)  # a known unit is kept
        if record:
            prov, result.ruler = {**prov, "ruler": record}, record
    meta = table_meta(cfg, space, job.fmt, prov, old_meta)
    refine = (out, rows, meta)
    if rows and not todo:
        more_passes(*refine, infos, backend, job.cache, job.fmt, job.precision, cfg)
        store_edges(*refine, space, backend, job.cache, job.fmt, job.precision, cfg, log)
        _calibrate(job, log)
        return
    old_recipe = old_meta.get("profile", {}).get("recipe", 1) if rows else RECIPE_VERSION
    if old_recipe != RECIPE_VERSION:
        raise HwnasError(
            f"{out} holds blocks made with model recipe {old_recipe}, this hwnas "
            f"makes recipe {RECIPE_VERSION}; delete it or choose another --out"
        )
    started = old_meta.get("provenance", {}).get("date_started")
    meta["provenance"]["date_started"] = started or now()
    with progress_bar(f"profiling {space.name} on {backend.name}", len(infos), cfg.progress) as bar:
        bar.update(completed=result.skipped)
        for info in todo:
            label = "/".join(map(str, info.key))
            bar.update(status=label)
            rows.append(
                measure_block(info, backend, job.cache, job.fmt, job.precision, cfg, result)
            )
            meta["provenance"] = {
                **prov,
                **dynamic(backend),
                "date_started": meta["provenance"]["date_started"],
                "date": now(),
            }
            write_table_atomic(out, rows, meta)
            bar.advance(1, status=label)
    if complete:
        more_passes(*refine, infos, backend, job.cache, job.fmt, job.precision, cfg)
        if result.ruler and not known and result.skipped == 0:  # begun and done in this call
            refine_unit(result.ruler, backend, rows, log)
            write_table_atomic(out, rows, meta)
        store_edges(*refine, space, backend, job.cache, job.fmt, job.precision, cfg, log)
        _calibrate(job, log)


def _prefetch(job: _Job, todo: list, complete: bool, meta: dict, result, log) -> None:
    """Convert, ``cfg.jobs`` processes at a time, every model file this call will time and
    the cache lacks (the ruler, the blocks in ``todo``, and once the table is ``complete``
    the edges' models and the calibration's networks), before any timing starts: timings
    then run alone, and the int8 TFLite path, bound by the converter's ~3 s per block, is
    as many times faster."""
    from .edges import edge_keys
    from .validate import sample_archs

    cfg, space, cache, fmt, precision = job.cfg, job.space, job.cache, job.fmt, job.precision
    jobs = [cache.block_job(i, fmt, precision) for i in todo if not is_analytic(i)]
    archs = []
    if supports_ruler(job.backend) and (cfg.ruler or meta.get("provenance", {}).get("ruler")):
        archs += sample_archs(space, 0, cfg.seed)[:1]  # the ruler (ruler_model)
    if complete and cfg.keys is None:
        pairs = edge_keys(space)
        if cfg.edges and "edges" not in meta and len(pairs) >= 3:  # as measure_edges needs
            jobs += [cache.block_job(i, fmt, precision, 2) for i in pairs]
        if cfg.calibrate and "fitted_on" not in meta.get("calibration", {}):
            refs = len(sample_archs(space, 0, cfg.seed))  # as _calibrate asks validate
            archs += sample_archs(space, max(0, cfg.calibrate - refs), cfg.seed)
    jobs += [cache.network_job(space, a, fmt, precision) for a in archs]
    workers = default_jobs(cfg.jobs)
    start = time.perf_counter()
    result.converted += cache.prefetch(jobs, fmt, precision, workers, cfg.progress, log)
    result.conversion_s += time.perf_counter() - start


def _calibrate(job: _Job, log) -> None:
    """Once the table has every block of the space: time ``cfg.calibrate`` whole networks
    (the space's references and seeded random ones) and store the calibration fitted on
    them with its held-out figures (``tables validate``), unless the table has one fitted on
    networks already.  The profile's own edges alone predicted 34 held-out fbnet-small
    networks within ±10% for 9–85% of them from run to run; fitted on 20 networks, 97–100%."""
    from hwnas.latency import LatencyTable

    from .validate import ValidateConfig, sample_archs, validate

    cfg = job.cfg
    table = LatencyTable.load(job.out)
    if cfg.calibrate == 0 or cfg.keys is not None or "fitted_on" in table.calibration:
        return
    references = len(sample_archs(job.space, 0, cfg.seed))
    report = validate(
        ValidateConfig(
            table=job.out,
            samples=max(0, cfg.calibrate - references),
            seed=cfg.seed,
            cache_dir=cfg.cache_dir,
            progress=cfg.progress,
            jobs=cfg.jobs,
        ),
        backend=job.backend,
        space=job.space,
        log=log,
    )
    h = report["held_out_calibrated"]
    log(
        f"calibrated on {report['networks']} whole networks ({report['calibration']['model']}); "
        f"held out ({h['n']}): {100 * h['within_10pct']:.0f}% within ±10%, MAPE "
        f"{h['mape_pct']:.1f}%; scatter plot {report['plot']}"
    )
    if report.get("in_network"):
        from .opprofile import in_network_line

        log(in_network_line(report["in_network"]))


__all__ = [
    "ProfileConfig",
    "ProfileResult",
    "profile",
    "profile_host",
    "profile_run",
    "resolve_space",
    "default_out",
    "choose_backend",
]
