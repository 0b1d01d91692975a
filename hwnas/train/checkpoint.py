"""The trainer's checkpoint: everything a run needs to resume exactly (model, optimiser,
schedule, RNG states, history), on the CPU, written atomically after every epoch and read
with ``torch.load(weights_only=True)``; resuming with other settings is refused."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from hwnas.accelerator import to_cpu
from hwnas.errors import HwnasError
from hwnas.io import atomic_torch_save

if TYPE_CHECKING:
    from . import TrainConfig

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_SCHEMA = 1
# Config fields that may differ between a run and its resumption without changing the result
# (the accelerator changes rounding, not the recipe: a run resumes on another one).
RESUME_FREE_FIELDS = ("threads", "accelerator")


def save_checkpoint(
    path: Path,
    model,
    optimizer,
    scheduler,
    cfg: TrainConfig,
    epoch: int,
    history: list[dict],
    scaler=None,
) -> None:
    """Everything on the CPU (``to_cpu``): the checkpoint loads on any machine."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "schema": CHECKPOINT_SCHEMA,
        "epoch": epoch,
        "config": dataclasses.asdict(cfg),
        "model": to_cpu(model.state_dict()),
        "optimizer": to_cpu(optimizer.state_dict()),
        "scheduler": scheduler.state_dict(),
        "history": history,
        "rng": {
            "python": random.getstate(),
            # numpy's state as plain ints/tensor so the checkpoint loads with weights_only=True
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
            "torch": torch.get_rng_state(),
        },
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    device = next(model.parameters()).device
    if device.type == "cuda":  # dropout and friends on the GPU resume exactly on it too
        state["rng"]["cuda"] = torch.cuda.get_rng_state(device)
    atomic_torch_save(path, state)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents, loaded with ``weights_only=True`` (no arbitrary pickle)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt or foreign file
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HwnasError(f"{path}: not a readable hwnas checkpoint ({first})") from None
    if not isinstance(state, dict) or state.get("schema") != CHECKPOINT_SCHEMA:
        raise HwnasError(f"{path}: not an hwnas checkpoint of schema {CHECKPOINT_SCHEMA}")
    return state


def config_changes(saved: dict, cfg: TrainConfig) -> list[str]:
    """How ``cfg`` differs from a saved training config (``"field: old -> new"``), ignoring
    fields that do not change the result; empty when a saved run or model can be reused."""
    return [
        f"{k}: {saved.get(k)!r} -> {v!r}"
        for k, v in dataclasses.asdict(cfg).items()
        if k not in RESUME_FREE_FIELDS and saved.get(k) != v
    ]


def restore_checkpoint(
    path: Path, model, optimizer, scheduler, cfg: TrainConfig, scaler=None
) -> tuple[int, list]:
    """Restore a run from ``path`` (loaded onto the CPU; ``load_state_dict`` copies weights
    and optimiser state to the model's device, so it resumes on any accelerator)."""
    state = load_checkpoint(path)
    diff = config_changes(state["config"], cfg)
    if diff:
        raise HwnasError(
            f"{path}: written with different settings ({'; '.join(diff)}); "
            "resume with the same settings or use a new --out"
        )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise HwnasError(
            f"{path}: the checkpoint is for a different model ({str(e).splitlines()[0]})"
        ) from None
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and "scaler" in state:  # none when it was written on another one
        scaler.load_state_dict(state["scaler"])
    rng = state["rng"]
    random.setstate(_tuples(rng["python"]))
    kind, keys, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(rng["torch"])
    device = next(model.parameters()).device
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)
    return int(state["epoch"]), list(state["history"])


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x
