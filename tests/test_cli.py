"""The `hwnas` CLI in process (main(argv)), plus one real subprocess for the entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from hwnas.cli import main
from hwnas.latency import synthetic_table
from hwnas.space import Arch, arch_complexity, get_space, random_arch, reference_arch


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("HWNAS_NO_PROGRESS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


def test_spaces(capsys):
    code, out, _ = run(capsys, "spaces")
    assert code == 0
    for name in ("fbnet", "fbnet-small", "mnasnet", "mnasnet-small", "224x224x3", "3.19e23"):
        assert name in out


def test_spaces_show(capsys):
    code, out, _ = run(capsys, "spaces", "show", "fbnet-small", "--resolution", "28")
    assert code == 0
    assert "input 28x28x3, 10 classes" in out and "s6.l3.op" in out and "ir_k5_e1_g2" in out
    code, out, _ = run(capsys, "spaces", "show", "mnasnet")
    assert "b3.layers" in out and "mbconv_e6" in out and "mnasnet-a1" in out


def test_unknown_space(capsys):
    assert run(capsys, "spaces", "show", "nope") == (
        2,
        "",
        "error: unknown space 'nope'; choose one of fbnet, fbnet-small, mnasnet, mnasnet-small\n",
    )
    code, _, err = run(capsys, "arch", "sample", "fbnet-tiny", "-o", "x.json")
    assert code == 2 and err.startswith("error: unknown space 'fbnet-tiny'")


def test_arch_ref_and_unknown_reference(capsys, tmp_path):
    path = tmp_path / "ref.json"
    code, out, _ = run(
        capsys,
        "arch",
        "ref",
        "fbnet",
        "fbnet-b",
        "-o",
        path,
        "--classes",
        "10",
        "--resolution",
        "192",
    )
    assert code == 0 and str(path) in out
    arch = Arch.load(path)
    space = get_space("fbnet", num_classes=10, resolution=192)
    assert arch == reference_arch(space, "fbnet-b") and arch.space_args["resolution"] == 192
    assert run(capsys, "arch", "ref", "fbnet-small", "mnasnet-a1", "-o", path) == (
        2,
        "",
        "error: unknown reference 'mnasnet-a1' for space fbnet-small; choose one of "
        "mobilenetv2, fbnet-a, fbnet-b, fbnet-c\n",
    )


def test_arch_sample_and_show(capsys, tmp_path):
    path = tmp_path / "s.json"
    assert run(capsys, "arch", "sample", "mnasnet-small", "--seed", "3", "-o", path)[0] == 0
    space = get_space("mnasnet-small")
    assert Arch.load(path) == random_arch(space, 3)
    total, rows = arch_complexity(space, random_arch(space, 3))
    code, out, _ = run(capsys, "arch", "show", path)
    assert code == 0 and f"{total.macs:,}" in out and f"{total.params:,}" in out
    assert rows[1][0].spec.key() in out
    code, out, _ = run(capsys, "arch", "show", path, "--json")
    doc = json.loads(out)
    assert doc["total"] == {"macs": total.macs, "params": total.params}
    assert [layer["name"] for layer in doc["layers"]] == [info.name for info, _ in rows]


def test_arch_show_with_latency_table(capsys, tmp_path):
    space = get_space("fbnet-small")
    table = synthetic_table(space)
    table.save(tmp_path / "t.csv")
    arch = reference_arch(space, "fbnet-a")
    arch.save(tmp_path / "a.json")
    code, out, _ = run(
        capsys, "arch", "show", tmp_path / "a.json", "--table", tmp_path / "t.csv", "--json"
    )
    doc = json.loads(out)
    assert code == 0
    assert doc["total"]["predicted_ms"] == pytest.approx(table.predict(arch))
    assert [la["latency_ms"] for la in doc["layers"]] == [
        table.lookup(i.key) for i in space.layers(arch)
    ]
    code, out, _ = run(capsys, "arch", "show", tmp_path / "a.json", "--table", tmp_path / "t.csv")
    assert "predicted latency (calibrated)" in out


def test_arch_bad_files(capsys, tmp_path):
    assert run(capsys, "arch", "show", tmp_path / "none.json") == (
        2,
        "",
        f"error: {tmp_path / 'none.json'}: no such architecture file\n",
    )
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    code, _, err = run(capsys, "arch", "show", bad)
    assert code == 2 and err.startswith(f"error: {bad}: not valid JSON (")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"space": "fbnet-small", "choices": [0, 1]}))
    assert run(capsys, "arch", "show", wrong) == (
        2,
        "",
        f"error: {wrong}: architecture does not fit space fbnet-small: architecture "
        "has 2 choices; "
        "space fbnet-small has 29\n",
    )


def _folder(root, classes=("a", "b"), n=12):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                root / c / f"{i}.png"
            )
    return root


def test_train_and_resume(capsys, tmp_path):
    data = _folder(tmp_path / "data")
    arch = tmp_path / "arch.json"
    run(capsys, "arch", "ref", "fbnet-small", "mobilenetv2", "--classes", "2", "-o", arch)
    out_dir = tmp_path / "run"
    args = [
        "train",
        arch,
        "--data",
        "folder",
        "--data-root",
        data,
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        out_dir,
    ]
    code, out, err = run(capsys, *args)
    assert code == 0 and out.startswith("test accuracy ") and "epoch 1/1" in err
    assert {"arch.json", "checkpoint.pt", "log.csv", "model.pt", "result.json"} <= {
        p.name for p in out_dir.iterdir()
    }
    code, out2, err = run(capsys, *args, "--resume")
    assert code == 0 and "resuming after epoch 1/1" in err
    assert out2.split(" after")[0] == out.split(" after")[0]
    code, _, err = run(capsys, *args[:-2], "--out", tmp_path / "run2", "--batch-size", "0")
    assert (code, err) == (2, "error: batch_size must be at least 1, got 0\n")


def test_train_bad_input(capsys, tmp_path):
    arch = tmp_path / "arch.json"
    run(capsys, "arch", "ref", "fbnet-small", "mobilenetv2", "-o", arch)
    assert run(
        capsys,
        "train",
        arch,
        "--data",
        "folder",
        "--data-root",
        tmp_path / "no",
        "--out",
        tmp_path / "r",
    ) == (2, "", f"error: folder: {tmp_path / 'no'} is not a directory\n")
    data = _folder(tmp_path / "data", n=2)
    assert run(
        capsys, "train", arch, "--data", "folder", "--data-root", data, "--out", tmp_path / "r"
    ) == (
        2,
        "",
        f"error: {arch}: the architecture has 10 classes, folder has 2; make it with --classes 2\n",
    )


def test_entry_point_prints_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "hwnas.cli", "arch", "ref", "mnasnet", "fbnet-a", "-o", "x.json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: unknown reference 'fbnet-a' for space mnasnet; choose one of "
        "mobilenetv2, mnasnet-a1, mnasnet-b1\n"
    )


def test_progress_bar_is_silent_off_a_tty(capsys, monkeypatch):
    from hwnas.progress import progress_bar, progress_enabled

    assert not progress_enabled()  # HWNAS_NO_PROGRESS=1 (fixture)
    monkeypatch.delenv("HWNAS_NO_PROGRESS")
    assert not progress_enabled()  # pytest's stderr is not a TTY
    with progress_bar("work", 3) as bar:
        bar.advance(1, "status")
        bar.update(total=4, status="more")
    assert capsys.readouterr() == ("", "")


def test_ctrl_c_is_one_line_and_status_130(capsys, monkeypatch, tmp_path):
    # typer returns Ctrl-C as exit status 130 (not an exception) with standalone_mode off;
    # the line must still be said
    from hwnas.device_profiler import runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "profile_run", interrupted)
    out = tmp_path / "new" / "t.csv"
    code, _, err = run(
        capsys, "profile", "--device", "host", "--space", "fbnet-small", "--out", out
    )
    assert code == 130 and err.strip().splitlines()[-1] == "error: interrupted"
