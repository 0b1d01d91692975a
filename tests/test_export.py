"""hwnas export: parity checks, int8 I/O quantization, model.json vs files, bad input."""

import json
import os

import numpy as np
import onnx
import pytest
import torch

from hwnas.errors import HwnasError
from hwnas.convert import tflite_io
from hwnas.export.config import ExportConfig
from hwnas.export.export import export_run
from hwnas.space import get_space, reference_arch

pytestmark = pytest.mark.export
DATA = "/usr/share/datasets/fashion-mnist"
FAST = dict(
    epochs=1,
    subset=1200,
    batch_size=64,
    eval_images=300,
    parity_images=64,
    calib_images=100,
    warmup=2,
    runs=5,
    repeats=1,
    threads=1,
    progress=False,
)


def _run_dir(root, space, ref, target_ms=50.0):
    run = root / "run"
    run.mkdir()
    arch = reference_arch(get_space(space), ref)
    arch.save(
        run / "arch.json",
        predicted_ms=1.0,
        target_ms=target_ms,
        provenance={"device": "host", "backend": "host-litert", "precision": "int8", "threads": 1},
        supernet_note="the supernet stayed near chance",
    )
    (run / "theta_heatmap.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    return run


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(1)
    run = _run_dir(tmp_path_factory.mktemp("export"), "fbnet-small", "mobilenetv2")
    summary = export_run(ExportConfig(source=run, **FAST))
    return run, summary


def test_fp32_parity_and_onnx_checker(exported):
    run, s = exported
    out = run / "export"
    chk = s["checks"]
    assert chk["parity_images"] == 64
    assert chk["onnx_fp32_max_abs_diff"] <= 1e-4 and chk["onnx_fp32_ok"]
    assert chk["tflite_fp32_max_abs_diff"] <= 1e-4 and chk["tflite_fp32_ok"]
    proto = onnx.load(str(out / "model_fp32.onnx"))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_int8_accuracy_and_agreement_reported(exported):
    _, s = exported
    acc, chk = s["accuracy"], s["checks"]
    assert chk["eval_images"] == 300
    for key in ("tflite_int8", "onnx_int8"):
        assert 0 <= acc[key] <= 1
        assert acc[f"{key}_drop_points"] == pytest.approx(100 * (acc["pytorch_fp32"] - acc[key]))
        assert chk[f"{key}_agreement"] >= 0.8


def test_int8_io_quant_params_usable(exported):
    """Quantize input with model.json's scale/zp, dequantize output: tracks PyTorch fp32."""
    from ai_edge_litert.interpreter import Interpreter

    from hwnas.data import load_dataset
    from hwnas.space import Arch, build_model

    run, _ = exported
    out = run / "export"
    meta = json.loads((out / "model.json").read_text())
    q_in, q_out = meta["int8"]["input"], meta["int8"]["output"]
    assert q_in["dtype"] == q_out["dtype"] == "int8" and q_in["scale"] > 0 < q_out["scale"]
    arch = Arch.load(out / "train" / "arch.json")
    model = build_model(arch.get_space(), arch).eval()
    model.load_state_dict(torch.load(out / "train" / "model.pt", weights_only=True))
    splits = load_dataset("fashion-mnist", DATA, resolution=32, subset=FAST["subset"])
    x, _ = splits.test.batch(torch.arange(40))
    # normalise as an app would from model.json, from raw pixels
    raw = splits.test.images[:40].expand(-1, 3, -1, -1).float() / 255
    mean = torch.tensor(meta["input"]["normalization"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(meta["input"]["normalization"]["std"]).view(1, -1, 1, 1)
    assert torch.allclose((raw - mean) / std, x, atol=1e-5)
    interp = Interpreter(model_path=str(out / "model_int8.tflite"))
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    assert list(inp["shape"]) == meta["input"]["shape"]
    agree = 0
    with torch.no_grad():
        ref = model(x).numpy()
    for i in range(len(x)):
        nhwc = x[i : i + 1].permute(0, 2, 3, 1).numpy()
        q = np.clip(np.round(nhwc / q_in["scale"]) + q_in["zero_point"], -128, 127)
        interp.set_tensor(inp["index"], q.astype(np.int8))
        interp.invoke()
        y = interp.get_tensor(outp["index"]).astype(np.float32) - q_out["zero_point"]
        y *= q_out["scale"]
        agree += int(y.argmax() == ref[i].argmax())
        assert np.abs(y[0] - ref[i]).max() < 0.5 * max(1.0, np.abs(ref[i]).max())
    assert agree >= 0.8 * len(x)


def test_model_json_matches_files(exported):
    run, s = exported
    out = run / "export"
    meta = json.loads((out / "model.json").read_text())
    assert set(meta["files"]) == {
        "model_int8.tflite",
        "model_fp32.tflite",
        "model_int8.onnx",
        "model_fp32.onnx",
    }
    for name, f in meta["files"].items():
        assert (out / name).stat().st_size == f["bytes"]
    io8 = tflite_io(out / "model_int8.tflite")
    io32 = tflite_io(out / "model_fp32.tflite")
    assert (
        meta["input"]["shape"] == io8["input"]["shape"] == io32["input"]["shape"] == [1, 32, 32, 3]
    )
    assert meta["input"]["layout"] == "NHWC"
    assert meta["input"]["dtype"] == {"model_int8.tflite": "int8", "model_fp32.tflite": "float32"}
    assert io32["input"]["dtype"] == "float32"
    for side in ("input", "output"):
        assert meta["int8"][side]["scale"] == io8[side]["scale"]
        assert meta["int8"][side]["zero_point"] == io8[side]["zero_point"]
        assert meta["int8"][side]["dtype"] == io8[side]["dtype"]
    assert meta["output"]["shape"] == io8["output"]["shape"] == [1, 10]
    assert meta["output"]["meaning"] == "logits over classes"
    labels = (out / "labels.txt").read_text().splitlines()
    assert labels == meta["output"]["classes"] and len(labels) == 10
    sess_in = onnx.load(str(out / "model_fp32.onnx")).graph.input[0]
    dims = [d.dim_value for d in sess_in.type.tensor_type.shape.dim]
    assert dims == meta["input"]["onnx_shape"] == [1, 3, 32, 32]
    lat = meta["latency"]
    assert lat["predicted_ms"] == 1.0 and lat["target_ms"] == 50.0
    assert {m["backend"] for m in lat["measured"]} == {"host-litert", "host-ort"}
    assert all(m["median_ms"] > 0 and m["device"] == "host" for m in lat["measured"])
    assert meta["macs"] > 0 and meta["params"] > 0


def test_closing_loop_report_and_plots(exported):
    run, s = exported
    out = run / "export"
    lat = s["latency"]
    assert lat["backend"] == "host-litert" and lat["primary"] == "model_int8.tflite"
    assert lat["target_holds"] == (lat["measured_ms"] <= 50.0)
    text = (out / "report.md").read_text()
    for needle in (
        "model_int8.tflite",
        "predicted",
        "Target:",
        "export.png",
        "search/theta_heatmap.png",
        "**Warning from the search:** the supernet stayed near chance.",
    ):
        assert needle in text
    assert (out / "export.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "search" / "theta_heatmap.png").exists()
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []  # no temp dirs
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == 0o777 & ~umask  # not mkdtemp's 0700


def test_second_export_reuses_training(exported, capsys):
    run, _ = exported
    cfg = ExportConfig(source=run, **{**FAST, "progress": True}, formats="onnx", precision="fp32")
    s = export_run(cfg)
    assert "reusing the trained model" in capsys.readouterr().err
    out = run / "export"
    assert set(s["files"]) == {"model_fp32.onnx"}
    assert not (out / "model_int8.tflite").exists()  # replaced as a whole
    assert (out / "train" / "model.pt").exists()
    assert s["checks"]["onnx_fp32_max_abs_diff"] <= 1e-4


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("case", ["no_arch", "unknown_space", "no_data", "unwritable"])
def test_bad_input_one_line_nothing_written(tmp_path, case):
    arch = tmp_path / "arch.json"
    reference_arch(get_space("fbnet-small"), "mobilenetv2").save(arch)
    (tmp_path / "afile").write_text("x")
    kwargs = dict(source=arch)
    if case == "no_arch":
        (tmp_path / "emptyrun").mkdir()
        kwargs["source"] = tmp_path / "emptyrun"
        message = (
            f"{tmp_path / 'emptyrun'}: no arch.json in this run directory (pass a search "
            "run directory or an ARCH.json)"
        )
    elif case == "unknown_space":
        (tmp_path / "bad.json").write_text('{"space": "nope", "choices": [0]}')
        kwargs["source"] = tmp_path / "bad.json"
        message = (
            f"{tmp_path / 'bad.json'}: architecture of unknown space 'nope': unknown "
            "space 'nope'; choose one of fbnet, fbnet-small, mnasnet, mnasnet-small"
        )
    elif case == "no_data":
        kwargs["data_root"] = tmp_path / "nodata"
        message = (
            f"no data for training and int8 calibration (fashion-mnist): fashion-mnist: "
            f"{tmp_path / 'nodata'} is not a directory"
        )
    else:
        kwargs["out"] = tmp_path / "afile" / "export"
        message = (
            f"cannot write the export to {tmp_path / 'afile' / 'export'}: "
            f"{tmp_path / 'afile'} is not a directory"
        )
    before = _listing(tmp_path)
    with pytest.raises(HwnasError) as e:
        export_run(ExportConfig(**kwargs, progress=False))
    assert str(e.value) == message
    assert _listing(tmp_path) == before


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    from hwnas.cli import main

    with pytest.raises(SystemExit) as e:
        main(["export", str(tmp_path), "--formats", "pdf"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: --formats pdf: choose from tflite, onnx\n"


def test_config_validation():
    with pytest.raises(HwnasError, match="--epochs must be at least 1"):
        ExportConfig(source="x", epochs=0)
    with pytest.raises(HwnasError, match="--precision int4"):
        ExportConfig(source="x", precision="int8,int4")
    assert ExportConfig(source="x", formats="onnx, tflite").formats == ("tflite", "onnx")


@pytest.mark.slow
def test_mnasnet_reference_export(tmp_path):
    run = _run_dir(tmp_path, "mnasnet-small", "mnasnet-a1")
    s = export_run(ExportConfig(source=run, **FAST))
    assert s["checks"]["onnx_fp32_max_abs_diff"] <= 1e-4
    assert s["checks"]["tflite_fp32_max_abs_diff"] <= 1e-4
    io8 = tflite_io(run / "export" / "model_int8.tflite")
    assert (io8["input"]["dtype"], io8["output"]["dtype"]) == ("int8", "int8")
    assert s["checks"]["tflite_int8_agreement"] >= 0.8
    assert os.path.exists(run / "export" / "model.json")


def test_backend_follows_the_table_provenance():
    from hwnas.device_profiler.backends import backend_settings
    from hwnas.export.checks import device_name
    from hwnas.export.inputs import choose_backend

    cfg = ExportConfig(source="x", progress=False)
    phone = {
        "device": {"model": "Pixel", "serial": "FA7"},
        "backend": "adb",
        "threads": 1,
        "cores": [2, 3],
        "use_xnnpack": True,
    }
    assert choose_backend(cfg, phone) == "adb"
    assert backend_settings(phone, "adb", threads=1, precision="int8") == {
        "threads": 1,
        "precision": "int8",
        "cores": (2, 3),
        "use_xnnpack": True,
    }
    assert choose_backend(cfg, {"device": "host", "backend": "host-ort"}) == "host-ort"
    assert choose_backend(cfg, {}) == "host-litert"
    assert backend_settings(phone, "host-ort", threads=2, precision="int8") == {
        "threads": 2,
        "precision": "int8",
    }
    assert device_name(phone["device"]) == "Pixel" and device_name(None) == "?"
    with pytest.raises(HwnasError) as e:
        choose_backend(ExportConfig(source="x", backend="gpu"), {})
    assert str(e.value) == "unknown backend 'gpu'; choose one of host-ort, host-litert, adb"


def test_export_result_is_frozen_and_indexes_like_the_summary():
    from dataclasses import FrozenInstanceError
    from pathlib import Path

    from hwnas.export.config import ExportResult

    r = ExportResult(Path("out"), {"checks": {"a": 1}, "files": {}, "accuracy": {}, "latency": {}})
    assert r["checks"] is r.checks and r.files == {}
    with pytest.raises(FrozenInstanceError):
        r.out = Path("elsewhere")


def test_model_json_states_the_training_resize():
    from hwnas.export.app import resize_rule

    assert resize_rule("fashion-mnist", 32).startswith(
        "28x28 images zero-padded by 2 px on each side to 32x32"
    )
    assert resize_rule("cifar10", 32).startswith("bilinear (antialiased) resize to 32x32")


def test_out_never_replaces_a_folder_that_is_not_an_export(tmp_path):
    from hwnas.export.inputs import check_writable

    run = tmp_path / "run"
    run.mkdir()
    (run / "arch.json").write_text("{}")
    (run / "pareto.png").write_bytes(b"png")
    with pytest.raises(HwnasError) as e:
        check_writable(run, run / "arch.json")
    assert str(e.value) == (
        f"cannot write the export to {run}: it holds the architecture "
        f"{run / 'arch.json'}; choose another --out"
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(HwnasError) as e:
        check_writable(other, run / "arch.json")
    assert str(e.value) == (
        f"cannot write the export to {other}: it is a folder with other "
        "files, not an earlier export; choose another --out"
    )
    assert (other / "notes.txt").read_text() == "mine"
    for ok in ("train", "summary.json"):  # an interrupted or an earlier export
        folder = tmp_path / f"ok-{ok}"
        (folder / ok).mkdir(parents=True)
        check_writable(folder, run / "arch.json")


def test_training_of_another_arch_is_not_reused(tmp_path):
    from hwnas.export.inputs import Source
    from hwnas.export.training import train_or_reuse
    from hwnas.search.base import SearchResult
    from hwnas.space.arch import random_arch

    space = get_space("fbnet-small")
    mine, other = reference_arch(space, "mobilenetv2"), random_arch(space, seed=1)
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    other.save(train_dir / "arch.json")
    for name in ("model.pt", "result.json"):
        (train_dir / name).write_text("{}")
    src = Source(mine, space, SearchResult(mine), tmp_path / "arch.json", None)
    cfg = ExportConfig(source=tmp_path, resume=True, progress=False)
    with pytest.raises(HwnasError) as e:
        train_or_reuse(cfg, src, None, train_dir)
    assert str(e.value) == (
        f"{train_dir} holds the training of another architecture; drop "
        "--resume to train this one from scratch, or choose another --out"
    )
    assert (train_dir / "model.pt").exists()  # refused before touching anything


def test_failed_swap_keeps_the_training(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import hwnas.export.export as ex

    run = _run_dir(tmp_path, "fbnet-small", "mobilenetv2")
    out = run / "export"
    (out / "train").mkdir(parents=True)
    (out / "train" / "model.pt").write_bytes(b"weights")
    (out / "summary.json").write_text("{}")
    summary = {"files": {}, "checks": {}, "accuracy": {}, "train": {}}
    monkeypatch.setattr(ex, "load_data", lambda cfg, space: SimpleNamespace(train=[0] * 20))
    monkeypatch.setattr(ex, "train_or_reuse", lambda *a: (None, {}))
    monkeypatch.setattr(ex, "_convert_and_check", lambda *a: dict(summary))
    monkeypatch.setattr(ex, "_closing_loop", lambda *a: {})
    monkeypatch.setattr("hwnas.export.app.write_app_files", lambda *a: None)
    monkeypatch.setattr("hwnas.export.report.write_report", lambda *a: None)

    def broken_swap(tmp, out_dir):
        os.replace(out_dir / "train", tmp / "train")
        raise OSError("disk full")

    monkeypatch.setattr(ex, "_finish", broken_swap)
    with pytest.raises(OSError):
        export_run(ExportConfig(source=run, subset=200, calib_images=10, progress=False))
    assert (out / "train" / "model.pt").read_bytes() == b"weights"
    assert not [p for p in run.iterdir() if p.name.startswith(".")]


def _onnx_matches(onnx_path, space, choices, weights) -> bool:
    """True when the exported fp32 ONNX computes the network ``choices`` with ``weights``."""
    import onnxruntime as ort

    from hwnas.space import build_model

    model = build_model(space, choices)
    model.load_state_dict(torch.load(weights, weights_only=True))
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model.eval()(x).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = np.concatenate([sess.run(None, {"input": x[i : i + 1].numpy()})[0] for i in range(4)])
    return bool(np.abs(got - want).max() < 1e-4)


def test_reference_trained_with_the_same_recipe_and_shipped_when_better(tmp_path, monkeypatch):
    """--reference trains the MobileNetV2-like reference scaled to the run's target (in a
    second process), states both accuracies in the report, and ships the reference's weights
    when it wins on validation; --ship searched ships the search's pick from the same
    trainings (reused, not retrained)."""
    from hwnas.export import export as ex
    from hwnas.latency import synthetic_table

    torch.set_num_threads(1)
    space = get_space("fbnet-small")
    table = synthetic_table(space)
    path = table.save(tmp_path / "t.csv")
    target = 0.8 * table.predict(reference_arch(space, "mobilenetv2"), space)
    run = _run_dir(tmp_path, "fbnet-small", "fbnet-a", target_ms=target)
    searched = json.loads((run / "arch.json").read_text())["choices"]
    cfg = dict(source=run, table=path, formats=("onnx",), precision=("fp32",), backend="host-ort")
    fast = {**FAST, "subset": 600, "eval_images": 100}
    # 600 images train neither network beyond chance: force the validation verdict (the
    # rule itself: test_pick_shipped) to see that the reference's weights are what ships
    monkeypatch.setattr(ex, "pick_shipped", lambda ship, searched_val, ref_val: "reference")
    s = export_run(ExportConfig(reference=True, **cfg, **fast))
    ref, out = s["reference"], run / "export"
    assert ref["predicted_ms"] <= target and ref["name"].startswith("mobilenetv2")
    assert 0.0 <= ref["test_acc"] <= 1.0 and 0.0 <= ref["winner_val_acc"] <= 1.0
    assert s["shipped"] == "reference" and s["arch"]["choices"] == ref["choices"] != searched
    assert s["latency"]["predicted_ms"] == pytest.approx(ref["predicted_ms"])
    assert s["train"]["test_acc"] == ref["test_acc"]
    # the two trainings ran side by side on half the cores each (1 and 1 on 2 cores)
    from hwnas.export.training import shared_threads

    for side in ("train", "reference"):
        config = json.loads((out / side / "result.json").read_text())["config"]
        assert config["threads"] == shared_threads() == max(1, os.cpu_count() // 2)
    assert _onnx_matches(out / "model_fp32.onnx", space, ref["choices"], out / "reference/model.pt")
    report = (out / "report.md").read_text()
    assert "Against the hand-designed baseline" in report
    assert "**Shipped: the scaled reference.**" in report
    from hwnas.export.cli import _result_lines

    assert "shipped: the scaled reference" in _result_lines(s.summary)

    monkeypatch.undo()
    s = export_run(ExportConfig(reference=True, ship="searched", **cfg, **fast))
    assert s["shipped"] == "searched" and s["arch"]["choices"] == searched
    assert s["reference"] == ref  # both trainings reused
    assert _onnx_matches(out / "model_fp32.onnx", space, searched, out / "train/model.pt")
    assert "Shipped: the searched architecture" in (out / "report.md").read_text()


def test_report_says_when_test_and_validation_disagree():
    """A reference shipped on validation while the test set favours the searched network
    (the twelfth make run: +0.63 on test, -0.21 on validation): the report says both, and
    says nothing of the kind when the test set agrees."""
    from hwnas.export.report import _reference

    ref = {"name": "mobilenetv2 x0.9 repaired", "predicted_ms": 0.187, "test_acc": 0.9111}
    ref |= {"val_acc": 0.9147, "winner_val_acc": 0.9126, "winner_test_acc": 0.9174}
    text = " ".join(_reference({"reference": ref, "shipped": "reference"}))
    assert "**Shipped: the scaled reference.**" in text and "91.47%" in text
    assert "The test set puts the searched architecture ahead (+0.63 points)" in text
    agree = " ".join(
        _reference({"reference": ref | {"winner_test_acc": 0.905}, "shipped": "reference"})
    )
    assert "WORSE (-0.61 points)" in agree and "The test set puts" not in agree
    searched = " ".join(_reference({"reference": ref, "shipped": "searched"}))
    assert "Shipped: the searched architecture" in searched and "The test set puts" not in searched


def test_pick_shipped():
    """The reference ships only under --ship best and only when strictly better on the
    validation split; ties, missing or NaN accuracies keep the search's pick."""
    from hwnas.export.training import pick_shipped

    assert pick_shipped("best", 0.90, 0.91) == "reference"
    assert pick_shipped("best", 0.91, 0.90) == "searched"
    assert pick_shipped("best", 0.90, 0.90) == "searched"
    assert pick_shipped("searched", 0.80, 0.91) == "searched"
    assert pick_shipped("best", None, 0.91) == "searched"
    assert pick_shipped("best", float("nan"), 0.91) == "searched"
    with pytest.raises(HwnasError, match="--ship 'any': choose from best, searched"):
        ExportConfig(source="x", ship="any")


def test_reference_without_a_table_is_one_line_and_writes_nothing(tmp_path):
    arch = reference_arch(get_space("fbnet-small"), "mobilenetv2")
    arch.save(tmp_path / "a.json")
    with pytest.raises(HwnasError, match="--reference needs the run's latency table and target"):
        export_run(ExportConfig(source=tmp_path / "a.json", reference=True, **FAST))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


_ORPHAN_SCRIPT = """
import multiprocessing, os, sys, time
from pathlib import Path
from hwnas.export.training import exit_with_parent

def child(pid_file, watch):
    if watch == "watch":
        exit_with_parent()
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(60)

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    ctx.Process(target=child, args=sys.argv[1:], daemon=True).start()
    time.sleep(60)
"""


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting for a reaper."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("watch", ["watch", "no-watch"])
def test_reference_worker_ends_when_its_parent_is_killed(tmp_path, watch):
    """A killed export (SIGKILL: no exit handlers) must not leave the reference's training
    running; without the watch the same child outlives its parent, so the test can fail."""
    import signal
    import subprocess
    import sys
    import time

    script, pid_file = tmp_path / "parent.py", tmp_path / "child.pid"
    script.write_text(_ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(pid_file), watch])
    child = None
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + (10 if watch == "watch" else 3)
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _running(child) == (watch == "no-watch")
    finally:
        parent.kill()
        if child and _running(child):
            os.kill(child, signal.SIGKILL)
