"""Backends: Samples statistics, host ONNX Runtime and LiteRT timing, the registry."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.device_profiler.backends import (
    BACKENDS,
    HostLiteRTBackend,
    HostOrtBackend,
    Samples,
    get_backend,
)
from hwnas.device_profiler.blockmodels import ModelCache
from hwnas.errors import HwnasError
from hwnas.space import LayerInfo, parse_key


def _info(key="ir_k3_e1", shape=(8, 8, 8), cout=8, stride=1):
    return LayerInfo("x", parse_key(key), shape, cout, stride)


def test_samples_stats():
    s = Samples(tuple(float(v) for v in range(1, 11)), per_repeat=(5.0, 6.0))
    st = s.stats()
    assert st["median_us"] == 5.5 and st["runs"] == 10 and st["mean_us"] == 5.5
    assert st["p10_us"] == pytest.approx(1.9) and st["p90_us"] == pytest.approx(9.1)
    assert st["std_us"] == pytest.approx(np.std(range(1, 11)))
    assert s.repeat_cv() == pytest.approx(np.std([5, 6], ddof=1) / 5.5)
    assert Samples((1.0,)).repeat_cv() is None
    with pytest.raises(HwnasError, match="no latency samples"):
        Samples(()).stats()


@pytest.fixture(scope="module")
def onnx_int8(tmp_path_factory) -> Path:
    cache = ModelCache.at(tmp_path_factory.mktemp("cache"))
    return cache.block(_info(), "onnx", "int8").path


def test_host_ort_measures_runs_times_repeats(onnx_int8):
    b = get_backend("host-ort", threads=1, precision="int8")
    s = b.measure(onnx_int8, warmup=2, runs=7, repeats=3)
    assert len(s.us) == 21 and len(s.per_repeat) == 3 and min(s.us) > 0
    p = b.provenance()
    assert p["device"] == "host" and p["backend"] == "host-ort" and p["threads"] == 1
    assert p["runtime_version"] and p["host_cpu"]


def test_host_backend_errors(tmp_path, onnx_int8):
    with pytest.raises(HwnasError, match=r"^unknown backend 'phone'; choose one of"):
        get_backend("phone")
    with pytest.raises(HwnasError, match=r"^backend host-ort does not take --serial$"):
        get_backend("host-ort", serial="x")
    with pytest.raises(HwnasError, match=r"^--threads 0 must be at least 1$"):
        HostOrtBackend(threads=0)
    b = HostOrtBackend()
    with pytest.raises(HwnasError, match=r"does not exist"):
        b.measure(tmp_path / "nope.onnx", warmup=0, runs=1, repeats=1)
    with pytest.raises(HwnasError, match=r"need --warmup >= 0, --runs >= 1"):
        b.measure(onnx_int8, warmup=0, runs=0, repeats=1)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(HwnasError, match=r"^onnxruntime cannot load bad.onnx"):
        b.measure(bad, warmup=0, runs=1, repeats=1)


def test_registry_is_extensible(monkeypatch):
    class Fake:
        name, model_format, precision = "fake", "onnx", "int8"

        def __init__(self, **kw):
            self.kw = kw

    monkeypatch.setitem(BACKENDS, "fake", Fake)
    assert get_backend("fake", serial="s").kw == {"serial": "s"}
    assert "adb" in BACKENDS


@pytest.mark.export
def test_host_litert_times_int8_tflite(tmp_path):
    torch.set_num_threads(1)
    path = ModelCache.at(tmp_path).block(_info(), "tflite", "int8").path
    b = HostLiteRTBackend(threads=1)
    s = b.measure(path, warmup=2, runs=5, repeats=2)
    assert len(s.us) == 10 and all(v > 0 for v in s.us)
    assert b.provenance()["runtime"].startswith("ai-edge-litert")


def test_int8_onnx_block_runs_every_conv_as_qlinearconv(tmp_path):
    """Trained-like BN statistics keep the folded biases distinct, so onnxruntime fuses each
    DequantizeLinear→Conv→QuantizeLinear (with all-zero biases it ran some convs in fp32).
    No residual here: a DequantizeLinear shared by a conv and the residual Add is not fused,
    in a block as in a whole network."""
    import onnx
    import onnxruntime as ort

    path = ModelCache.at(tmp_path).block(_info("ir_k5_e6", (4, 4, 56), 64), "onnx", "int8").path
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert ops.count("QLinearConv") == 3 and "Conv" not in ops, ops
