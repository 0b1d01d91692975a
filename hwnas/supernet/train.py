"""Train a supernet once per space and dataset; every strategy and target reuses it.

``train_supernet`` trains an ``FBNetSupernet`` on uniformly sampled paths (every op and width,
the stage-first layers anchored and distilled: ``FBNetSupernet.forward_anchored``), the same
weight step FBNet's warm-up takes (``weight_step``).  The data split is the searches' split:
``load_dataset(data, subset, seed)``, 80% trains the weights, the other 20% is held out for
scoring paths (evolution's fitness, the manifest's accuracy).

The run folder (``supernets/NAME``) holds ``config.json``, ``supernet.pt`` (weights, optimiser,
RNG and epoch after every epoch: ``--resume`` continues exactly), ``log.csv`` and, at the end,
``manifest.json``: space, data, seed, budget, and the held-out accuracy of random paths with
BatchNorm re-estimated.  ``load_supernet`` refuses a supernet of another space or data.

Training runs on ``cfg.accelerator`` (``hwnas.accelerator``: mixed precision on a GPU);
``supernet.pt`` holds CPU tensors, so a run resumes on any accelerator, and
``load_supernet`` hands back a CPU supernet.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from hwnas.accelerator import ACCELERATORS, Accelerator, resolve
from hwnas.errors import check
from hwnas.io import atomic_write_json, atomic_write_rows, check_resume, field_defaults
from hwnas.progress import progress_bar
from hwnas.data import load_for_space
from hwnas.space import SearchSpace, get_space
from hwnas.space.blocks import IRBlock
from hwnas.train import cosine_lr, nhwc

from .evaluate import path_accuracy
from .fbnet import FBNetSupernet, SupernetError, widest_arch
from .store import CKPT, MANIFEST, MANIFEST_FORMAT, restore, save_checkpoint, space_identity

logger = logging.getLogger(__name__)

GRAD_CLIP = 5.0  # weight-gradient norm cap: a bad sampled path must not wreck the supernet
EVAL_PATHS = 5
# SupernetConfig fields a run may resume with other values of: where it runs, not what it is
RESUME_FREE_FIELDS = ("resume", "accelerator", "workers")


@dataclass(frozen=True)
class SupernetConfig:
    out: str
    space: str = "fbnet-small"
    data: str = "fashion-mnist"
    data_root: str | None = None
    # training images (before the 80/20 weights/held-out split); None: all.  At equal cost
    # (~3,000 steps) all 60,000 Fashion-MNIST images for 4 epochs gave random paths 74.8%
    # held out, 16,000 for 14 epochs 72.5%, and a held-out split of 12,000 images, not 3,200,
    # to score paths on (measured 2026-12-02)
    subset: int | None = None
    # 12: the 12 spread architectures of bench/supernet_ranking.py rank at Kendall τ
    # 0.45-0.58 (four supernets), 0.15-0.45 after 4 (`make run`'s budget, to fit 30 min)
    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    distill_weight: float = 1.0
    student_share: float = 0.5  # stage-first candidates run in the path this often ...
    sampling: str = "depth"  # how training paths are drawn: SAMPLERS
    ramp_epochs: int = 3  # ... after rising linearly from 0 over these epochs
    skip_in_path: bool = False  # stage-first skip projections run in the path, undistilled
    eval_paths: int = EVAL_PATHS
    seed: int = 0
    resume: bool = False
    accelerator: str = "cpu"  # cpu | cuda | mps | auto (hwnas.accelerator.resolve)
    workers: int = 0  # DataLoader workers decoding a lazy image folder

    def __post_init__(self):
        check(
            [
                (self.epochs >= 1, f"--epochs must be at least 1 (got {self.epochs})"),
                (
                    self.subset is None or self.subset >= 10,
                    f"--subset must be at least 10 images (got {self.subset})",
                ),
                (self.batch_size >= 1, f"--batch-size must be at least 1 (got {self.batch_size})"),
                (self.lr > 0, f"--lr must be positive (got {self.lr})"),
                (0 <= self.student_share <= 1, "student_share must be in [0, 1]"),
                (self.ramp_epochs >= 0, "ramp_epochs must be >= 0"),
                (self.eval_paths >= 1, "eval_paths must be at least 1"),
                (
                    self.sampling in SAMPLERS,
                    f"--sampling must be one of {', '.join(SAMPLERS)} (got {self.sampling!r})",
                ),
                (
                    self.accelerator in ACCELERATORS,
                    f"--accelerator must be one of {', '.join(ACCELERATORS)}",
                ),
                (self.workers >= 0, f"--workers must be at least 0 (got {self.workers})"),
            ],
            SupernetError,
        )


# --------------------------------------------------------------------------- the step


def student_p(share: float, step: int, ramp_steps: int) -> float:
    """How often a stage-first candidate runs in the path: rising from 0 to ``share`` over
    ``ramp_steps`` (all at once when there is no ramp)."""
    return share * (min(1.0, step / ramp_steps) if ramp_steps else 1.0)


def weight_step(
    net: FBNetSupernet,
    opt: torch.optim.Optimizer,
    x,
    y,
    arch,
    p_student: float,
    gen: torch.Generator,
    distill_weight: float = 1.0,
    *,
    acc: Accelerator | None = None,
    scaler=None,
    skip_in_path: bool = False,
) -> tuple[float, float, int]:
    """One weight update on path ``arch`` (anchored, distilled); returns the loss, the
    distillation MSE and the number of correct predictions.  ``acc``: the forward pass in
    its autocast; ``scaler``: an fp16 gradient scaler (gradients unscaled before clipping);
    ``skip_in_path``: ``FBNetSupernet.forward_anchored``'s."""
    with acc.autocast() if acc is not None else contextlib.nullcontext():
        logits, mse = net.forward_anchored(x, arch, p_student, gen, skip_in_path)
        loss = F.cross_entropy(logits, y) + distill_weight * mse
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
        scaler.step(opt)
        scaler.update()
    return float(loss.detach()), float(mse.detach()), int((logits.detach().argmax(1) == y).sum())


def uniform_path(space: SearchSpace, gen: torch.Generator) -> list[int]:
    """One option per choice point, uniformly (SPOS's sampling), from ``gen``."""
    return [int(torch.randint(len(c), (), generator=gen)) for c in space.choices]


def depth_path(
    net: FBNetSupernet, gen: torch.Generator, op_weights: list[float] | None = None
) -> list[int]:
    """A path whose depth is uniform per stage (OFA's elastic depth over this space's skips):
    widths and stage-first ops uniformly, then in each stage the number of residual layers
    that run uniform over 0..n, which of them uniform, and their ops uniform over the
    candidates other than ``skip``.

    Uniform sampling per layer makes ``skip`` one draw in nine, so 13 of the 15 residual
    layers run on average and a shallow path is never trained: its held-out accuracy in the
    supernet fell with every skip (Kendall τ −0.62 between skips and supernet accuracy over
    12 architectures) while stand-alone training barely cared (τ −0.28)."""
    arch = uniform_path(net.space, gen)
    skip = net.ops.index("skip") if "skip" in net.ops else None
    if skip is None:
        return arch
    others = [k for k in range(len(net.ops)) if k != skip]
    weights = None if op_weights is None else torch.tensor([op_weights[k] for k in others])
    for slots in net.residual_slots.values():
        depth = int(torch.randint(len(slots) + 1, (), generator=gen))
        order = torch.randperm(len(slots), generator=gen).tolist()
        for rank, i in enumerate(order):
            if rank >= depth:
                arch[slots[i]] = skip
            elif weights is None:
                arch[slots[i]] = others[int(torch.randint(len(others), (), generator=gen))]
            else:
                arch[slots[i]] = others[int(torch.multinomial(weights, 1, generator=gen))]
    return arch


def channel_path(net: FBNetSupernet, gen: torch.Generator) -> list[int]:
    """``depth_path`` with the residual ops drawn in proportion to the hidden channels they
    use of the shared master (``ir_k5_e6`` 6, ``ir_k3_e1`` 1), not uniformly.

    Every ``ir`` candidate is a corner of one ``k5_e6`` master, so under uniform draws the
    master's outer expansion channels train only in the quarter of the draws that are ``e6``:
    the supernet then underrates ``e6`` blocks.  Over 45 architectures of one latency
    retrained stand-alone (``bench/equal_latency.py``), the retrained accuracy the supernet
    did not predict rose with the number of ``e6`` blocks (Kendall τ 0.24), and the two
    best networks were the ones with the most ``e6`` blocks."""
    weights = [
        float(net.specs[op].expansion) if isinstance(net.specs[op], IRBlock) else 0.0
        for op in net.ops
    ]
    return depth_path(net, gen, weights)


# progressive shrinking's phases (OFA): until each fraction of the run, the ops a path may
# run at every searchable layer; from the last on, ``depth_path``
PHASES = ((0.25, "largest"), (0.5, "e6"), (0.75, "ir"))


def progressive_path(net: FBNetSupernet, gen: torch.Generator, progress: float) -> list[int]:
    """Progressive shrinking (OFA, Cai et al. 2020) over this space, by the fraction of the
    run done (``progress``): first only the largest path (every stage at its widest, every
    layer the largest ``ir`` block), then widths and every kernel of the largest expansion
    (fbnet-small: both kernels of expansion 6), then every
    ``ir`` block, no layer skipped; the last quarter ``depth_path``.  Small candidates start
    from a trained large network instead of competing with it from the first step.

    Measured (2026-12-05, `make run`'s budget, 4 epochs): the 12 spread architectures ranked
    at Kendall τ 0.42 against 0.15 for ``depth``, random paths 71.9% against 72.0%; four of
    the 12 scored only 23-38% held out (docs/benchmarks.md, "Supernet training").  After 12
    epochs: τ 0.58 (``depth``: 0.58, 0.55, 0.45, three seeds), random paths 80.5%; 45 networks of
    one latency at τ 0.49 (``depth``: 0.43)."""
    phase = next((name for end, name in PHASES if progress < end), None)
    if phase is None:
        return depth_path(net, gen)
    if phase == "largest":
        return widest_arch(net.space, net.largest_ir)
    arch = uniform_path(net.space, gen)
    top = net.specs[net.largest_ir].expansion
    allowed = [
        k
        for k, op in enumerate(net.ops)
        if isinstance(net.specs[op], IRBlock) and (phase == "ir" or net.specs[op].expansion == top)
    ]
    for i, c in enumerate(net.space.choices):
        if c.kind == "op":
            arch[i] = allowed[int(torch.randint(len(allowed), (), generator=gen))]
    return arch


SAMPLERS = {  # (supernet, generator, fraction of the run done) -> choices
    "depth": lambda net, gen, progress: depth_path(net, gen),
    "channel": lambda net, gen, progress: channel_path(net, gen),
    "progressive": progressive_path,
    "uniform": lambda net, gen, progress: uniform_path(net.space, gen),
}


def train_supernet(
    cfg: SupernetConfig,
    space: SearchSpace | None = None,
    stop_after_epochs: int | None = None,
    progress: bool | None = None,
) -> dict | None:
    """Train (or resume) a supernet into ``cfg.out``; returns the manifest (None when stopped
    early by ``stop_after_epochs``, as an interruption would)."""
    out = Path(cfg.out)
    if space is None:
        try:
            space = get_space(cfg.space)
        except KeyError as e:
            raise SupernetError(e.args[0]) from None
    _check_resume(cfg, out)  # before the accelerator's line: a refusal is the only line
    acc = resolve(cfg.accelerator, say=progress is not False)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    splits = load_for_space(cfg.data, cfg.data_root, space, cfg.seed, cfg.subset, cfg.workers)
    if len(splits.val) == 0:
        raise SupernetError("no held-out images: use a larger --subset")
    net, opt, gen = _new_run(cfg, space, acc)
    scaler = acc.scaler()
    epoch, history = 0, []
    if (out / CKPT).exists():
        epoch, history = restore(out / CKPT, net, opt, gen, scaler)
        logger.info(f"resuming {out} after epoch {epoch}/{cfg.epochs}")
    steps = math.ceil(len(splits.train) / cfg.batch_size)
    total, ramp = cfg.epochs * steps, cfg.ramp_epochs * steps
    ran = 0
    with (
        progress_bar("supernet", cfg.epochs, progress) as epochs_bar,
        progress_bar("epoch", None, progress) as bar,
    ):
        epochs_bar.update(completed=epoch)
        while epoch < cfg.epochs and (stop_after_epochs is None or ran < stop_after_epochs):
            bar.update(total=steps, completed=0, description=f"epoch {epoch + 1}/{cfg.epochs}")
            row = _epoch(cfg, net, opt, gen, splits, epoch, (steps, total, ramp), acc, scaler, bar)
            epoch += 1
            ran += 1
            history.append(row)
            save_checkpoint(out / CKPT, net, opt, gen, epoch, history, scaler)
            atomic_write_rows(out / "log.csv", history)
            epochs_bar.advance(1, status=f"train acc {row['train_acc']:.3f}")
            logger.info(
                f"epoch {epoch}/{cfg.epochs}: loss {row['train_loss']:.3f}, train acc "
                f"{row['train_acc']:.3f} (sampled paths), {row['seconds']:.0f} s"
            )
    if epoch < cfg.epochs:
        return None
    if (out / MANIFEST).exists() and cfg.resume:
        return json.loads((out / MANIFEST).read_text())
    manifest = _manifest(cfg, space, net, splits, history, total, acc)
    atomic_write_json(out / MANIFEST, manifest)
    accs = manifest["random_paths"]["held_out_acc"]
    logger.info(
        f"supernet {out}: {len(accs)} random paths, held-out accuracy (BN re-estimated) "
        f"{manifest['random_paths']['mean']:.3f} on average ({min(accs):.3f}–{max(accs):.3f})"
    )
    return manifest


def _new_run(cfg: SupernetConfig, space: SearchSpace, acc) -> tuple:
    """A seeded fresh supernet on ``acc``, its SGD optimiser and its path generator."""
    torch.manual_seed(cfg.seed)
    net = nhwc(FBNetSupernet(space).to(acc.device))
    opt = torch.optim.SGD(
        net.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=True,
    )
    return net, opt, torch.Generator().manual_seed(cfg.seed + 12345)


def _epoch(cfg, net, opt, gen, splits, epoch: int, counts, acc, scaler, bar) -> dict:
    """One epoch of weight steps on sampled paths (``counts``: steps per epoch, all steps,
    ramp steps); its log row."""
    steps, total, ramp = counts
    sample = SAMPLERS[cfg.sampling]
    t0 = time.perf_counter()
    net.train()
    loss_sum = mse_sum = 0.0
    correct = seen = 0
    batches = splits.loader(
        "train", cfg.batch_size, seed=cfg.seed * 1000 + epoch, pin_memory=acc.pin_memory
    )
    for i, (x, y) in enumerate(batches):
        x, y = acc.move(x, y)
        step = epoch * steps + i
        for g in opt.param_groups:
            g["lr"] = cosine_lr(cfg.lr, step, total)
        loss, mse, c = weight_step(
            net,
            opt,
            x,
            y,
            sample(net, gen, step / total),
            student_p(cfg.student_share, step, ramp),
            gen,
            cfg.distill_weight,
            acc=acc,
            scaler=scaler,
            skip_in_path=cfg.skip_in_path,
        )
        loss_sum += loss * len(y)
        mse_sum += mse * len(y)
        correct += c
        seen += len(y)
        bar.advance(1, status=f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f}")
    return {
        "epoch": epoch + 1,
        "train_loss": loss_sum / seen,
        "distill_mse": mse_sum / seen,
        "train_acc": correct / seen,
        "seconds": time.perf_counter() - t0,
    }


def _manifest(cfg, space, net, splits, history: list, total: int, acc) -> dict:
    """The finished supernet's manifest, with the held-out accuracy of random paths."""
    rng = torch.Generator().manual_seed(cfg.seed + 777)
    paths = [uniform_path(space, rng) for _ in range(cfg.eval_paths)]
    accs = [path_accuracy(net, a, splits, seed=cfg.seed) for a in paths]
    return {
        "format": MANIFEST_FORMAT,
        "space": space_identity(space),
        "data": {
            "name": cfg.data,
            "root": cfg.data_root,
            "subset": cfg.subset,
            "seed": cfg.seed,
            "train_images": len(splits.train),
            "held_out_images": len(splits.val),
        },
        "budget": {
            "epochs": cfg.epochs,
            "steps": total,
            "batch_size": cfg.batch_size,
            "seconds": sum(r["seconds"] for r in history),
            "accelerator": acc.name,
        },
        "random_paths": {"choices": paths, "held_out_acc": accs, "mean": sum(accs) / len(accs)},
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _check_resume(cfg: SupernetConfig, out: Path) -> None:
    fixed = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RESUME_FREE_FIELDS}
    defaults = field_defaults(SupernetConfig)
    check_resume(out, CKPT, fixed, cfg.resume, "supernet", SupernetError, defaults)


__all__ = [
    "SupernetConfig",
    "train_supernet",
    "weight_step",
    "student_p",
    "uniform_path",
    "depth_path",
    "SAMPLERS",
    "cosine_lr",
    "GRAD_CLIP",
]
