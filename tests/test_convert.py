"""The one converter: ONNX fp32/int8 QDQ and TFLite fp32/full-int8 against PyTorch."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from hwnas.convert import (
    ConversionError,
    run_tflite,
    split_branches,
    tflite_io,
    to_onnx,
    to_onnx_int8,
    to_tflite,
    to_tflite_many,
)
from hwnas.space import LayerInfo, layer_module, parse_key

pytestmark = pytest.mark.export


def _block(key, shape=(8, 8, 16), cout=16, stride=1):
    torch.manual_seed(0)
    info = LayerInfo("x", parse_key(key), shape, cout, stride)
    h, w, c = shape
    return layer_module(info).eval(), torch.randn(1, c, h, w)


@pytest.mark.parametrize("key", ["ir_k3_e1_g2", "mbconv_k5_e6_se0.25_id", "stem_k3"])
def test_fp32_tflite_and_onnx_match_torch(tmp_path, key):
    shape = (8, 8, 3) if key.startswith("stem") else (8, 8, 16)
    m, x = _block(key, shape)
    with torch.no_grad():
        ref = m(x).numpy()
    y = run_tflite(to_tflite(m, x, tmp_path / "m.tflite", int8=False), x.numpy())
    assert np.abs(y - ref).max() <= 1e-4
    sess = ort.InferenceSession(str(to_onnx(m, x, tmp_path / "m.onnx")))
    assert np.abs(sess.run(None, {"input": x.numpy()})[0] - ref).max() <= 1e-4
    assert tflite_io(tmp_path / "m.tflite")["input"]["shape"] == [1, 8, 8, shape[2]]  # NHWC


def test_int8_tflite_has_int8_io_and_tracks_fp32(tmp_path):
    m, x = _block("stem_k3", (8, 8, 3), cout=16)
    calib = [torch.randn_like(x) for _ in range(8)]
    path = to_tflite(m, x, tmp_path / "m8.tflite", int8=True, calib=calib)
    io = tflite_io(path)
    assert io["input"]["dtype"] == "int8" and io["output"]["dtype"] == "int8"
    assert io["input"]["scale"] > 0 and io["output"]["scale"] > 0
    with torch.no_grad():
        ref = m(x).numpy()
    y = run_tflite(path, x.numpy())
    assert np.abs(y - ref).max() < 8 * io["output"]["scale"] + 0.05 * np.abs(ref).max()


def test_onnx_int8_is_qdq(tmp_path):
    m, x = _block("ir_k3_e3")
    fp32 = to_onnx(m, x, tmp_path / "m.onnx")
    q = to_onnx_int8(fp32, [torch.randn_like(x).numpy() for _ in range(4)], tmp_path / "q.onnx")
    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    with torch.no_grad():
        ref = m(x).numpy()
    y = ort.InferenceSession(str(q)).run(None, {"input": x.numpy()})[0]
    assert np.corrcoef(y.ravel(), ref.ravel())[0, 1] > 0.98


def test_onnx_int8_runs_int8_end_to_end(tmp_path):
    """onnxruntime fuses the whole residual block into QLinear ops: one Quantize in, one
    Dequantize out, no float conv or add left (int8 activations left fp32 convs, float adds
    and dequantize-per-run weights in the graph, 2.2x slower)."""
    from hwnas.device_profiler.blockmodels import trained_like

    m, x = _block("ir_k5_e6")
    m = trained_like(m)  # distinct conv biases, as a trained network has
    fp32 = to_onnx(m, x, tmp_path / "m.onnx")
    q = to_onnx_int8(fp32, [torch.randn_like(x).numpy() for _ in range(4)], tmp_path / "q.onnx")
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(str(q), opts, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert ops.count("QuantizeLinear") == 1 and ops.count("DequantizeLinear") == 1, ops
    assert "QLinearAdd" in ops and ops.count("QLinearConv") == 3, ops
    assert not {"Conv", "Add"} & set(ops), ops


def test_conversion_failure_is_one_line(tmp_path):
    class Bad(torch.nn.Module):
        def forward(self, x):
            return torch.linalg.svd(x[0, 0])[0][None, None]

    with pytest.raises(ConversionError, match=r"TFLite conversion of bad.tflite failed") as e:
        to_tflite(Bad(), torch.randn(1, 1, 4, 4), tmp_path / "bad.tflite", int8=False, nhwc=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "bad.tflite").exists()


@pytest.mark.parametrize("key", ["ir_k3_e1", "mbconv_k3_e3_se0.25_id"])
def test_int8_residual_block_keeps_int8_io(tmp_path, key):
    """Residual adds must be quantized too (strict export), else I/O falls back to float."""
    m, x = _block(key)
    path = to_tflite(m, x, tmp_path / "r.tflite", int8=True, calib=[torch.randn_like(x)])
    io = tflite_io(path)
    assert (io["input"]["dtype"], io["output"]["dtype"]) == ("int8", "int8")


def test_onnx_needs_no_litert_torch(tmp_path, monkeypatch):
    """A GPU box with torch, onnx and onnxruntime but no litert-torch (as the accelerator
    check found, 2026-12-04) still exports ONNX: only the TFLite path needs the converter."""
    import sys

    for name in [m for m in sys.modules if m == "litert_torch" or m.startswith("litert_torch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # `import litert_torch…` raises
    with pytest.raises(ImportError):
        import litert_torch._config  # noqa: F401
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 8, 8)
    path = to_onnx(model, x, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-5)


def _graph(path):
    """Operators (builtin codes), tensors (shape, type, quantisation) and weights of a file:
    what its timing and outputs depend on, names aside."""
    from ai_edge_litert import schema_py_generated as fb

    m = fb.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    g = m.subgraphs[0]

    def q(t):
        qp = t.quantization
        if qp is None or qp.scale is None:
            return None
        return (np.asarray(qp.scale).tolist(), np.asarray(qp.zeroPoint).tolist())

    ops = [m.operatorCodes[o.opcodeIndex].builtinCode for o in g.operators]
    tensors = sorted(str((list(t.shape), t.type, q(t))) for t in g.tensors)
    weights = sorted(
        bytes(np.asarray(m.buffers[t.buffer].data, np.uint8))
        for t in g.tensors
        if m.buffers[t.buffer].data is not None
    )
    return ops, tensors, weights


@pytest.mark.parametrize("int8", [True, False])
def test_models_converted_together_are_the_models_converted_alone(tmp_path, int8):
    """``to_tflite_many`` (one converter call, the file cut per model) gives each model the
    operators, quantisation, weights and outputs that converting it alone gives: a residual
    block, a strided one, a grouped one, a stem and a small classifier (2-d output), int8
    with their own calibrations, and fp32."""
    from hwnas.device_profiler.blockmodels import trained_like

    classifier = torch.nn.Sequential(
        torch.nn.Conv2d(16, 8, 1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 10),
    ).eval()
    made = [
        _block("ir_k3_e3"),
        _block("ir_k5_e1", (8, 8, 16), cout=24, stride=2),
        _block("ir_k3_e1_g2", (4, 4, 16), cout=16),
        _block("stem_k3", (8, 8, 3), cout=8),
        (classifier, torch.randn(1, 16, 4, 4)),
    ]
    models = [trained_like(m, seed=k) for k, (m, _) in enumerate(made)]
    calibs = [[torch.randn_like(x) for _ in range(4)] for _, x in made]
    together = to_tflite_many(
        models,
        [x for _, x in made],
        [tmp_path / f"t{k}.tflite" for k in range(len(made))],
        int8=int8,
        calibs=calibs,
    )
    for k, (model, (_, x)) in enumerate(zip(models, made)):
        alone = to_tflite(model, x, tmp_path / f"a{k}.tflite", int8=int8, calib=calibs[k])
        assert _graph(together[k]) == _graph(alone), k
        assert tflite_io(together[k]) == tflite_io(alone)
        probe = torch.randn_like(x).numpy()
        assert np.array_equal(run_tflite(together[k], probe), run_tflite(alone, probe)), k


def test_a_graph_whose_branches_share_an_operator_is_not_cut(tmp_path):
    from hwnas.convert import _tflite_bytes

    class Shared(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, a, b):
            y = self.conv(a)
            return y, y + b

    buf = _tflite_bytes("s", Shared().eval(), (torch.randn(1, 4, 8, 8),) * 2, False, None, True)
    with pytest.raises(ValueError, match="shares operators"):
        split_branches(buf, 2)


@pytest.mark.parametrize("key", ["ir_k5_e3", "mbconv_k3_e3_se0.25_id"])
def test_the_quantizers_export_is_strict_exports(tmp_path, monkeypatch, key):
    """Non-strict export with the source functions filled in (add, mul, pools: a residual
    and a squeeze-excite block) quantizes as strict export (TorchDynamo) does."""
    from hwnas import convert
    from hwnas.device_profiler.blockmodels import trained_like

    m, x = _block(key)
    m = trained_like(m)
    calib = [torch.randn_like(x) for _ in range(4)]
    fast = to_tflite(m, x, tmp_path / "fast.tflite", int8=True, calib=calib)
    monkeypatch.setattr(
        convert,
        "_export_for_quantizer",
        lambda m, xs: torch.export.export(m, xs, strict=True).module(),
    )
    strict = to_tflite(m, x, tmp_path / "strict.tflite", int8=True, calib=calib)
    assert _graph(fast) == _graph(strict)
    assert np.array_equal(run_tflite(fast, x.numpy()), run_tflite(strict, x.numpy()))
