"""The `adb` backend: int8 TFLite blocks timed by benchmark_model on a phone's big cores."""

from __future__ import annotations

import hashlib
import logging
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.convert import check_precision
from hwnas.errors import HwnasError

from . import device as dev
from .parse import Invocation, failure, op_profile, parse_output
from .transport import AdbConnectionLost, Transport, connect

REMOTE_DIR = "/data/local/tmp"
REMOTE_BINARY = f"{REMOTE_DIR}/benchmark_model"
_EXIT = "__hwnas_exit="
logger = logging.getLogger(__name__)
_CPU_ZONE = re.compile(r"cpu|tsens|soc|cluster|big|little|core", re.IGNORECASE)
_WHERE = (
    "get LiteRT's Android benchmark tool: the prebuilt TensorFlow Lite nightly "
    "android_aarch64_benchmark_model (or android_arm), or build "
    "//tensorflow/lite/tools/benchmark:benchmark_model with bazel -c opt --config=android_arm64"
)


@dataclass(frozen=True)
class AdbSettings:
    """How to time blocks on the phone (validated; messages say what to change)."""

    serial: str | None = None
    benchmark_binary: Path | None = None
    cores: str | tuple[int, ...] | None = None  # None: the big cores by cpuinfo_max_freq
    threads: int = 1
    precision: str = "int8"
    use_xnnpack: bool = True
    min_secs: float = 0.0  # benchmark_model's min_secs/warmup_min_secs: 0 → exactly N runs
    max_temp_c: float | None = 50.0  # cooldown() waits while a CPU/SoC zone is hotter
    cooldown_timeout_s: float = 180.0
    cooldown_poll_s: float = 5.0
    timeout_s: float = 300.0  # one benchmark_model invocation

    def __post_init__(self):
        if self.threads < 1:
            raise HwnasError(f"--threads {self.threads} must be at least 1")
        check_precision(self.precision)
        if self.benchmark_binary is not None and not Path(self.benchmark_binary).is_file():
            raise HwnasError(f"--benchmark-binary {self.benchmark_binary} is not a file; {_WHERE}")
        if self.min_secs < 0 or self.timeout_s <= 0 or self.cooldown_timeout_s < 0:
            raise HwnasError("min_secs and cooldown_timeout_s must be >= 0 and timeout_s > 0")


@dataclass
class _Log:
    invocations: list[Invocation] = field(default_factory=list)
    temps_c: list[float] = field(default_factory=list)
    cooldown_waits_s: list[float] = field(default_factory=list)
    cooldown_timeouts: int = 0


class AdbBackend:
    """Times model files with benchmark_model over ADB; one connection for the backend's life.

    Per file: push to /data/local/tmp, run ``taskset MASK benchmark_model --graph=…`` ``repeats``
    times, remove the file. Each invocation yields one sample: its timed phase's average over
    ``runs`` runs (µs). Samples.stats() then gives the median etc. over the invocations.
    """

    name = "adb"
    model_format = "tflite"
    op_profiler = "benchmark_model --enable_op_profiling=true (per node)"

    def __init__(
        self, settings: AdbSettings | None = None, *, transport: Transport | None = None, **kwargs
    ):
        self.settings = settings or AdbSettings(**kwargs)
        self.precision = self.settings.precision
        self._log = _Log()
        self.transport = transport or connect(self.settings.serial)
        try:
            self.device = dev.read_device(self.transport)
            n = len(self.device.max_freq_khz)
            cores = self.settings.cores
            if isinstance(cores, str):
                cores = dev.parse_cores(cores, n)
            self.cores = tuple(cores) if cores else self.device.big_cores()
            if max(self.cores) >= n:
                raise HwnasError(
                    f"core {max(self.cores)} does not exist on {self.device.model} "
                    f"(cores 0-{n - 1})"
                )
            if self.settings.threads > len(self.cores):
                raise HwnasError(
                    f"--threads {self.settings.threads} exceeds the {len(self.cores)} pinned "
                    f"core(s) {list(self.cores)}; lower --threads or widen --cores"
                )
            self.mask = dev.core_mask(self.cores)
            self.binary_sha256 = self._install_binary()
        except BaseException:
            self.transport.close()
            raise

    # -- setup -------------------------------------------------------------------------------
    def _install_binary(self) -> str | None:
        t, s = self.transport, self.settings
        digest = None
        if s.benchmark_binary is not None:
            local = Path(s.benchmark_binary)
            digest = hashlib.sha256(local.read_bytes()).hexdigest()
            t.push(local, REMOTE_BINARY)
            t.shell(f"chmod 755 {shlex.quote(REMOTE_BINARY)}")
        elif not t.exists(REMOTE_BINARY):
            raise HwnasError(
                f"no benchmark_model on {t.serial} at {REMOTE_BINARY}: pass "
                f"--benchmark-binary PATH; {_WHERE}"
            )
        out, rc = _split_exit(t.shell(f"{shlex.quote(REMOTE_BINARY)} --help; echo {_EXIT}$?"))
        bad = failure(out, None)
        if bad is not None:
            raise HwnasError(f"{REMOTE_BINARY} on {t.serial}: {bad[0]}; {bad[1]}")
        if "graph" not in out:
            raise HwnasError(
                f"{REMOTE_BINARY} on {t.serial} does not look like benchmark_model "
                f"(its --help never mentions --graph, exit {rc}); {_WHERE}"
            )
        return digest

    # -- measuring ---------------------------------------------------------------------------
    def flags(self, *, warmup: int | None, runs: int | None) -> list[str]:
        """benchmark_model's flags for one invocation, the graph aside (``None``: those that
        vary per call left out, as the provenance records them)."""
        s = self.settings
        per_call = [f"--warmup_runs={warmup}", f"--num_runs={runs}"] if runs is not None else []
        return [
            f"--num_threads={s.threads}",
            *per_call,
            f"--use_xnnpack={str(s.use_xnnpack).lower()}",
            f"--min_secs={s.min_secs:g}",
            f"--warmup_min_secs={s.min_secs:g}",
        ]

    def command(self, remote: str, *, warmup: int, runs: int, extra: tuple = ()) -> str:
        """The device shell line for one invocation; every argument quoted."""
        argv = [
            "taskset",
            self.mask,
            REMOTE_BINARY,
            f"--graph={remote}",
            *self.flags(warmup=warmup, runs=runs),
            *extra,
        ]
        return " ".join(shlex.quote(a) for a in argv) + f"; echo {_EXIT}$?"

    def measure(self, model_file: Path, *, warmup: int, runs: int, repeats: int):
        """Samples (µs): one per invocation, each the average of ``runs`` timed runs."""
        values = [inv.avg_us for inv, _ in self._invocations(model_file, warmup, runs, repeats, ())]
        from hwnas.device_profiler.backends import Samples

        return Samples(us=tuple(values))

    def op_times(self, model_file: Path, *, warmup: int, runs: int) -> list:
        """Each node's time per run from one invocation with benchmark_model's per-operator
        profiling (the TFLite nodes, and a delegate's own operators where the binary
        profiles them), in run order; not a latency sample (profiling slows the runs)."""
        from hwnas.device_profiler.opprofile import OpTime

        [(_, out)] = self._invocations(model_file, warmup, runs, 1, ("--enable_op_profiling=true",))
        rows = op_profile(out)
        if not rows:
            raise HwnasError(
                f"{model_file.name}: benchmark_model on {self.transport.serial} printed no "
                f"per-operator profile for --enable_op_profiling=true (a build without it?)"
            )
        return [
            OpTime(r.name, r.node_type, r.avg_ms * max(r.times_called, 1), r.delegate, r.node_index)
            for r in rows
        ]

    def _invocations(self, model_file, warmup: int, runs: int, repeats: int, extra: tuple):
        """(parsed timings, output) of ``repeats`` invocations on ``model_file``, pushed
        once and removed after."""
        model_file = Path(model_file)
        if not model_file.is_file():
            raise HwnasError(f"model file {model_file} does not exist")
        if warmup < 0 or runs < 1 or repeats < 1:
            raise HwnasError(
                f"need warmup >= 0, runs >= 1, repeats >= 1 (got {warmup}, {runs}, {repeats})"
            )
        remote = f"{REMOTE_DIR}/hwnas_{model_file.name}"
        t = self.transport
        t.push(model_file, remote)
        done: list = []
        try:
            cmd = self.command(remote, warmup=warmup, runs=runs, extra=extra)
            for _ in range(repeats):
                out, rc = _split_exit(t.shell(cmd, timeout_s=self.settings.timeout_s))
                inv = parse_output(out, model=model_file.name, exit_code=rc)
                if inv.unconsumed and not any(i.unconsumed for i in self._log.invocations):
                    logger.warning(
                        f"benchmark_model on {t.serial} ignores {inv.unconsumed} (an older "
                        f"build); its timings run without it (recorded in the table's "
                        f"provenance)"
                    )
                if not extra:
                    self._log.invocations.append(inv)
                done.append((inv, out))
        finally:
            try:
                t.shell(f"rm -f {shlex.quote(remote)}")
            except AdbConnectionLost:
                pass  # the original error says what happened
        return done

    def temperatures(self) -> tuple[tuple[str, float], ...]:
        temps = dev.read_thermal(self.transport)
        self._log.temps_c.extend(c for _, c in temps if 0 < c < 150)
        return temps

    def hottest_c(self) -> float | None:
        """The hottest CPU/SoC zone (°C); all plausible zones when none is named like one."""
        temps = [(z, c) for z, c in self.temperatures() if 0 < c < 150]
        cpu = [c for z, c in temps if _CPU_ZONE.search(z)]
        return max(cpu or [c for _, c in temps], default=None)

    def cooldown(self, *, sleep=time.sleep) -> float:
        """Wait (bounded) while the hottest CPU/SoC zone exceeds max_temp_c; seconds waited."""
        s = self.settings
        if s.max_temp_c is None:
            return 0.0
        start = time.monotonic()
        while True:
            hot = self.hottest_c()
            waited = time.monotonic() - start
            if hot is None or hot <= s.max_temp_c:
                break
            if waited >= s.cooldown_timeout_s:
                self._log.cooldown_timeouts += 1
                break
            sleep(min(s.cooldown_poll_s, max(s.cooldown_timeout_s - waited, 0.0)))
        if waited > 0.0 and hot is not None:
            self._log.cooldown_waits_s.append(waited)
        return waited

    # -- bookkeeping -------------------------------------------------------------------------
    def provenance(self) -> dict:
        s, log = self.settings, self._log
        return {
            "backend": self.name,
            "device": self.device.as_dict(),
            "transport": self.transport.via,
            "runtime": "benchmark_model (TensorFlow Lite / LiteRT)",
            "benchmark_binary_sha256": self.binary_sha256,
            "precision": self.precision,
            "threads": s.threads,
            "cores": list(self.cores),
            "core_mask": self.mask,
            "use_xnnpack": s.use_xnnpack,
            "benchmark_flags": self.flags(warmup=None, runs=None),
            "benchmark_params": _echoed(log.invocations),
            "benchmark_unconsumed_flags": sorted(
                {i.unconsumed for i in log.invocations if i.unconsumed}
            ),
            "governor": ",".join(sorted(set(self.device.governors))) or None,
            "temperature_c": {"min": min(log.temps_c), "max": max(log.temps_c)}
            if log.temps_c
            else None,
            "max_temp_c": s.max_temp_c,
            "cooldowns": len(log.cooldown_waits_s),
            "cooldown_wait_s": round(sum(log.cooldown_waits_s), 3),
            "cooldown_timeouts": log.cooldown_timeouts,
            "sample": "per invocation: benchmark_model's average over the timed runs (µs)",
        }

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "AdbBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _echoed(invocations: list[Invocation]) -> dict | None:
    """The parameters the binary echoed on its first run, as it understood hwnas's flags (a
    build that knows a flag under another meaning, or not at all, shows here and in
    ``benchmark_unconsumed_flags``), the graph's path aside (it names a temporary file);
    None before any run."""
    if not invocations:
        return None
    return {k: v for k, v in invocations[0].params if k != "Graph"}


def _split_exit(out: str) -> tuple[str, int | None]:
    """Remove the trailing `echo __hwnas_exit=$?` line; (output, exit status or None)."""
    m = None
    for m in re.finditer(rf"{_EXIT}(\d+)", out):
        pass
    if m is None:
        return out, None
    return out[: m.start()] + out[m.end() :], int(m.group(1))
