"""Atomic writes: whole files only, with the permissions a plain open() would give."""

import os
from pathlib import Path

import pytest

from hwnas.io import atomic_write_bytes, atomic_write_json


def test_atomic_write_respects_umask_not_mkstemp_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "model.tflite", b"x")
        assert (tmp_path / "model.tflite").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "private.bin", b"x")
        assert (tmp_path / "private.bin").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.json"
    atomic_write_json(target, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert target.read_text() == '{\n  "ok": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_native_stderr_quiet_hides_fd2_nests_and_yields_to_debug(capfd, monkeypatch):
    import logging

    from hwnas.io import native_stderr_quiet

    monkeypatch.delenv("HWNAS_DEBUG", raising=False)
    with native_stderr_quiet():
        with native_stderr_quiet():
            os.write(2, b"inner C++ log\n")
        os.write(2, b"outer C++ log\n")
        assert logging.root.manager.disable >= logging.WARNING
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
    assert logging.root.manager.disable == logging.NOTSET
    monkeypatch.setenv("HWNAS_DEBUG", "1")
    with native_stderr_quiet():
        os.write(2, b"kept for debugging\n")
    assert capfd.readouterr().err == "kept for debugging\n"


def test_one_cache_folder_serves_block_models_and_the_adb_key(tmp_path, monkeypatch):
    from hwnas.device_profiler.adb.keys import key_path
    from hwnas.device_profiler.blockmodels import default_cache_dir
    from hwnas.io import cache_dir

    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "blocks"
    assert key_path() == tmp_path / "adbkey"
    monkeypatch.delenv("HWNAS_CACHE_DIR")
    assert cache_dir("blocks") == Path.home() / ".cache" / "hwnas" / "blocks"


def test_resume_accepts_a_run_that_predates_a_setting_left_at_its_default(tmp_path):
    """A run whose config.json was written before a setting existed resumes when that
    setting is at its default, and is refused when it is not (or when another changed)."""
    from hwnas.errors import HwnasError
    from hwnas.io import check_resume

    (tmp_path / "ckpt.pt").write_bytes(b"x")
    atomic_write_json(tmp_path / "config.json", {"epochs": 3, "resume": False})
    new = {"epochs": 3, "resume": True, "added": False}
    assert check_resume(tmp_path, "ckpt.pt", new, True, "run", HwnasError, {"added": False})
    with pytest.raises(HwnasError, match=r"different settings \(added\)"):
        check_resume(tmp_path, "ckpt.pt", new, True, "run", HwnasError)
    with pytest.raises(HwnasError, match=r"different settings \(added\)"):
        check_resume(
            tmp_path, "ckpt.pt", {**new, "added": True}, True, "run", HwnasError, {"added": False}
        )
    with pytest.raises(HwnasError, match=r"different settings \(epochs\)"):
        check_resume(
            tmp_path, "ckpt.pt", {**new, "epochs": 4}, True, "run", HwnasError, {"added": False}
        )
