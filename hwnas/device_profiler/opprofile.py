"""Block times inside whole networks: a runtime's per-operator profile of a network (ONNX
Runtime's session profiling on the host, ``benchmark_model --enable_op_profiling=true`` on
a phone) mapped back to the network's layers, beside the table's standalone block times.

A node belongs to the layer whose module its name carries: ONNX node names and the TFLite
tensor names litert-torch writes both keep the module path (``/s2_l0/body/…/Conv``,
``…/hwnas.space.blocks.Residual_s2_l0/…``).  XNNPACK's own operators have no such name
(``Delegate/Convolution (NHWC, QC8) IGEMM:7``); they are matched, in run order, to the
delegated TFLite nodes of the same kind (a fused or elided node is skipped, an operator of
an unknown kind goes to the layer of the one before it).  What no layer claims (the
input's quantisation, layout transposes, the delegate's own overhead, the invoke) is the
network's time outside its blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class OpTime:
    """One node of a network's profile, averaged over the profiled runs."""

    name: str  # ONNX node name; TFLite ``[tensor names]:index``; ``Delegate/<op>:index``
    kind: str  # the op type as the runtime names it
    ms: float  # per run
    delegate: bool = False  # an operator inside a delegate (XNNPACK's own profile)
    index: int | None = None  # the TFLite node (or delegate operator) index


# op families, so that a delegate's operators can be matched to the TFLite nodes they run
_TFLITE_FAMILY = {
    "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "conv",
    "TRANSPOSE_CONV": "conv",
    "FULLY_CONNECTED": "fc",
    "ADD": "add",
    "MUL": "mul",
    "SUB": "sub",
    "MEAN": "avgpool",
    "AVERAGE_POOL_2D": "avgpool",
    "MAX_POOL_2D": "maxpool",
    "QUANTIZE": "convert",
    "DEQUANTIZE": "convert",
    "RESHAPE": "copy",
    "SQUEEZE": "copy",
    "LOGISTIC": "sigmoid",
    "HARD_SWISH": "hswish",
    "RELU": "clamp",
    "RELU6": "clamp",
    "RELU_N1_TO_1": "clamp",
    "CONCATENATION": "concat",
    "TRANSPOSE": "transpose",
    "PAD": "pad",
    "SOFTMAX": "softmax",
}
# XNNPACK operator names (``xnn_operator_type`` strings), most specific prefix first
_XNNPACK_FAMILY = (
    ("Global Average Pooling", "avgpool"),
    ("Global Sum Pooling", "avgpool"),
    ("Average Pooling", "avgpool"),
    ("Mean", "avgpool"),
    ("Max Pooling", "maxpool"),
    ("Deconvolution", "conv"),
    ("Convolution", "conv"),
    ("Fully Connected", "fc"),
    ("Batch Matrix Multiply", "fc"),
    ("Add", "add"),
    ("Multiply", "mul"),
    ("Subtract", "sub"),
    ("Convert", "convert"),
    ("Copy", "copy"),
    ("Sigmoid", "sigmoid"),
    ("HardSwish", "hswish"),
    ("Clamp", "clamp"),
    ("Concatenate", "concat"),
    ("Transpose", "transpose"),
    ("Constant Pad", "pad"),
    ("Softmax", "softmax"),
)


def xnnpack_family(kind: str) -> str | None:
    return next((f for prefix, f in _XNNPACK_FAMILY if kind.startswith(prefix)), None)


def layer_of(name: str, modules: Iterable[str]) -> str | None:
    """The layer module (``s2_l0``, ``stem``, …) a node's name carries: the outermost path
    component that is one of ``modules``, alone or after a class name (``Residual_s2_l0``).
    Fused TFLite nodes list several locations (``;``-separated); the first is the node's own.
    """
    mods = set(modules)
    first = name.strip("[]").split(";")[0]
    for part in re.split(r"[/\[\]]", first):
        if part in mods:
            return part
        for i in (m.start() for m in re.finditer("_", part)):
            if part[i + 1 :] in mods:
                return part[i + 1 :]
    return None


def tflite_nodes(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(builtin op name, names) of each node of the file's main graph: its first output
    tensor's name, then its constant inputs' (weights, biases), which name the layer when
    the output does not (the graph's output tensor is named for the signature)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(Path(path).read_bytes(), 0)
    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    g = model.Subgraphs(0)
    ops = [g.Operators(i) for i in range(g.OperatorsLength())]
    made = {op.Outputs(k) for op in ops for k in range(op.OutputsLength())}
    made |= {g.Inputs(k) for k in range(g.InputsLength())}
    out = []
    for op in ops:
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        tensors = [op.Outputs(0)] if op.OutputsLength() else []
        tensors += [t for t in (op.Inputs(k) for k in range(op.InputsLength())) if t >= 0]
        tensors = [t for i, t in enumerate(tensors) if i == 0 or t not in made]
        names = tuple(g.Tensors(t).Name().decode() for t in tensors)
        out.append((codes.get(builtin, str(builtin)), names))
    return out


def _node_layer(names: Sequence[str], modules: Sequence[str]) -> str | None:
    return next((lay for n in names if (lay := layer_of(n, modules)) is not None), None)


def block_times(
    ops: Sequence[OpTime], modules: Sequence[str], tflite_file: Path | None = None
) -> tuple[dict[str, float], str | None]:
    """ms per run of each layer module inside the profiled network, and a note when some of
    its time could not be given to layers.  ``tflite_file``: the profiled TFLite file, whose
    nodes name the TFLite rows (by index) and which XNNPACK's operators are matched to."""
    per: dict[str, float] = {}

    def add(layer: str | None, ms: float) -> None:
        if layer is not None:
            per[layer] = per.get(layer, 0.0) + ms

    nodes = tflite_nodes(tflite_file) if tflite_file is not None else None
    inner = [o for o in ops if o.delegate]
    note = None
    shown: set[int] = set()
    for o in ops:
        if o.delegate:
            continue
        node = nodes[o.index] if nodes and o.index is not None and o.index < len(nodes) else None
        if nodes is not None and node is None:  # a delegate's kernel node (index past the graph)
            if not inner:
                note = (
                    f"{o.kind} ran {o.ms:.3f} ms of a network as one node: this "
                    f"benchmark_model does not profile the delegate's own operators, so "
                    f"their time is not given to layers (XNNPACK's are profiled by "
                    f"TensorFlow Lite 2.10 and later builds)"
                )
            continue
        if node is not None:
            shown.add(o.index)
        add(_node_layer(node[1], modules) if node else layer_of(o.name, modules), o.ms)
    if inner and nodes is not None:
        delegated = [(i, n) for i, n in enumerate(nodes) if i not in shown]
        j, last = 0, None
        for o in inner:
            fam = xnnpack_family(o.kind)
            k = next(
                (
                    k
                    for k in range(j, len(delegated))
                    if _TFLITE_FAMILY.get(delegated[k][1][0]) == fam
                ),
                None,
            )
            if fam is not None and k is not None:
                last, j = _node_layer(delegated[k][1][1], modules), k + 1
            add(last, o.ms)
    return per, note


def profiled_ms(ops: Sequence[OpTime]) -> float:
    """The profile's total per run: the graph's nodes (a delegate's operators are inside
    its node's time)."""
    return sum(o.ms for o in ops if not o.delegate)


# --------------------------------------------------------------------------- report


def summarize(rows: list[dict], networks: list[dict]) -> dict:
    """Per op type: the table's standalone times and the same blocks' times inside the
    networks (Σ over every block of every network, and their ratio); over all blocks the
    median ratio and the share within ±10%; per network the share of its profiled time that
    the blocks account for."""
    per: dict[str, dict] = {}
    for r in rows:
        d = per.setdefault(r["type"], {"blocks": 0, "table_ms": 0.0, "in_network_ms": 0.0})
        d["blocks"] += 1
        d["table_ms"] += r["table_ms"]
        d["in_network_ms"] += r["in_network_ms"]
    for d in per.values():
        d["ratio"] = d["in_network_ms"] / d["table_ms"] if d["table_ms"] > 0 else None
    timed = [r for r in rows if r["table_ms"] > 0 and r["in_network_ms"] > 0]
    ratio = np.array([r["in_network_ms"] / r["table_ms"] for r in timed])
    inside = [n["blocks_ms"] / n["profiled_ms"] for n in networks if n["profiled_ms"] > 0]
    return {
        "networks": len(networks),
        "blocks": len(rows),
        "median_ratio": float(np.median(ratio)) if ratio.size else None,
        "within_10pct": float((np.abs(ratio - 1) <= 0.10).mean()) if ratio.size else None,
        "blocks_share_of_profiled": float(np.median(inside)) if inside else None,
        "profiled_over_measured": float(
            np.median([n["profiled_ms"] / n["measured_ms"] for n in networks])
        )
        if networks
        else None,
        "per_type": dict(sorted(per.items())),
    }


def in_network_line(ins: dict) -> str:
    """One line on the blocks' own times inside the validated networks."""
    if ins.get("median_ratio") is None:
        return f"blocks inside networks ({ins['profiler']}): no block could be timed"
    return (
        f"blocks inside {ins['networks']} networks ({ins['profiler']}, each node's share of "
        f"the profile × the measured latency): median {ins['median_ratio']:.2f}× their table "
        f"time, {100 * ins['within_10pct']:.0f}% within ±10%; the profiler itself slowed the "
        f"networks {ins['profiled_over_measured']:.2f}×; per layer: {ins.get('csv')}"
    )


__all__ = [
    "OpTime",
    "layer_of",
    "xnnpack_family",
    "tflite_nodes",
    "block_times",
    "profiled_ms",
    "summarize",
    "in_network_line",
]
