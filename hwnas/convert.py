"""The one model converter: PyTorch → ONNX (fp32, int8 QDQ) and → TFLite (fp32, full int8).

Used by the profiler (block models, whole networks for validation) and by ``hwnas export``.
TFLite models take NHWC input, as an Android app feeds a bitmap; 4-D outputs are NHWC too.
Full-integer int8 uses litert-torch's PT2E quantizer (per-channel symmetric weights,
static activations) calibrated on the given inputs; the exported program is specialised to
the sample's batch size, so samples and calibration inputs have batch size 1.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.errors import HwnasError
from hwnas.io import atomic_write_bytes, native_stderr_quiet

_TOOLS = ("torch", "litert-torch", "ai-edge-litert", "onnx", "onnxruntime")
FORMATS = ("tflite", "onnx")  # the files a model is converted to
PRECISIONS = ("int8", "fp32")  # full-integer int8 (calibrated), or float


def check_precision(precision, what: str = "--precision") -> None:
    """Refuse a precision other than int8 or fp32: one line naming ``what``."""
    if precision not in PRECISIONS:
        raise HwnasError(f"{what} {precision!r} must be int8 or fp32")


class ConversionError(HwnasError):
    """A model that a converter refused."""


def tool_versions() -> dict:
    """Versions of every tool that shapes a converted file (part of cache keys)."""
    out = {}
    for name in _TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# --------------------------------------------------------------------------- ONNX


def to_onnx(model: nn.Module, sample: torch.Tensor, path: str | Path, opset: int = 17) -> Path:
    """Export ``model`` (NCHW input ``sample``) to an fp32 ONNX file; checked with onnx.checker."""
    import onnx

    path = Path(path)
    buf = io.BytesIO()
    with _quiet():
        torch.onnx.export(
            model.eval(),
            (sample,),
            buf,
            opset_version=opset,
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
        )
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, buf.getvalue())
    return path


def to_onnx_int8(fp32_onnx: str | Path, calib: Sequence[np.ndarray], path: str | Path) -> Path:
    """Static QDQ quantization calibrated on ``calib`` (NCHW): uint8 activations, per-channel
    int8 weights (U8S8).  ONNX Runtime's x86 kernels fuse U8S8 QDQ into one chain of
    QLinearConv/QLinearAdd (one Quantize at the input, one Dequantize at the output); with
    int8 activations (S8S8) they fuse only part of it and run the rest as fp32 convs on
    weights dequantized at every run, with float adds and layout transposes between them —
    2.2x slower for fbnet-small's reference network (472 vs 212 µs), and a graph whose
    cost is mostly per-node dispatch rather than the work the network does."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{"input": np.asarray(c, np.float32)} for c in calib])

        def get_next(self):
            return next(self._it, None)

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        out = Path(tmp) / "q.onnx"
        quantize_static(
            str(fp32_onnx),
            str(out),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        atomic_write_bytes(path, out.read_bytes())
    return path


# --------------------------------------------------------------------------- TFLite


def to_tflite(
    model: nn.Module,
    sample: torch.Tensor,
    path: str | Path,
    *,
    int8: bool,
    calib: Iterable[torch.Tensor] | None = None,
    nhwc: bool = True,
) -> Path:
    """Export to TFLite: fp32, or full int8 (int8 input/output tensors) calibrated on
    ``calib`` (NCHW tensors of the sample's shape).  ``sample`` is NCHW; with ``nhwc`` the
    file's input (and any 4-D output) is NHWC."""
    steps = [[c] for c in calib] if calib is not None else None
    buf = _tflite_bytes(Path(path).name, model, (sample,), int8, steps, nhwc)
    atomic_write_bytes(Path(path), buf)
    return Path(path)


def to_tflite_many(
    models: Sequence[nn.Module],
    samples: Sequence[torch.Tensor],
    paths: Sequence[str | Path],
    *,
    int8: bool,
    calibs: Sequence[Sequence[torch.Tensor]] | None = None,
    nhwc: bool = True,
) -> list[Path]:
    """``to_tflite`` of several one-input, one-output models in one converter call: they
    run as independent branches of one graph, whose file is then cut into one file per
    model (``split_branches``).  Each file has the operators, tensors, quantisation and
    outputs that converting its model alone gives (the tests compare them), at a third of
    the converter's time per model: its fixed cost per call (export, decompositions, MLIR,
    ~1 s) is paid once.  ``calibs``: each model's calibration inputs, equally many."""
    if len(models) == 1:
        calib = calibs[0] if calibs is not None else None
        return [to_tflite(models[0], samples[0], paths[0], int8=int8, calib=calib, nhwc=nhwc)]
    if calibs is not None and len({len(c) for c in calibs}) != 1:
        raise HwnasError("to_tflite_many: every model needs as many calibration inputs")
    together = [list(step) for step in zip(*calibs)] if calibs is not None else None
    names = ", ".join(Path(p).name for p in paths)
    buf = _tflite_bytes(names, _Branches(models), tuple(samples), int8, together, nhwc)
    try:
        parts = split_branches(buf, len(models))
    except Exception as e:  # a graph the cut does not understand: one line
        raise ConversionError(f"TFLite file of {names} could not be split: {e}") from e
    for p, part in zip(paths, parts):
        atomic_write_bytes(Path(p), part)
    return [Path(p) for p in paths]


class _Branches(nn.Module):
    """Several models side by side: input ``i`` → model ``i`` → output ``i``."""

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        self.branches = nn.ModuleList(models)

    def forward(self, *xs):
        return tuple(m(x) for m, x in zip(self.branches, xs))


def _tflite_bytes(name: str, model: nn.Module, samples: tuple, int8: bool, calib, nhwc: bool):
    """The TFLite file's bytes of ``model`` on ``samples`` (see ``to_tflite``); ``calib``: a
    list of per-step lists, one tensor per input."""
    with _quiet():
        import litert_torch  # noqa: F401  (its imports, torchao and torch._pytree, log on first use)
    try:
        with _quiet():
            edge = _to_edge(model.eval(), samples, int8, calib, nhwc)
            with tempfile.TemporaryDirectory() as tmp:
                tmp_file = Path(tmp) / "m.tflite"
                edge.export(str(tmp_file))
                return tmp_file.read_bytes()
    except HwnasError:
        raise
    except Exception as e:  # converter internals: report in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConversionError(f"TFLite conversion of {name} failed: {first[:300]}") from e


def _to_edge(model: nn.Module, samples: tuple, int8: bool, calib, nhwc: bool):
    """litert_torch's converted program of ``model`` (see ``_tflite_bytes``)."""
    import litert_torch

    to_layout = _identity
    if nhwc:
        with torch.no_grad():
            outs = model(*samples)
        outs = outs if isinstance(outs, tuple) else (outs,)
        model = litert_torch.to_channel_last_io(
            model,
            args=list(range(len(samples))),
            outputs=[i for i, o in enumerate(outs) if o.dim() == 4],
        ).eval()  # wrapper: eval too
        to_layout = _nchw_to_nhwc
    xs = tuple(to_layout(x) for x in samples)
    if int8:
        steps = calib or [list(samples)]
        return _convert_int8(model, xs, [tuple(to_layout(c) for c in step) for step in steps])
    return litert_torch.convert(model, xs)


def _convert_int8(model: nn.Module, xs: tuple, calib: list[tuple]):
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import (
        PT2EQuantizer,
        get_symmetric_quantization_config,
    )
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    )
    prepared = prepare_pt2e(_export_for_quantizer(model, xs), quantizer)
    with torch.no_grad():
        for c in calib:
            prepared(*c)
    # no move_exported_model_to_eval: ``model`` was exported in eval mode, so there is no
    # training-mode BatchNorm or dropout to swap, and the call re-traces six patterns per
    # model (~0.5 s of a block's ~3 s); the files are byte-identical without it
    quantized = convert_pt2e(prepared, fold_quantize=False)
    return litert_torch.convert(quantized, xs, quant_config=QuantConfig(pt2e_quantizer=quantizer))


def _export_for_quantizer(model: nn.Module, xs: tuple) -> torch.fx.GraphModule:
    """``model`` exported for the PT2E quantizer: torch.export's non-strict mode, with each
    node's source function (``source_fn_stack``) filled in where the quantizer's pattern
    matchers look for one (add, mul, cat, pools; its GRU matcher aside).  Strict export
    (TorchDynamo) records them itself but takes 5× longer (2 s of a network's ~10 s
    conversion); without them residual adds stay float and a residual block gets float
    input/output with QUANTIZE/DEQUANTIZE around its int8 body.  The files are the strict
    export's (tests compare operators, quantisation, weights and outputs)."""
    import operator

    import torch.nn.functional as F

    sources = {
        torch.ops.aten.add.Tensor: operator.add,
        torch.ops.aten.add_.Tensor: operator.iadd,
        torch.ops.aten.mul.Tensor: operator.mul,
        torch.ops.aten.mul_.Tensor: operator.imul,
        torch.ops.aten.cat.default: torch.cat,
        torch.ops.aten.adaptive_avg_pool2d.default: F.adaptive_avg_pool2d,
        torch.ops.aten.max_pool2d.default: F.max_pool2d,
    }
    module = torch.export.export(model, xs, strict=False).module()
    for node in module.graph.nodes:
        if node.op == "call_function" and node.target in sources:
            node.meta["source_fn_stack"] = [(node.name, sources[node.target])]
    return module


def split_branches(buf: bytes, n: int) -> list[bytes]:
    """Cut a TFLite file whose one graph holds ``n`` independent branches (input
    ``args_i`` → output ``output_i``, as ``to_tflite_many`` converts them) into ``n``
    files: each keeps the operators its output depends on, their tensors, buffers and
    operator codes (renumbered), the model's metadata, and a one-input, one-output
    signature.  Refuses a graph whose branches share an operator."""
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromPackedBuf(buf, 0)
    if len(model.subgraphs) != 1 or len(model.signatureDefs or []) != 1:
        raise ValueError("expected one graph and one signature")
    graph, sig = model.subgraphs[0], model.signatureDefs[0]
    ins = {bytes(t.name).decode(): t for t in sig.inputs}
    outs = {bytes(t.name).decode(): t for t in sig.outputs}
    producer = {int(t): k for k, op in enumerate(graph.operators) for t in op.outputs}
    parts, claimed = [], set()
    for i in range(n):
        tin, tout = ins.get(f"args_{i}"), outs.get(f"output_{i}")
        if tin is None or tout is None:
            raise ValueError(f"branch {i} has no signature input/output")
        ops = _ops_behind(graph, producer, tout.tensorIndex)
        if ops & claimed:
            raise ValueError(f"branch {i} shares operators with another")
        claimed |= ops
        parts.append(_branch_model(fb, model, sorted(ops), tin, tout))
    if len(claimed) != len(graph.operators):
        raise ValueError("operators outside every branch")
    return parts


def _ops_behind(graph, producer: dict, tensor: int) -> set[int]:
    """Indices of the operators that ``tensor`` depends on."""
    ops, stack, seen = set(), [int(tensor)], set()
    while stack:
        t = stack.pop()
        if t < 0 or t in seen or t not in producer:
            continue
        seen.add(t)
        k = producer[t]
        ops.add(k)
        op = graph.operators[k]
        stack.extend(int(x) for x in [*op.inputs, *(op.intermediates or [])])
    return ops


def _branch_model(fb, model, op_ids: list[int], tin, tout) -> bytes:
    """The file of one branch of ``model`` (``split_branches``)."""
    import copy

    import flatbuffers

    graph = model.subgraphs[0]
    ops = [graph.operators[k] for k in op_ids]
    tensors = list(
        dict.fromkeys(
            int(t)
            for op in ops
            for t in [*op.inputs, *op.outputs, *(op.intermediates or [])]
            if int(t) >= 0
        )
    )
    if int(tin.tensorIndex) not in tensors:
        raise ValueError("a branch does not use its input")
    t_new = {t: i for i, t in enumerate(tensors)} | {-1: -1}
    metadata = model.metadata or []
    buffers = list(dict.fromkeys([0, *(graph.tensors[t].buffer for t in tensors)]))
    buffers = list(dict.fromkeys([*buffers, *(m.buffer for m in metadata)]))
    b_new = {b: i for i, b in enumerate(buffers)}
    codes = list(dict.fromkeys(op.opcodeIndex for op in ops))
    c_new = {c: i for i, c in enumerate(codes)}

    out = fb.ModelT()
    out.version, out.description = model.version, model.description
    out.operatorCodes = [model.operatorCodes[c] for c in codes]
    out.buffers = [model.buffers[b] for b in buffers]
    sub = fb.SubGraphT()
    sub.name = graph.name
    sub.tensors = []
    for t in tensors:
        tensor = copy.copy(graph.tensors[t])
        tensor.buffer = b_new[tensor.buffer]
        sub.tensors.append(tensor)
    sub.operators = []
    for op in ops:
        new = copy.copy(op)
        new.opcodeIndex = c_new[op.opcodeIndex]
        new.inputs = [t_new[int(t)] for t in op.inputs]
        new.outputs = [t_new[int(t)] for t in op.outputs]
        if op.intermediates is not None:
            new.intermediates = [t_new[int(t)] for t in op.intermediates]
        sub.operators.append(new)
    sub.inputs, sub.outputs = [t_new[int(tin.tensorIndex)]], [t_new[int(tout.tensorIndex)]]
    out.subgraphs = [sub]
    out.metadata = []
    for m in metadata:
        entry = copy.copy(m)
        entry.buffer = b_new[m.buffer]
        out.metadata.append(entry)
    sig = copy.copy(model.signatureDefs[0])
    sig_in, sig_out = copy.copy(tin), copy.copy(tout)
    sig_in.name, sig_in.tensorIndex = b"args_0", sub.inputs[0]
    sig_out.name, sig_out.tensorIndex = b"output_0", sub.outputs[0]
    sig.inputs, sig.outputs = [sig_in], [sig_out]
    out.signatureDefs = [sig]
    builder = flatbuffers.Builder(1024)
    builder.Finish(out.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _nchw_to_nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 2, 3, 1).contiguous() if t.dim() == 4 else t


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


@contextlib.contextmanager
def _quiet():
    """Silence converter chatter (Python warnings, TF/absl and C++ logging on fd 2) that would
    bury progress bars; errors still surface as exceptions."""
    old = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        with warnings.catch_warnings(), native_stderr_quiet():
            warnings.simplefilter("ignore")
            # ONNX needs no litert-torch (a GPU box may lack it): quiet it only where it is
            with contextlib.suppress(ImportError):
                from litert_torch._config import config

                config.show_progress = False  # its rich log of every conversion stage
            yield
    finally:
        if old is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = old


# --------------------------------------------------------------------------- reading


def tflite_io(path: str | Path) -> dict:
    """Input/output shape, dtype and (scale, zero_point) of a TFLite file, for apps and tests."""
    from ai_edge_litert.interpreter import Interpreter

    with native_stderr_quiet():  # XNNPACK's "INFO: Created ... delegate" line
        interp = Interpreter(model_path=str(path))

    def one(d):
        scale, zp = d.get("quantization", (0.0, 0))
        return {
            "shape": [int(s) for s in d["shape"]],
            "dtype": np.dtype(d["dtype"]).name,
            "scale": float(scale),
            "zero_point": int(zp),
        }

    return {
        "input": one(interp.get_input_details()[0]),
        "output": one(interp.get_output_details()[0]),
    }


def ort_session(path: str | Path, threads: int = 1, profile_prefix: str | Path | None = None):
    """An ONNX Runtime CPU session on ``path``: ``threads`` intra-op threads, one inter-op
    thread, sequential execution, warnings off (what the host backend times and what export
    checks with); with ``profile_prefix``, ONNX Runtime's per-node profiling on, its JSON
    written there by ``end_profiling()``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile_prefix)
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_tflite(
    path: str | Path, x_nchw: np.ndarray, threads: int = 1, nhwc: bool = True
) -> np.ndarray:
    """Run a TFLite file on NCHW float input (batch 1 at a time), quantizing/dequantizing
    int8 I/O with the file's own scale and zero point; returns float outputs, 4-D ones in
    NCHW.  ``nhwc``: the file was written by ``to_tflite(..., nhwc=True)``."""
    from ai_edge_litert.interpreter import Interpreter

    with native_stderr_quiet():
        interp = Interpreter(model_path=str(path), num_threads=threads)
        interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    results = []
    for sample in np.asarray(x_nchw, np.float32):
        x = sample[None]
        if nhwc and x.ndim == 4:
            x = x.transpose(0, 2, 3, 1)
        if inp["dtype"] == np.int8:
            scale, zp = inp["quantization"]
            x = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interp.invoke()
        y = interp.get_tensor(out["index"])
        if out["dtype"] == np.int8:
            scale, zp = out["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        results.append(y[0].transpose(2, 0, 1) if nhwc and y.ndim == 4 else y[0])
    return np.stack(results)
