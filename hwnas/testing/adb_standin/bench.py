"""benchmark_model stand-in: runs the pushed .tflite with LiteRT, prints the real tool's format."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

VARIANTS = ("modern", "v2019", "legacy", "all_same")

_USAGE = """usage: benchmark_model
Flags:
\t--num_runs=50\tint32\toptional\texpected number of runs
\t--min_secs=1\tfloat\toptional\tminimum number of seconds to rerun for
\t--max_secs=150\tfloat\toptional\tmaximum number of seconds to rerun for
\t--warmup_runs=1\tint32\toptional\tminimum number of warmup runs
\t--warmup_min_secs=0.5\tfloat\toptional\tminimum number of seconds to warm up for
\t--graph=\tstring\toptional\tpath to the model file
\t--num_threads=-1\tint32\toptional\tnumber of threads
\t--use_xnnpack=false\tbool\toptional\tuse the XNNPACK delegate
\t--enable_op_profiling=false\tbool\toptional\tenable op profiling
\t--op_profiling_output_mode=stdout\tstring\toptional\tstdout or csv
"""


def _flags(argv: list[str]) -> dict[str, str]:
    out = {}
    for a in argv:
        if a.startswith("--"):
            k, _, v = a[2:].partition("=")
            out[k] = v
    return out


def _stat_line(us: list[int]) -> str:
    """Format one phase's statistics as the tool does (µs; '(all same)' when they agree)."""
    if not us:
        return "count=0"
    if min(us) == max(us):
        return f"count={len(us)} curr={us[-1]}" + ("(all same)" if len(us) > 1 else "")
    srt = sorted(us)
    avg = statistics.fmean(us)
    std = int(statistics.pstdev(us))
    pct = lambda q: srt[min(len(srt) - 1, int(q * len(srt)))]  # noqa: E731
    return (
        f"count={len(us)} first={us[0]} curr={us[-1]} min={srt[0]} max={srt[-1]} "
        f"avg={avg:.6g} std={std} p5={pct(0.05)} median={pct(0.5)} p95={pct(0.95)}"
    )


def _timed(interp, n: int, min_secs: float, max_secs: float, fixed: bool) -> list[int]:
    us: list[int] = []
    start = time.perf_counter()
    while len(us) < n or (time.perf_counter() - start) < min_secs:
        if time.perf_counter() - start > max_secs:
            break
        t0 = time.perf_counter_ns()
        interp.invoke()
        us.append(max(1, (time.perf_counter_ns() - t0) // 1000))
    if fixed and us:
        us = [int(statistics.median(us))] * len(us)
    return us


def _fill_inputs(interp, rng: np.random.Generator) -> None:
    for d in interp.get_input_details():
        dtype = np.dtype(d["dtype"])
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max, size=d["shape"], endpoint=True, dtype=dtype)
        else:
            x = rng.standard_normal(d["shape"]).astype(dtype)
        interp.set_tensor(d["index"], x)


# ~65 lines: benchmark_model's output written line by line in its own order, which the
# parser under test reads; cut into pieces, that order would be harder to check.
def run(argv: list[str], local_graph: Path | None, variant: str) -> tuple[str, int]:
    """Run the stand-in with benchmark_model's flags; the graph path is already mapped locally."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    f = _flags(argv)
    if "help" in f:
        return _USAGE, 0
    pre = "INFO: " if variant in ("modern", "all_same") else ""
    lines = [f"{pre}STARTING!"]
    graph = f.get("graph", "")
    threads = int(f.get("num_threads", "-1") or -1)
    warm_n = int(f.get("warmup_runs", "1"))
    runs_n = int(f.get("num_runs", "50"))
    min_secs = float(f.get("min_secs", "1"))
    warm_secs = float(f.get("warmup_min_secs", "0.5"))
    max_secs = float(f.get("max_secs", "150"))
    xnn = f.get("use_xnnpack", "true" if variant == "modern" else "false") == "true"
    lines += _echo(f, pre, variant)
    if local_graph is None or not local_graph.is_file():
        lines += [f"ERROR: Could not open '{graph}'.", f"ERROR: Failed to mmap model {graph}"]
        return "\n".join(lines) + "\n", 1
    t0 = time.perf_counter()
    try:
        resolver = OpResolverType.AUTO if xnn else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interp = Interpreter(
            model_path=str(local_graph),
            num_threads=max(threads, 1),
            experimental_op_resolver_type=resolver,
        )
        interp.allocate_tensors()
    except (ValueError, RuntimeError):
        lines += [f"ERROR: Failed to load model {graph}"]
        return "\n".join(lines) + "\n", 1
    init_us = (time.perf_counter() - t0) * 1e6
    lines.append(f"{pre}Loaded model {graph}")
    if xnn:
        lines.append(f"{pre}Created TensorFlow Lite XNNPACK delegate for CPU.")
    mb = local_graph.stat().st_size / 2**20
    lines += [
        f"{pre}The input model file size (MB): {mb:.6g}",
        f"{pre}Initialized session in {init_us / 1000:.6g}ms.",
    ]
    _fill_inputs(interp, np.random.default_rng(0))
    fixed = variant == "all_same"
    head = "Running benchmark for at least {} iterations and at least {} seconds"
    tail = "" if variant == "legacy" else f" but terminate if exceeding {max_secs:g} seconds."
    lines.append(pre + head.format(warm_n, f"{warm_secs:g}") + tail)
    warm = _timed(interp, warm_n, warm_secs, max_secs, fixed)
    lines += [pre + _legacy(_stat_line(warm), variant), ""]
    lines.append(pre + head.format(runs_n, f"{min_secs:g}") + tail)
    timed = _timed(interp, runs_n, min_secs, max_secs, fixed)
    lines += [pre + _legacy(_stat_line(timed), variant), ""]
    w_avg, t_avg = statistics.fmean(warm or [0]), statistics.fmean(timed or [0])
    if variant == "legacy":
        lines.append(
            f"Average inference timings in us: Warmup: {w_avg:.6g}, Init: {int(init_us)}, "
            f"no stats: {t_avg:.6g}"
        )
    else:
        lines.append(
            f"{pre}Inference timings in us: Init: {int(init_us)}, First inference: "
            f"{(warm or [0])[0]}, Warmup (avg): {w_avg:.6g}, Inference (avg): {t_avg:.6g}"
        )
    if f.get("enable_op_profiling") == "true":
        csv = f.get("op_profiling_output_mode") == "csv"
        lines += profile_lines(interp, t_avg / 1000.0, init_us / 1000.0, variant, xnn, csv)
    return "\n".join(lines) + "\n", 0


# benchmark_model's names for the flags hwnas passes, in the order it logs them
_ECHO = (
    ("num_runs", "Min num runs"),
    ("min_secs", "Min runs duration (seconds)"),
    ("num_threads", "Num threads"),
    ("warmup_runs", "Min warmup runs"),
    ("warmup_min_secs", "Min warmup runs duration (seconds)"),
    ("graph", "Graph"),
    ("use_xnnpack", "Use xnnpack"),
)


def _echo(flags: dict[str, str], pre: str, variant: str) -> list[str]:
    """The parameter lines the tool logs at start (those set by a flag; booleans as 0/1).
    The ``legacy`` binary predates ``--warmup_min_secs``: it warns that the flag went
    unconsumed and does not echo it, as an old build does."""
    old = variant == "legacy" and "warmup_min_secs" in flags
    lines = [f"{pre}Log parameter values verbosely: [0]"]
    for flag, name in _ECHO:
        if flag in flags and not (old and flag == "warmup_min_secs"):
            value = {"true": "1", "false": "0"}.get(flags[flag], flags[flag])
            lines.append(f"{pre}{name}: [{value}]")
    if old:
        lines.append(f"Unconsumed cmdline flags: --warmup_min_secs={flags['warmup_min_secs']}")
    return lines


def _legacy(stat: str, variant: str) -> str:
    """Older tools printed neither percentiles nor the '(all same)' mark."""
    if variant in ("legacy", "v2019"):
        stat = stat.split(" p5=")[0].replace("(all same)", "")
    return stat


# --------------------------------------------------------------------------- op profiling
# The real tool times each node with the interpreter's profiler.  LiteRT's Python API has
# none, so the stand-in splits the measured average over the model's real nodes by a cost
# estimate (multiply-accumulates, plus a fixed cost per node): the layout, the node types,
# indices and tensor names are the file's own; the per-node times are not measurements.
# With XNNPACK, a modern build lists the delegate as one node and its operators under
# "Delegate internal:" (reshapes elided, as XNNPACK does); older builds (``v2019``,
# ``legacy``) print a ``[start]`` column and no operator of the delegate.
_XNN_NAMES = {
    "CONV_2D": "Convolution (NHWC, QC8) IGEMM",
    "DEPTHWISE_CONV_2D": "Convolution (NHWC, QC8) DWConv",
    "ADD": "Add (ND, QS8)",
    "MUL": "Multiply (ND, QS8)",
    "MEAN": "Mean (ND, QS8)",
    "AVERAGE_POOL_2D": "Average Pooling (NHWC, QS8)",
    "MAX_POOL_2D": "Max Pooling (NHWC, S8)",
    "FULLY_CONNECTED": "Fully Connected (NC, QS8) GEMM",
    "QUANTIZE": "Convert (NC, F32, QS8)",
    "DEQUANTIZE": "Convert (NC, QS8, F32)",
    "LOGISTIC": "Sigmoid (NC, QS8)",
    "HARD_SWISH": "HardSwish (NC, QS8)",
    "CONCATENATION": "Concatenate (ND, X8)",
    "RESHAPE": None,
    "SQUEEZE": None,
}


def _cost(op: dict, shapes: dict) -> float:
    out = float(np.prod(shapes[op["outputs"][0]])) if len(op["outputs"]) else 0.0
    ins = [shapes[i] for i in op["inputs"] if i >= 0]
    if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(ins) > 1:
        w = ins[1]  # OHWI, or 1HWC for depthwise
        per = float(np.prod(w[1:])) if op["op_name"] == "CONV_2D" else float(w[1] * w[2])
        return out * per + 2000.0
    if op["op_name"] == "FULLY_CONNECTED" and len(ins) > 1:
        return float(np.prod(ins[1])) + 2000.0
    return out + 2000.0


def _table(title: str, rows: list[tuple], total: float, start_col: bool, csv: bool) -> list[str]:
    """One StatsCalculator table: rows of (type, start ms, first ms, avg ms, name)."""
    cols = ["node type", *(["start"] if start_col else []), "first", "avg ms", "%", "cdf%"]
    cols += ["mem KB", "times called", "Name"]
    out = [f"============================== {title} =============================="]
    if csv:
        out.append(
            ", ".join(c if c != "avg ms" else "avg_ms" for c in cols).replace("Name", "name")
        )
    else:
        out.append("".join(f"\t{'[' + c + ']':>12}" for c in cols))
    cdf = 0.0
    for typ, start, first, avg, name in rows:
        pct = 100.0 * avg / total if total > 0 else 0.0
        cdf += pct
        nums = [*([start] if start_col else []), first, avg]
        if csv:
            vals = [typ, *(f"{v:.3f}" for v in nums), f"{pct:.3f}%", f"{cdf:.3f}%", "0", "1", name]
            out.append(", ".join(vals))
        else:
            vals = [f"{typ:>24}", *(f"{v:>9.3f}" for v in nums), f"{pct:>7.3f}%", f"{cdf:>7.3f}%"]
            out.append("".join("\t" + v for v in [*vals, f"{0:>10.3f}", f"{1:>9}", name]))
    return [*out, ""]


def _report(rows: list[tuple], total: float, start_col: bool, csv: bool) -> list[str]:
    """Run order, then by time, then the per-type summary and the short summary."""
    by_time = sorted(rows, key=lambda r: -r[3])
    out = _table("Run Order", rows, total, start_col, csv)
    out += _table("Top by Computation Time", by_time, total, start_col, csv)
    types = sorted({r[0] for r in rows})
    out += [f"Number of nodes executed: {len(rows)}"]
    out += ["============================== Summary by node type =============================="]
    out += [f"\t{t:>24}\t{sum(1 for r in rows if r[0] == t):>9}" for t in types]
    out += [
        "",
        f"Timings (microseconds): count=1 curr={int(total * 1000)}",
        "Memory (bytes): count=0",
    ]
    return [*out, f"{len(rows)} nodes observed", ""]


def profile_lines(interp, avg_ms: float, init_ms: float, variant: str, xnn: bool, csv: bool):
    """The per-operator profile benchmark_model prints after the timings."""
    ops = interp._get_ops_details()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    shapes = {i: t["shape"] for i, t in tensors.items()}
    graph = [o for o in ops if o["op_name"] != "DELEGATE"]
    kernels = [o for o in ops if o["op_name"] == "DELEGATE"]
    modern = variant in ("modern", "all_same")
    pre = "INFO: " if modern else ""

    def name(op: dict) -> str:
        return "[" + ",".join(tensors[i]["name"] for i in op["outputs"]) + f"]:{op['index']}"

    costs = np.array([_cost(o, shapes) for o in graph])
    share = costs / costs.sum() if costs.sum() > 0 else costs
    init = [("ModifyGraphWithDelegate", 0.0, init_ms / 2, init_ms / 2, "ModifyGraphWithDelegate/0")]
    init.append(("AllocateTensors", init_ms / 2, init_ms / 2, init_ms / 2, "AllocateTensors/0"))
    lines = [f"{pre}Profiling Info for Benchmark Initialization:"]
    lines += _report(init, init_ms, not modern, csv)
    lines.append(f"{pre}Operator-wise Profiling Info for Regular Benchmark Runs:")
    if not (xnn and kernels):  # every node in the interpreter
        rows, t = [], 0.0
        for o, sh in zip(graph, share):
            rows.append((o["op_name"], t, avg_ms * sh, avg_ms * sh, name(o)))
            t += avg_ms * sh
        return [*lines, *_report(rows, avg_ms, not modern, csv)]
    node = [("TfLiteXNNPackDelegate", 0.0, avg_ms, avg_ms, name(kernels[0]))]
    lines += _report(node, avg_ms, not modern, csv)
    if modern:  # XNNPACK's operators, 90% of the delegate's time (the rest its own)
        rows, t = [], 0.0
        for o, sh in zip(graph, share):
            xnn_name = _XNN_NAMES.get(o["op_name"], f"Unknown {o['op_name'].title()} (ND)")
            if xnn_name is not None:
                n = len(rows)
                rows.append(
                    (xnn_name, t, 0.9 * avg_ms * sh, 0.9 * avg_ms * sh, f"Delegate/{xnn_name}:{n}")
                )
                t += 0.9 * avg_ms * sh
        lines += ["Delegate internal: ", *_report(rows, avg_ms, False, csv)]
    return lines
