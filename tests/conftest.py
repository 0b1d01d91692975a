"""Shared test set-up: one torch thread (tiny tensors run ~60x slower with 2 on a busy 2-core box)."""

import os

import pytest
import torch

os.environ.setdefault("HWNAS_NO_PROGRESS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _messages_on_stderr():
    """The library's messages on stderr as the command line shows them (``hwnas.logs``), so
    tests that call the library directly read the same lines from capsys."""
    from hwnas.logs import show_on_stderr

    show_on_stderr()


@pytest.fixture
def phone_env(tmp_path, monkeypatch):
    """For tests against the ADB stand-in: own cache and ADB key folder, no system adb or
    ANDROID_SERIAL leaking in; returns a file to pass as ``--benchmark-binary``."""
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    monkeypatch.delenv("ADB", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-adb-here"))
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF stand-in\n")
    return binary
