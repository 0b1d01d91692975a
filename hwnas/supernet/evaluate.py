"""Per-path BatchNorm re-estimation and held-out accuracy of supernet paths (SPOS/OFA)."""

from __future__ import annotations

import itertools
from typing import Iterable

import torch
from torch import nn

from hwnas.accelerator import Accelerator

CALIBRATION_BATCHES = 20


def calibrate(net, arch, batches: Iterable[torch.Tensor]) -> None:
    """Re-estimate the BatchNorm statistics of ``arch``'s layers from ``batches`` (a plain
    average over them), then leave ``net`` in eval mode.  Runs where ``net`` is (batches
    are moved there, in its accelerator's autocast)."""
    bns = [
        m
        for t in net.path_modules(arch)
        for m in t.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    net.train()
    acc = Accelerator.of(net)
    with torch.no_grad(), acc.autocast():
        for x in batches:
            net(*acc.move(x), arch)
    for bn, m in zip(bns, saved):
        bn.momentum = m
    net.eval()


def accuracy(net, arch, loader, max_batches: int | None = None) -> float:
    correct = total = 0
    acc = Accelerator.of(net)
    with torch.no_grad(), acc.autocast():
        for x, y in itertools.islice(loader, max_batches):
            x, y = acc.move(x, y)
            correct += int((net(x, arch).argmax(1) == y).sum())
            total += len(y)
    return correct / max(1, total)


def path_accuracy(
    net,
    arch,
    splits,
    calib_batches: int = CALIBRATION_BATCHES,
    eval_split: str = "val",
    max_eval_batches: int | None = None,
    seed: int = 0,
) -> float:
    """Held-out accuracy of one path, its BatchNorm statistics re-estimated on
    ``calib_batches`` training batches first (without augmentation)."""
    was_training = net.training
    pin = Accelerator.of(net).pin_memory
    calib = splits.loader("train", 64, shuffle=True, augment=False, seed=seed, pin_memory=pin)
    calibrate(net, arch, (x for x, _ in itertools.islice(calib, calib_batches)))
    acc = accuracy(
        net,
        arch,
        splits.loader(eval_split, 256, shuffle=False, augment=False, pin_memory=pin),
        max_eval_batches,
    )
    net.train(was_training)
    return acc


__all__ = ["calibrate", "accuracy", "path_accuracy", "CALIBRATION_BATCHES"]
