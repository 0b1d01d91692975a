"""Parse benchmark_model output (every known format) into one invocation's summary, or an error."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hwnas.errors import HwnasError

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_FIELD = re.compile(rf"\b(count|first|curr|min|max|avg|std|p5|median|p95)=({_NUM})")
_RUN_HEADER = "Running benchmark for at least"
# "Inference timings in us: Init: 3501, First inference: ..., Warmup (avg): ..., Inference (avg): X"
_SUMMARY_NEW = re.compile(rf"Inference \(avg\):\s*({_NUM})")
# older: "Average inference timings in us: Warmup: 86184.3, Init: 1892, no stats: 115062"
_SUMMARY_OLD = re.compile(rf"no stats:\s*({_NUM})")
_INIT = re.compile(rf"\bInit:\s*({_NUM})")
_WARMUP = re.compile(rf"Warmup(?: \(avg\))?:\s*({_NUM})")
# the parameters the binary echoes as it understood them: "INFO: Num threads: [1]"
_UNCONSUMED = re.compile(r"Unconsumed cmdline flags:\s*(.*?)\s*$", re.MULTILINE)
_PARAM = re.compile(r"^(?:INFO:\s*)?([A-Z][\w ()/.-]*?):\s*\[([^\]\n]*)\]\s*$", re.MULTILINE)

# Failure markers, most specific first: (substring, what it means, what to do).
_FAILURES = (
    (
        "can't execute: Permission denied",
        "benchmark_model is not executable (permission denied)",
        "run `adb shell chmod 755 /data/local/tmp/benchmark_model`, or push the binary again with "
        "--benchmark-binary",
    ),
    (
        "Permission denied",
        "permission denied on the device",
        "keep the binary and models under /data/local/tmp and re-run",
    ),
    (
        "Failed to load model",
        "benchmark_model could not load the model",
        "check that the file is a valid .tflite the binary's LiteRT version supports",
    ),
    (
        "Could not open",
        "benchmark_model could not open the model file",
        "check that the push to /data/local/tmp succeeded (free space?)",
    ),
    (
        "Failed to mmap model",
        "benchmark_model could not map the model file",
        "check that the push to /data/local/tmp succeeded (free space?)",
    ),
    (
        "Exec format error",
        "benchmark_model is built for another CPU architecture",
        "use the android_aarch64 (arm64) or android_arm build that matches the phone's ABI",
    ),
    (
        ": not found",
        "benchmark_model is missing on the device",
        "pass --benchmark-binary PATH to push one",
    ),
    (
        "No such file or directory",
        "a file is missing on the device",
        "pass --benchmark-binary PATH and check the push succeeded",
    ),
)


@dataclass(frozen=True)
class Invocation:
    """One benchmark_model run's timed phase, in microseconds (avg is the per-invocation value)."""

    avg_us: float
    count: int
    min_us: float | None = None
    max_us: float | None = None
    std_us: float | None = None
    median_us: float | None = None
    first_us: float | None = None
    init_us: float | None = None
    warmup_avg_us: float | None = None
    source: str = "stats"  # "stats" (count= line) or "summary" (timings line only)
    params: tuple[tuple[str, str], ...] = ()  # what the binary echoed (``parameters``)
    unconsumed: str | None = None  # flags the binary did not know (an older build), as it says


@dataclass(frozen=True)
class OpRow:
    """One row of benchmark_model's per-operator profile (``--enable_op_profiling=true``):
    a TFLite node of the graph, or (``delegate``) an operator inside a delegate's own
    profile (XNNPACK's since TensorFlow 2.10: ``Delegate/Convolution (NHWC, QC8) IGEMM:3``)."""

    node_type: str
    avg_ms: float  # per run
    first_ms: float
    times_called: int  # per run
    name: str
    delegate: bool = False

    @property
    def node_index(self) -> int | None:
        """The TFLite node's index (``[tensor names]:12``), or the delegate operator's."""
        m = re.search(r":(\d+)\s*$", self.name)
        return int(m.group(1)) if m else None


_REGULAR_PROFILE = "Operator-wise Profiling Info for Regular Benchmark Runs"
_INIT_PROFILE = "Profiling Info for Benchmark Initialization"
_SECTION = re.compile(r"^=+\s*(.*?)\s*=+\s*$")
_PCT = rf"({_NUM})%"


def _row_pattern(start: bool, csv: bool) -> re.Pattern:
    """A Run Order row: type, [start], first, avg ms, %, cdf%, mem KB, times called, name;
    tab-padded columns (any whitespace here, so a pasted copy parses too) or ``, ``."""
    sep = r"\s*,\s*" if csv else r"\s+"
    nums = [*([rf"({_NUM})"] if start else []), rf"({_NUM})", rf"({_NUM})", _PCT, _PCT]
    body = sep.join([r"(.+?)", *nums, rf"({_NUM})", r"(\d+)", r"(.*?)"])
    return re.compile(rf"^\s*{body}\s*$")


def op_profile(text: str) -> list[OpRow]:
    """The per-operator rows of the regular (timed) runs' profile, in run order: every
    Run Order table after "Operator-wise Profiling Info for Regular Benchmark Runs" (the
    primary graph's, other subgraphs', and after "Delegate internal:" the delegate's),
    not the initialisation's.  Every known layout: with and without the ``[start]``
    column (older builds print it), with or without ``INFO:`` prefixes, and CSV
    (``--op_profiling_output_mode=csv``).  [] when the output has no profile."""
    lines = [re.sub(r"^INFO:\s?", "", ln) for ln in _lines(text)]
    starts = [i for i, ln in enumerate(lines) if _REGULAR_PROFILE in ln]
    if not starts:
        return []
    rows: list[OpRow] = []
    delegate = False
    state: str | re.Pattern | None = None  # None, "header" (next line), or the row pattern
    for ln in lines[starts[-1] + 1 :]:
        line = ln.strip()
        if _INIT_PROFILE in line:
            break
        if line.startswith("Delegate internal"):
            delegate = True
        elif section := _SECTION.match(line):
            state = "header" if section.group(1) == "Run Order" else None
        elif state == "header" and line:
            head = line.lower()
            state = _row_pattern("start" in head, "[" not in head and "," in head)
        elif isinstance(state, re.Pattern):
            m = state.match(ln)
            if not line:
                state = None  # a blank line ends the table
            elif m is not None:
                g = m.groups()
                k = state.groups - 8  # 1 with the [start] column
                rows.append(
                    OpRow(
                        node_type=g[0].strip(),
                        first_ms=float(g[1 + k]),
                        avg_ms=float(g[2 + k]),
                        times_called=int(g[6 + k]),
                        name=g[7 + k].strip(),
                        delegate=delegate,
                    )
                )
    return rows


def parameters(text: str) -> dict[str, str]:
    """The parameters benchmark_model echoes at start, as it understood its flags
    (``Num threads: [1]``, ``Min num runs: [50]``, ``Use xnnpack: [1]`` …; with
    ``Log parameter values verbosely: [0]`` only those not at their defaults), by name."""
    return {k.strip(): v.strip() for k, v in _PARAM.findall(text.replace("\r", ""))}


def _lines(text: str) -> list[str]:
    return text.replace("\r", "").split("\n")


def _stats(line: str) -> dict[str, float]:
    return {k: float(v) for k, v in _FIELD.findall(line)}


def _timed_stats_line(lines: list[str]) -> str | None:
    """The count= line of the timed phase: after the last run header, else the second one."""
    headers = [i for i, ln in enumerate(lines) if _RUN_HEADER in ln]
    counts = [i for i, ln in enumerate(lines) if re.search(r"\bcount=\d", ln)]
    if len(headers) >= 2:
        after = [i for i in counts if i > headers[-1]]
        return lines[after[0]] if after else None
    if len(counts) >= 2:
        return lines[counts[-1]]
    return None


def failure(text: str, exit_code: int | None) -> tuple[str, str] | None:
    """(what happened, what to do) if the output or exit status says the run failed."""
    for marker, what, todo in _FAILURES:
        if marker in text:
            return what, todo
    if exit_code not in (None, 0):
        return f"benchmark_model exited with status {exit_code}", "see the output above"
    return None


def parse_output(text: str, *, model: str = "model", exit_code: int | None = None) -> Invocation:
    """The timed phase of one benchmark_model invocation, or HwnasError naming ``model``.

    Takes the timed phase's ``count=`` line (not the warm-up's): ``avg=`` when printed, else
    ``curr=`` (``count=1 curr=X`` or ``curr=X(all same)`` print no average). Without such a
    line, the summary's ``Inference (avg)`` or the older ``no stats:`` value is used.
    """
    lines = _lines(text)
    bad = failure(text, exit_code)
    stats_line = _timed_stats_line(lines)
    summary = _SUMMARY_NEW.search(text) or _SUMMARY_OLD.search(text)
    if bad is not None or (stats_line is None and summary is None):
        what, todo = bad or ("no timings found in benchmark_model's output", "see the output")
        tail = " | ".join(ln.strip() for ln in lines if ln.strip())[-300:]
        raise HwnasError(f"{model}: {what}; {todo}. Output: {tail or '(none)'}")
    init = _INIT.search(text)
    warm = _WARMUP.search(text)
    extra = dict(
        init_us=float(init.group(1)) if init else None,
        warmup_avg_us=float(warm.group(1)) if warm else None,
        params=tuple(parameters(text).items()),
        unconsumed=unconsumed.group(1) if (unconsumed := _UNCONSUMED.search(text)) else None,
    )
    if stats_line is not None:
        s = _stats(stats_line)
        value = s.get("avg", s.get("curr"))
        if value is not None:
            return Invocation(
                avg_us=value,
                count=int(s.get("count", 1)),
                min_us=s.get("min", value),
                max_us=s.get("max", value),
                std_us=s.get("std", 0.0 if "avg" not in s else None),
                median_us=s.get("median"),
                first_us=s.get("first", s.get("curr")),
                **extra,
            )
    value = float(summary.group(1))
    return Invocation(avg_us=value, count=0, source="summary", **extra)
