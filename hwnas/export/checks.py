"""What an export checks and measures: logits of the PyTorch model and the exported files,
accuracy and agreement, and the latency of an exported file on the table's backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hwnas.convert import ort_session

from .config import ExportConfig


def torch_logits(model, x: torch.Tensor, batch: int = 512) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(x[i : i + batch]).numpy() for i in range(0, len(x), batch)])


def onnx_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """Logits of an ONNX file (batch 1, NCHW) one image at a time, one thread."""
    sess = ort_session(path, threads=1)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean())


def check_backend(backend_name: str, threads: int, provenance: dict) -> None:
    """Connect to the phone before hours of training, not after (host backends: no-op)."""
    if backend_name != "adb":
        return
    from hwnas.device_profiler.backends import backend_from_provenance

    backend_from_provenance(provenance, "adb", threads=threads, precision="int8").close()


def device_name(device) -> str:
    """A readable device name from a provenance ``device`` (a string, or adb's dict)."""
    if isinstance(device, dict):
        return str(device.get("model") or device.get("name") or device.get("serial") or "phone")
    return str(device) if device else "?"


def measure(
    backend_name: str,
    path: Path,
    precision: str,
    cfg: ExportConfig,
    threads: int,
    provenance: dict | None = None,
    space=None,
) -> dict:
    """Time the exported file ``path`` on ``backend_name``, set up as the table's was (its
    ruler too: the time in the table's unit; ``space``: the table's)."""
    from hwnas.device_profiler.backends import backend_from_provenance, measure_file

    backend = backend_from_provenance(
        provenance or {}, backend_name, threads=threads, precision=precision, space=space
    )
    try:
        timed = measure_file(backend, path, warmup=cfg.warmup, runs=cfg.runs, repeats=cfg.repeats)
        prov = backend.provenance()
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    return {
        "file": path.name,
        "backend": backend_name,
        "precision": precision,
        "device": device_name(prov.get("device")),
        "threads": threads,
        **timed,
        "provenance": prov,
    }
