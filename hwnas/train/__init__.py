"""The one trainer: SGD (Nesterov), per-step cosine / one-cycle schedule, per-epoch checkpoints
that resume exactly, evaluation, CSV log.  Used for proxy training in search and in export."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hwnas.accelerator import ACCELERATORS, Accelerator, resolve, to_cpu
from hwnas.data import DataSplits
from hwnas.errors import HwnasError, check
from hwnas.io import atomic_torch_save, atomic_write_json, atomic_write_text
from hwnas.progress import progress_bar

from .checkpoint import (
    CHECKPOINT,
    RESUME_FREE_FIELDS,
    config_changes,
    load_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)

logger = logging.getLogger(__name__)

SCHEDULES = ("cosine", "onecycle")
LOG_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    schedule: str = "cosine"
    # a linear warm-up over the first 0.3 epoch: without it lr 0.1 from the first step swung
    # one architecture's 4-epoch test accuracy over 85.7-88.6% between seeds; with it
    # 88.9-89.3% (docs/benchmarks.md, "the final recipe")
    warmup_epochs: float = 0.3
    label_smoothing: float = 0.0
    seed: int = 0
    threads: int | None = None
    accelerator: str = "cpu"  # cpu | cuda | mps | auto (hwnas.accelerator.resolve)

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (self.lr > 0, f"lr must be positive, got {self.lr}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (not self.nesterov or self.momentum > 0, "nesterov needs momentum > 0"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (
                self.schedule in SCHEDULES,
                f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}",
            ),
            (
                0 <= self.warmup_epochs < self.epochs,
                f"warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs}",
            ),
            (
                0 <= self.label_smoothing < 1,
                f"label_smoothing must be in [0, 1), got {self.label_smoothing}",
            ),
            (
                self.threads is None or self.threads >= 1,
                f"threads must be at least 1, got {self.threads}",
            ),
            (
                self.accelerator in ACCELERATORS,
                f"accelerator must be one of {', '.join(ACCELERATORS)}, got {self.accelerator!r}",
            ),
        ]
        check(checks)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    val_acc: float = float("nan")
    test_acc: float = float("nan")
    seconds: float = 0.0
    test_loss: float = float("nan")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- schedule


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD; weight decay on conv/linear weights only (not on BN or biases)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.SGD(
        [g for g in groups if g["params"]], lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov
    )


def cosine_lr(base: float, step: float, total: float) -> float:
    """``base``·½(1 + cos(π·step/total)), held at 0 past ``total``: the one cosine schedule
    (the trainer's, the supernet's and the MnasNet shared supernet's)."""
    t = min(1.0, step / max(1, total))
    return 0.5 * base * (1.0 + math.cos(math.pi * t))


def make_scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """Per-step schedule.  cosine: linear warm-up over ``warmup_epochs``, then
    lr·½(1+cos(πt)) down to 0.  onecycle: torch's OneCycleLR (peak ``lr``; warm-up fraction
    ``warmup_epochs/epochs``, 0.3 when 0)."""
    total = cfg.epochs * steps_per_epoch
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "onecycle":
        pct = warmup / total if warmup else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=total, pct_start=pct
        )

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return cosine_lr(1.0, step - warmup, total - warmup)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------- evaluate


@torch.no_grad()
def evaluate(model: nn.Module, loader) -> tuple[float, float]:
    """Mean cross-entropy and top-1 accuracy of ``model`` over ``loader`` (eval mode), on the
    accelerator the model is on."""
    model.eval()
    acc = Accelerator.of(model)
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = acc.move(x, y)
        with acc.autocast():
            logits = model(x)
        logits = logits.float()
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    if seen == 0:
        return float("nan"), float("nan")
    return loss_sum / seen, correct / seen


# --------------------------------------------------------------------------- train


def nhwc(model: nn.Module) -> nn.Module:
    """``model`` with its 4-d weights in channels-last (NHWC) order, in place.  On this host's
    CPU the convolutions of these small nets then run faster: a fbnet-small MobileNetV2 step
    1.2-1.5x, a supernet path evaluation 1.46x, with the same accuracies (measured
    2026-12-02).  Inputs may stay NCHW: the first convolution converts them."""
    return model.to(memory_format=torch.channels_last)


@contextlib.contextmanager
def channels_last(model: nn.Module):
    """``nhwc(model)`` for the block, the default layout again after it (exporters and
    callers see an ordinary model)."""
    nhwc(model)
    try:
        yield model
    finally:
        model.to(memory_format=torch.contiguous_format)


def train(
    model: nn.Module,
    splits: DataSplits,
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    *,
    stop_after_epoch: int | None = None,
    test: bool = True,
) -> TrainResult:
    """Train ``model`` in place on ``splits.train``; evaluate on val every epoch, on test at
    the end (``test=False``: not at all, for trainings scored on val).  With ``out_dir``: ``checkpoint.pt`` after every epoch, then ``log.csv``,
    ``model.pt`` (state dict) and ``result.json``.  ``resume`` continues from the checkpoint
    exactly (same weights as an uninterrupted run).  ``stop_after_epoch`` ends the run early
    (after that epoch's checkpoint) as an interruption would; the test set is then skipped.
    Runs on ``cfg.accelerator`` (mixed precision on a GPU, see ``hwnas.accelerator``) in
    channels-last layout (``nhwc``); ``model`` comes back on the device it came from, in the
    default layout.  Checkpoints hold CPU tensors: a run resumes on any accelerator."""
    acc = resolve(cfg.accelerator, say=progress)
    home = next(model.parameters(), torch.empty(0)).device
    model.to(acc.device)
    try:
        with channels_last(model):
            return _train(
                model, splits, cfg, out_dir, resume, progress, stop_after_epoch, acc, test
            )
    finally:
        model.to(home)


def _train(
    model, splits, cfg, out_dir, resume, progress, stop_after_epoch, acc, test
) -> TrainResult:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out_dir) if out_dir is not None else None
    _seed_everything(cfg.seed)
    steps = math.ceil(len(splits.train) / cfg.batch_size)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, steps)
    scaler = acc.scaler()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    history: list[dict] = []
    start = 0
    if resume and out is not None and (out / CHECKPOINT).exists():
        start, history = restore_checkpoint(
            out / CHECKPOINT, model, optimizer, scheduler, cfg, scaler
        )
        _say(progress, f"resuming after epoch {start}/{cfg.epochs} from {out / CHECKPOINT}")
    last = cfg.epochs if stop_after_epoch is None else min(cfg.epochs, stop_after_epoch)

    for epoch in range(start, last):
        t0 = time.perf_counter()
        model.train()
        step = (optimizer, scheduler, scaler, loss_fn)
        loss_sum, correct, seen = _epoch(model, splits, cfg, epoch, steps, step, acc, progress)
        val_loss, val_acc = float("nan"), float("nan")
        if len(splits.val):
            val_loss, val_acc = evaluate(
                model, splits.loader("val", 512, pin_memory=acc.pin_memory)
            )
        row = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        _say(
            progress,
            "epoch {epoch}/{n}: train loss {train_loss:.4f} acc {train_acc:.4f}, "
            "val loss {val_loss:.4f} acc {val_acc:.4f}, {seconds:.1f} s".format(
                **row, n=cfg.epochs
            ),
        )
        if out is not None:
            save_checkpoint(
                out / CHECKPOINT, model, optimizer, scheduler, cfg, epoch + 1, history, scaler
            )
            _write_log(out / "log.csv", history)

    result = TrainResult(
        history=history,
        seconds=sum(r["seconds"] for r in history),
        val_acc=history[-1]["val_acc"] if history else float("nan"),
    )
    if last < cfg.epochs:
        return result
    return _finish(model, splits, cfg, out, result, progress, acc, test)


def _epoch(model, splits, cfg, epoch: int, steps: int, step, acc, progress) -> tuple:
    """One pass over the training split, a step per batch (``step``: optimizer, scheduler,
    grad scaler or None, loss): (loss sum, correct, images seen); a non-finite loss is an
    error."""
    optimizer, scheduler, scaler, loss_fn = step
    loader = splits.loader(
        "train",
        cfg.batch_size,
        shuffle=True,
        augment=True,
        seed=cfg.seed * 100_003 + epoch,
        pin_memory=acc.pin_memory,
    )
    loss_sum, correct, seen = 0.0, 0, 0
    with progress_bar(f"epoch {epoch + 1}/{cfg.epochs}", steps, progress) as bar:
        for x, y in loader:
            x, y = acc.move(x, y)
            loss, logits = train_step(model, x, y, optimizer, scaler, loss_fn, acc)
            scheduler.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.advance(1, f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f}")
    if not math.isfinite(loss_sum):
        raise HwnasError(
            f"training diverged in epoch {epoch + 1} (loss is {loss_sum}); lower the learning rate"
        )
    return loss_sum, correct, seen


def train_step(model, x, y, optimizer, scaler, loss_fn, acc: Accelerator) -> tuple:
    """One optimiser step on a batch already on ``acc``'s device, under its autocast and
    grad scaler (None: plain backward): (loss, logits).  ``bench/train_throughput.py``
    times exactly this."""
    with acc.autocast():
        logits = model(x)
        loss = loss_fn(logits, y)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return loss, logits


def _finish(model, splits, cfg, out, result: TrainResult, progress, acc, test) -> TrainResult:
    """After the last epoch: the test set once (``test``), then log.csv, model.pt and
    result.json."""
    if test:
        result.test_loss, result.test_acc = evaluate(
            model, splits.loader("test", 512, pin_memory=acc.pin_memory)
        )
        _say(progress, f"test loss {result.test_loss:.4f} acc {result.test_acc:.4f}")
    if out is not None:
        _write_log(out / "log.csv", result.history)
        atomic_torch_save(out / "model.pt", to_cpu(model.state_dict()))
        atomic_write_json(
            out / "result.json",
            {**result.to_dict(), "config": dataclasses.asdict(cfg), "accelerator": acc.name},
        )
    return result


def _say(enabled: bool, message: str) -> None:
    if enabled:
        logger.info(message)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _write_log(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row[k] for k in LOG_FIELDS} for row in history)
    atomic_write_text(path, buf.getvalue())


__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "train_step",
    "evaluate",
    "make_optimizer",
    "make_scheduler",
    "cosine_lr",
    "nhwc",
    "channels_last",
    "SCHEDULES",
    "LOG_FIELDS",
    "CHECKPOINT",
    "RESUME_FREE_FIELDS",
    "config_changes",
    "load_checkpoint",
]
