"""Device backends behind one interface: measure a model file → latency samples (µs)."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from hwnas.convert import check_precision, ort_session
from hwnas.errors import HwnasError
from hwnas.io import native_stderr_quiet

from .blockmodels import random_input
from .cores import PINNING, available_cores, host_cores, pinned


@dataclass(frozen=True)
class Samples:
    """Latency samples in microseconds; ``per_repeat`` holds each repeat's median (host)."""

    us: tuple[float, ...]
    per_repeat: tuple[float, ...] = field(default=())
    ruler_factors: tuple[float, ...] = field(default=())  # per repeat: unit / ruler's median

    def stats(self) -> dict:
        """median_us, p10_us, p90_us, mean_us, std_us, runs (= number of samples)."""
        a = np.asarray(self.us, dtype=float)
        if a.size == 0:
            raise HwnasError("no latency samples to summarise")
        out = {
            "median_us": float(np.median(a)),
            "p10_us": float(np.percentile(a, 10)),
            "p90_us": float(np.percentile(a, 90)),
            "mean_us": float(a.mean()),
            "std_us": float(a.std()),
            "runs": int(a.size),
        }
        return out

    def repeat_cv(self) -> float | None:
        """Coefficient of variation of the per-repeat medians (drift between repeats)."""
        r = np.asarray(self.per_repeat or (), dtype=float)
        if r.size < 2 or r.mean() <= 0:
            return None
        return float(r.std(ddof=1) / r.mean())


class Backend(Protocol):
    name: str  # "adb" | "host-ort" | "host-litert"
    model_format: str  # "tflite" | "onnx"
    precision: str  # "int8" | "fp32"

    def measure(self, model_file: Path, *, warmup: int, runs: int, repeats: int) -> Samples: ...

    def provenance(self) -> dict: ...


def check_counts(warmup: int, runs: int, repeats: int) -> None:
    if warmup < 0 or runs < 1 or repeats < 1:
        raise HwnasError(
            f"need --warmup >= 0, --runs >= 1, --repeats >= 1 (got {warmup}, {runs}, {repeats})"
        )


def host_cpu() -> str:
    """The host CPU model from /proc/cpuinfo (platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


HOST_BACKENDS = ("host-ort", "host-litert")


@dataclass(frozen=True)
class Alternation:
    """How a model's runs alternate with the ruler's (``ruler.py``): per visit, ``cold``
    untimed runs of the ruler then ``ruler_runs`` timed ones; then ``cold`` untimed runs of
    the model and ``every`` timed ones.  Runs after a switch are slow while the other
    model's weights leave the caches: on the fbnet-small reference (host-ort, one core) the
    runs after a switch took 1.51, 1.22, 1.11, 1.02, 1.00× the warm time, so a scheme that
    untimed only the first run timed a ruler ~10% slow next to a whole network (blocks,
    being small, hardly cool it), and networks came out 9–15% under the unit."""

    every: int = 8
    ruler_runs: int = 3
    cold: int = 3

    def record(self) -> dict:
        return {"every": self.every, "ruler_runs": self.ruler_runs, "cold_runs": self.cold}

    @classmethod
    def of(cls, record: dict) -> "Alternation":
        """A table's stored scheme; a table from before it was stored used (8, 2, 1)."""
        a = record.get("alternation") or {"every": 8, "ruler_runs": 2, "cold_runs": 1}
        return cls(int(a["every"]), int(a["ruler_runs"]), int(a["cold_runs"]))


ALTERNATION = Alternation()  # the scheme new tables are timed with


def _timed(run: Callable[[], object], n: int) -> list[float]:
    """``n`` runs of ``run``, each timed alone (µs)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        run()
        out.append((time.perf_counter_ns() - t0) / 1000.0)
    return out


class _HostBackend:
    """Shared by the host backends: settings check, timing loop, pinning, provenance."""

    name = ""
    model_format = ""
    runtime = ""
    runtime_dist = ""
    default_min_seconds = 0.05  # `hwnas profile`'s --min-seconds for this backend

    def __init__(
        self, *, threads: int = 1, precision: str = "int8", seed: int = 0, cores=None, **unused
    ):
        if unused:
            raise HwnasError(
                f"backend {self.name} does not take "
                f"{', '.join('--' + k.replace('_', '-') for k in unused)}"
            )
        if threads < 1:
            raise HwnasError(f"--threads {threads} must be at least 1")
        check_precision(precision)
        self.threads, self.precision, self.seed = threads, precision, seed
        self.cores = host_cores(cores, threads)  # pinned while measuring (None: cannot pin)
        self.min_seconds = 0.0  # per repeat: time at least this long, however many runs
        self.ruler: tuple[Path, float] | None = None  # (model file, unit µs): ruler.py
        self.alternation = ALTERNATION
        self._ruler_run: Callable[[], object] | None = None
        self.ruler_medians: list[float] = []  # the ruler's median in every timed repeat (µs)

    def use_ruler(
        self, model_file: Path, unit_us: float, alternation: Alternation = ALTERNATION
    ) -> None:
        """From now on alternate the timed runs with runs of ``model_file`` as
        ``alternation`` says and scale each repeat's samples by ``unit_us`` / the ruler's
        median in that repeat (``ruler.py``)."""
        if unit_us <= 0:
            raise HwnasError(f"a ruler's unit must be positive (got {unit_us})")
        self.ruler, self._ruler_run = (Path(model_file), float(unit_us)), None
        self.alternation = alternation

    def measure(self, model_file: Path, *, warmup: int, runs: int, repeats: int) -> Samples:
        """``repeats`` fresh sessions, each: ``warmup`` untimed runs, ``runs`` timed ones;
        all of it pinned to ``self.cores``."""
        check_counts(warmup, runs, repeats)
        model_file = Path(model_file)
        if not model_file.is_file():
            raise HwnasError(f"model file {model_file} does not exist")
        with pinned(self.cores):
            return self._measure(model_file, warmup, runs, repeats)

    def _measure(self, model_file: Path, warmup: int, runs: int, repeats: int) -> Samples:
        samples: list[float] = []
        medians: list[float] = []
        factors: list[float] = []
        ruler = self._ruler()
        for _ in range(repeats):
            run = self._session(model_file)
            for _ in range(warmup):
                run()
            times, ruler_times = [], []
            end = time.perf_counter() + self.min_seconds
            alt = self.alternation
            while len(times) < runs or time.perf_counter() < end:  # benchmark_model's
                if ruler is not None:  # --num_runs and --min_secs, whichever is longer
                    ruler_times += _timed(ruler, alt.cold + alt.ruler_runs)[alt.cold :]
                    times += _timed(run, alt.cold + alt.every)[alt.cold :]
                else:
                    times += _timed(run, 1)
            if ruler is not None:
                self.ruler_medians.append(float(np.median(ruler_times)))
                factors.append(self.ruler[1] / self.ruler_medians[-1])
                times = [t * factors[-1] for t in times]
            samples += times
            medians.append(float(np.median(times)))
        return Samples(tuple(samples), tuple(medians), tuple(factors))

    def _ruler(self) -> Callable[[], object] | None:
        """The ruler's session (made and warmed on first use), or None without a ruler."""
        if self.ruler is None:
            return None
        if self._ruler_run is None:
            self._ruler_run = self._session(self.ruler[0])
            for _ in range(5):
                self._ruler_run()
        return self._ruler_run

    def _session(self, model_file: Path) -> Callable[[], object]:
        raise NotImplementedError

    def provenance(self) -> dict:
        return {
            "device": "host",
            "backend": self.name,
            "host_cpu": host_cpu(),
            "host_cores": os.cpu_count(),
            "os": platform.platform(),
            "runtime": self.runtime,
            "runtime_version": _version(self.runtime_dist),
            "precision": self.precision,
            "threads": self.threads,
            "cores": list(self.cores) if self.cores is not None else None,
            "cores_available": list(available_cores() or ()),
            "pinning": PINNING if self.cores is not None else "none (this OS cannot pin)",
            "model_format": self.model_format,
            "sample": "per timed run: wall time of one inference (perf_counter_ns, µs)",
        }

    def close(self) -> None:
        pass


class HostOrtBackend(_HostBackend):
    """ONNX Runtime CPU: intra-op threads T, inter-op 1, sequential execution."""

    name, model_format = "host-ort", "onnx"
    runtime, runtime_dist = "onnxruntime (CPUExecutionProvider)", "onnxruntime"
    op_profiler = "ONNX Runtime's session profiling (per node)"

    def op_times(self, model_file: Path, *, warmup: int, runs: int) -> list:
        """Each node's mean time over ``runs`` profiled runs after ``warmup`` (ONNX
        Runtime's own per-node profile, pinned as ``measure`` is), in run order."""
        import json
        import tempfile

        from .opprofile import OpTime

        check_counts(warmup, runs, 1)
        with tempfile.TemporaryDirectory(prefix="hwnas-ort-profile-") as tmp, pinned(self.cores):
            sess, feed = self._ort(Path(model_file), profile_prefix=Path(tmp) / "profile")
            for _ in range(warmup + runs):
                sess.run(None, feed)
            events = json.loads(Path(sess.end_profiling()).read_text())
        durs: dict[str, list[float]] = {}
        kinds: dict[str, str] = {}
        for e in events:
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                name = e["name"][: -len("_kernel_time")]
                durs.setdefault(name, []).append(float(e["dur"]))
                kinds[name] = e.get("args", {}).get("op_name", "")
        return [
            OpTime(name=n, kind=kinds[n], ms=float(np.mean(d[-runs:])) / 1000.0)
            for n, d in durs.items()
        ]

    def _session(self, model_file: Path):
        sess, feed = self._ort(model_file)
        return lambda: sess.run(None, feed)

    def _ort(self, model_file: Path, profile_prefix: Path | None = None):
        """An ONNX Runtime session on ``model_file`` and its seeded random input."""
        try:
            sess = ort_session(model_file, self.threads, profile_prefix)
        except Exception as e:  # onnxruntime raises its own exception types
            raise HwnasError(
                f"onnxruntime cannot load {model_file.name}: "
                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from e
        inp = sess.get_inputs()[0]
        dtype = np.int8 if "int8" in inp.type else np.float32
        return sess, {inp.name: random_input(inp.shape, dtype, self.seed)}


class HostLiteRTBackend(_HostBackend):
    """The LiteRT interpreter (ai-edge-litert) with XNNPACK and T threads."""

    name, model_format = "host-litert", "tflite"
    runtime, runtime_dist = "ai-edge-litert Interpreter (XNNPACK)", "ai-edge-litert"
    # fbnet-small, 34 held-out networks (bench/lut_fidelity.py, 2026-12-05): 100% within ±5%
    # and Kendall τ 0.975 at 0.05 s and at 0.02 s, the blocks' timing 2.3x faster at 0.02;
    # τ 0.964-0.968 at 0.005 s and at 0 (50 runs), the measured edges then off by 6.5%
    default_min_seconds = 0.02

    def _session(self, model_file: Path):
        from ai_edge_litert.interpreter import Interpreter

        try:
            with native_stderr_quiet():  # XNNPACK's "INFO: Created ... delegate" line
                interp = Interpreter(model_path=str(model_file), num_threads=self.threads)
                interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise HwnasError(
                f"LiteRT cannot load {model_file.name}: "
                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from e
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], random_input(d["shape"], d["dtype"], self.seed))
        return interp.invoke


def _adb(**settings):
    try:
        from hwnas.device_profiler.adb import AdbBackend
    except ImportError as e:
        raise HwnasError(f"the adb backend is unavailable ({e})") from None
    return AdbBackend(**settings)


# name → factory(**settings); hwnas.device_profiler.adb may add or replace entries.
BACKENDS: dict[str, Callable[..., Backend]] = {
    "host-ort": HostOrtBackend,
    "host-litert": HostLiteRTBackend,
    "adb": _adb,
}
BACKEND_FORMATS = {"host-ort": "onnx", "host-litert": "tflite", "adb": "tflite"}


def get_backend(name: str, **settings) -> Backend:
    """A backend by name with its settings (threads, precision, and adb's serial etc.)."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise HwnasError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}") from None
    return factory(**settings)


def backend_settings(
    provenance: dict,
    name: str | None = None,
    *,
    threads: int | None = None,
    precision: str | None = None,
) -> dict:
    """The settings for backend ``name`` (default: the table's) to time as the table with
    ``provenance`` was timed: its threads and precision unless given; on adb, when the table
    came from a phone too, its pinned cores and XNNPACK choice; on the host, when the table
    came from the host too, its pinned cores where this machine has them all (else the
    backend's default, the last ``threads`` cores)."""
    name = name or provenance.get("backend")
    settings = {
        "threads": threads or int(provenance.get("threads") or 1),
        "precision": precision or provenance.get("precision") or "int8",
    }
    if (
        name in HOST_BACKENDS
        and provenance.get("backend") in HOST_BACKENDS
        and provenance.get("cores")
    ):
        theirs = tuple(int(c) for c in provenance["cores"])
        if set(theirs) <= set(available_cores() or ()) and len(theirs) >= settings["threads"]:
            settings["cores"] = theirs
    if name == "adb" and provenance.get("backend") == "adb":
        if provenance.get("cores"):
            settings["cores"] = tuple(int(c) for c in provenance["cores"])
        if provenance.get("use_xnnpack") is not None:
            settings["use_xnnpack"] = bool(provenance["use_xnnpack"])
    return settings


def backend_from_provenance(
    provenance: dict,
    name: str | None = None,
    *,
    threads: int | None = None,
    precision: str | None = None,
    ruler: bool = True,
    space=None,
    **adb,
) -> Backend:
    """The backend that timed a latency table, from the table's ``provenance``
    (``backend_settings``): the one place search, validation and export build it.  ``name``,
    ``threads`` and ``precision`` override the table's; ``adb`` (serial, benchmark_binary,
    cores; None values left out) goes to an adb backend only, an explicit ``cores`` winning
    over the table's.  Without ``serial`` the adb backend takes the attached phone.  A host
    backend takes ``cores`` too (an explicit one wins over the table's), and the table's
    ruler (``ruler.py``, a network of ``space``) unless ``ruler`` is False: it times in the
    table's unit."""
    name = name or provenance.get("backend")
    if name is None:
        raise HwnasError("the table's provenance names no backend")
    settings = backend_settings(provenance, name, threads=threads, precision=precision)
    if name == "adb":
        settings.update({k: v for k, v in adb.items() if v is not None})
    elif adb.get("cores") is not None:
        settings["cores"] = adb["cores"]
    backend = get_backend(name, **settings)
    if ruler:
        from .ruler import attach_from_provenance

        attach_from_provenance(backend, provenance, space)
    return backend


def measure_file(backend: Backend, path: Path, *, warmup: int, runs: int, repeats: int) -> dict:
    """Time one model file (an exported network, a cached whole-network model) on
    ``backend``: median, p10 and p90 in ms, and the number of samples."""
    samples = backend.measure(Path(path), warmup=warmup, runs=runs, repeats=repeats)
    stats = samples.stats()
    out = {
        "median_ms": stats["median_us"] / 1000,
        "p10_ms": stats["p10_us"] / 1000,
        "p90_ms": stats["p90_us"] / 1000,
        "runs": stats["runs"],
    }
    if samples.ruler_factors:  # in the table's unit; the machine ran 1/factor of its speed
        out["ruler_factor"] = float(np.median(samples.ruler_factors))
    return out


__all__ = [
    "Samples",
    "Backend",
    "HostOrtBackend",
    "HostLiteRTBackend",
    "BACKENDS",
    "BACKEND_FORMATS",
    "get_backend",
    "backend_settings",
    "backend_from_provenance",
    "measure_file",
    "host_cpu",
    "check_counts",
    "HOST_BACKENDS",
]
