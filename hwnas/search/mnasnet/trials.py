"""MnasNet child trials: proxy training of one sampled architecture, run in process or on Ray."""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass

from ..base import SearchError

_SPLITS: dict = {}  # per-process cache of loaded datasets (Ray workers are reused)


@dataclass(frozen=True)
class ChildJob:
    """Everything a worker needs to train one child (plain data + the space object)."""

    trial: int
    choices: tuple[int, ...]
    space: object
    data: str
    data_root: str | None
    subset: int | None
    data_seed: int
    epochs: int
    batch_size: int
    lr: float
    seed: int
    attempt: int = 1
    accelerator: str = "cpu"  # where the child trains (a Ray task on CUDA gets num_gpus)


def load_splits(job: ChildJob):
    """The job's data splits, with val as the test split (cached per process)."""
    from hwnas.data import load_for_space

    key = (
        job.data,
        job.data_root,
        job.space.resolution,
        job.space.in_channels,
        job.data_seed,
        job.subset,
    )
    if key not in _SPLITS:
        _SPLITS.clear()
        splits = load_for_space(job.data, job.data_root, job.space, job.data_seed, job.subset)
        if len(splits.val) == 0:
            raise SearchError("the validation split is empty: use a larger --subset")
        _SPLITS[key] = splits
    return _SPLITS[key]


def run_child(job: ChildJob, worker: str | None = None) -> dict:
    """Train ``job``'s architecture as a proxy; returns accuracy (val), seconds and worker."""
    import torch

    from hwnas.space import Arch, build_model
    from hwnas.train import TrainConfig, train

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    splits = load_splits(job)
    model = build_model(job.space, Arch.of(job.space, job.choices))
    cfg = TrainConfig(
        epochs=job.epochs,
        batch_size=job.batch_size,
        lr=job.lr,
        seed=job.seed,
        threads=1,
        accelerator=job.accelerator,
    )
    res = train(model, splits, cfg, progress=False, test=False)  # children are scored on val
    return {
        "accuracy": float(res.val_acc),
        "seconds": time.perf_counter() - t0,
        "worker": worker or f"{socket.gethostname()}:{os.getpid()}",
    }


def run_child_safe(job: ChildJob, worker: str = "local") -> tuple[dict | None, str]:
    """In-process variant: (result, "") or (None, one-line error)."""
    try:
        return run_child(job, worker), ""
    except SearchError:
        raise
    except Exception as e:  # a failing trial is recorded, not fatal
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        return None, last


__all__ = ["ChildJob", "run_child", "run_child_safe", "load_splits"]
