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
    with _quiet():
        import litert_torch  # noqa: F401  (its imports, torchao and torch._pytree, log on first use)

    path = Path(path)
    try:
        with _quiet():
            edge = _to_edge(model.eval(), sample, int8, calib, nhwc)
            with tempfile.TemporaryDirectory() as tmp:
                tmp_file = Path(tmp) / "m.tflite"
                edge.export(str(tmp_file))
                atomic_write_bytes(path, tmp_file.read_bytes())
    except HwnasError:
        raise
    except Exception as e:  # converter internals: report in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConversionError(f"TFLite conversion of {path.name} failed: {first[:300]}") from e
    return path


def _to_edge(model: nn.Module, sample, int8: bool, calib, nhwc: bool):
    """litert_torch's converted program of ``model`` (see ``to_tflite``)."""
    import litert_torch

    to_layout = _identity
    if nhwc:
        with torch.no_grad():
            out_dims = model(sample).dim()
        model = litert_torch.to_channel_last_io(
            model, args=[0], outputs=[0] if out_dims == 4 else []
        ).eval()  # wrapper: eval too
        to_layout = _nchw_to_nhwc
    x = to_layout(sample)
    if int8:
        return _convert_int8(model, x, [to_layout(c) for c in (calib or [sample])])
    return litert_torch.convert(model, (x,))


def _convert_int8(model: nn.Module, x: torch.Tensor, calib: list[torch.Tensor]):
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
    # strict export records each node's source function, which the quantizer's pattern
    # matchers need: without it residual adds stay float and a residual block gets float
    # input/output with QUANTIZE/DEQUANTIZE around the int8 body
    exported = torch.export.export(model, (x,), strict=True).module()
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for c in calib:
            prepared(c)
    # no move_exported_model_to_eval: ``model`` was exported in eval mode, so there is no
    # training-mode BatchNorm or dropout to swap, and the call re-traces six patterns per
    # model (~0.5 s of a block's ~3 s); the files are byte-identical without it
    quantized = convert_pt2e(prepared, fold_quantize=False)
    return litert_torch.convert(quantized, (x,), quant_config=QuantConfig(pt2e_quantizer=quantizer))


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


def ort_session(path: str | Path, threads: int = 1):
    """An ONNX Runtime CPU session on ``path``: ``threads`` intra-op threads, one inter-op
    thread, sequential execution, warnings off (what the host backend times and what export
    checks with)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
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
