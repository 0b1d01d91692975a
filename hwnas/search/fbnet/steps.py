"""One FBNet epoch: weight steps on sampled paths (the anchor distilled into stage-first
candidates), θ steps on the θ split (hard: straight-through one-hot; soft: every candidate
weighted), and the epoch's log row.

Both kinds of step run on the state's accelerator (``State.acc``): weight steps in its
autocast with its fp16 grad scaler, θ steps in its autocast only where that needs no scaler
(bf16; an fp16 accelerator runs them in float32).  θ stays on the CPU; its Gumbel weights
are copied to the accelerator inside the graph.  On the CPU nothing is moved or cast."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from hwnas.space import Arch, SearchSpace
from hwnas.supernet import FBNetSupernet
from hwnas.supernet.train import SAMPLERS, cosine_lr, student_p, weight_step

from .loss import depth_first, entropy, gumbel_weights, temperature, theta_loss
from .state import State


def _sample(state: State, space: SearchSpace, tau: float, hard: bool, detach: bool):
    """Gumbel weights per choice point and the sampled indices.  Width choices are always
    straight-through one-hot (a path has one width per stage); op choices are one-hot in
    ``hard`` mode and the soft Gumbel vector otherwise."""
    theta = [t.detach() for t in state.theta] if detach else state.theta
    pairs = [
        gumbel_weights(t, tau, state.gen, hard or c.kind == "width")
        for t, c in zip(theta, space.choices)
    ]
    return [w for w, _ in pairs], [i for _, i in pairs]


def _theta_batches(cfg, splits, epoch: int, pin: bool):
    """The θ split's batches for ``epoch`` (shuffled by seed and epoch, not augmented)."""
    return splits.loader(
        "val",
        cfg.batch_size,
        shuffle=True,
        augment=False,
        seed=cfg.seed * 1000 + epoch + 500,
        pin_memory=pin,
    )


def _counters() -> dict:
    """An epoch's running sums: weight steps (``w_``), θ steps (``t_``) and θ's latency."""
    return {
        "w_loss": 0.0,
        "w_mse": 0.0,
        "w_correct": 0,
        "w_n": 0,
        "t_loss": 0.0,
        "t_ce": 0.0,
        "t_correct": 0,
        "t_n": 0,
        "t_steps": 0,
        "lat_ms": 0.0,
    }


def run_epoch(state, cfg, space, table, splits, bar) -> dict:
    if cfg.frozen:
        return _theta_epoch(state, cfg, space, table, splits, bar)
    e = state.epoch
    tau = temperature(e, cfg.tau0, cfg.tau_decay)
    hard = cfg.mode == "hard"
    dev = state.acc
    pin = dev.pin_memory
    train = splits.loader("train", cfg.batch_size, seed=cfg.seed * 1000 + e, pin_memory=pin)
    search_theta = e >= cfg.warmup_epochs
    val_iter = iter(_theta_batches(cfg, splits, e, pin)) if search_theta else None
    n_t, n_v = len(train), (math.ceil(len(splits.val) / cfg.batch_size) if search_theta else 0)
    total_steps, warmup_steps = cfg.epochs * n_t, cfg.warmup_epochs * n_t
    acc = _counters()
    state.net.train()
    bar.update(total=n_t, completed=0, description=f"epoch {e + 1}/{cfg.epochs}")
    for i, (x, y) in enumerate(train):
        x, y = dev.move(x, y)
        step = e * n_t + i
        for g in state.w_opt.param_groups:
            g["lr"] = cosine_lr(cfg.w_lr, step, total_steps)
        if search_theta:
            _, arch = _sample(state, space, tau, True, detach=True)
        else:
            arch = SAMPLERS[cfg.sampling](state.net, state.gen, step / warmup_steps)
        loss, mse, correct = weight_step(
            state.net,
            state.w_opt,
            x,
            y,
            arch,
            student_p(cfg.student_share, step, warmup_steps),
            state.gen,
            cfg.distill_weight,
            acc=dev,
            scaler=state.scaler,
        )
        acc["w_loss"] += loss * len(y)
        acc["w_mse"] += mse * len(y)
        acc["w_correct"] += correct
        acc["w_n"] += len(y)
        if search_theta and (i + 1) * n_v // n_t > i * n_v // n_t:
            xv, yv = dev.move(*next(val_iter))
            _theta_step(state, cfg, space, table, tau, hard, xv, yv, acc)
        bar.advance(1, status=f"loss {acc['w_loss'] / acc['w_n']:.3f}")
    return _epoch_row(state, cfg, space, table, tau, acc)


def _theta_epoch(state, cfg, space, table, splits, bar) -> dict:
    """An epoch on a trained supernet whose weights stay as trained: θ steps only, one per
    batch of the θ split (the supernet's held-out split, BatchNorm in batch statistics)."""
    e = state.epoch
    tau = temperature(e, cfg.tau0, cfg.tau_decay)
    val = _theta_batches(cfg, splits, e, state.acc.pin_memory)
    acc = _counters()
    state.net.train()
    bar.update(total=len(val), completed=0, description=f"epoch {e + 1}/{cfg.epochs}")
    for x, y in val:
        _theta_step(state, cfg, space, table, tau, cfg.mode == "hard", *state.acc.move(x, y), acc)
        bar.advance(1, status=f"θ loss {acc['t_loss'] / acc['t_n']:.3f}")
    return _epoch_row(state, cfg, space, table, tau, acc)


def theta_forward(
    net: FBNetSupernet,
    space: SearchSpace,
    x: torch.Tensor,
    weights,
    idx,
    hard: bool,
    gate: str = "block",
) -> torch.Tensor:
    """The θ step's logits: the sampled path gated by its straight-through weights (hard), or
    every candidate of each layer weighted, at the sampled widths (soft).  The weights are
    copied to ``x``'s device (a no-op on the CPU; the copy is differentiable)."""
    if x.device.type != "cpu":
        weights = [w.to(x.device) for w in weights]
    if hard:
        return net(x, idx, gates=[w[i] for w, i in zip(weights, idx)], gate_branch=gate == "branch")
    widths = [w[i] if c.kind == "width" else None for w, i, c in zip(weights, idx, space.choices)]
    return net.forward_mixed(x, idx, weights, widths)


def _theta_step(state, cfg, space, table, tau, hard, x, y, acc) -> None:
    weights, idx = _sample(state, space, tau, hard, detach=False)
    amp = state.acc.autocast() if not state.acc.needs_scaler else contextlib.nullcontext()
    with amp:
        logits = theta_forward(state.net, space, x, weights, idx, hard, cfg.gate)
        ce = F.cross_entropy(logits, y)
    lat_ms = table.expected(weights, space)
    if ce.device.type != "cpu":
        ce = ce.float().cpu()  # the θ loss on the CPU, beside θ and the table's latency
    loss = theta_loss(
        ce, lat_ms, cfg.target_ms, cfg.alpha, cfg.beta, cfg.target_term, cfg.target_weight
    )
    state.t_opt.zero_grad(set_to_none=True)
    state.w_opt.zero_grad(set_to_none=True)  # weights are not stepped here
    loss.backward()
    state.t_opt.step()
    acc["t_loss"] += float(loss.detach()) * len(y)
    acc["t_ce"] += float(ce.detach()) * len(y)
    acc["t_correct"] += int((logits.argmax(1) == y).sum())
    acc["t_n"] += len(y)
    acc["t_steps"] += 1
    acc["lat_ms"] += float(lat_ms.detach())


def probs(theta: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().softmax(-1) for t in theta]


def argmax_arch(space: SearchSpace, theta) -> Arch:
    """θ's own pick, unconstrained: each choice's highest ``depth_first`` score (a layer
    skips when P(skip) > 1/2, else runs θ's most likely block)."""
    return Arch.of(space, [int(s.argmax()) for s in depth_first(space, theta)], "argmax")


def skip_share(space: SearchSpace, arch: Arch) -> float:
    ops = [(c, i) for c, i in zip(space.choices, arch.choices) if c.kind == "op"]
    return sum(c.options[i] == "skip" for c, i in ops) / max(1, len(ops))


def _epoch_row(state, cfg, space, table, tau, acc) -> dict:
    am = argmax_arch(space, state.theta)
    nan = float("nan")
    row = {
        "epoch": state.epoch + 1,
        "phase": "search" if acc["t_n"] else "warmup",
        "tau": tau,
        "lr": state.w_opt.param_groups[0]["lr"],
        "train_loss": acc["w_loss"] / acc["w_n"] if acc["w_n"] else nan,
        "train_acc": acc["w_correct"] / acc["w_n"] if acc["w_n"] else nan,
        "distill_mse": acc["w_mse"] / acc["w_n"] if acc["w_n"] else nan,
        "val_loss": acc["t_loss"] / acc["t_n"] if acc["t_n"] else nan,
        "val_ce": acc["t_ce"] / acc["t_n"] if acc["t_n"] else nan,
        "val_acc": acc["t_correct"] / acc["t_n"] if acc["t_n"] else nan,
        "sampled_lat_ms": acc["lat_ms"] / acc["t_steps"] if acc["t_steps"] else nan,
        "expected_lat_ms": float(table.expected(probs(state.theta), space)),
        "target_ms": cfg.target_ms,
        "argmax_lat_ms": table.predict(am, space),
        "skip_share": skip_share(space, am),
    }
    row.update({f"H_{c.name}": entropy(t) for c, t in zip(space.choices, state.theta)})
    return row


def epoch_line(row: dict, epochs: int) -> str:
    """One line per epoch (it stays when the transient bars go, and is what a log shows)."""
    parts = []
    if not math.isnan(row["train_loss"]):  # NaN: a trained supernet's weights, not stepped
        parts.append(f"train loss {row['train_loss']:.3f} acc {row['train_acc']:.3f}")
    if row["phase"] != "warmup":
        parts.append(f"θ-split acc {row['val_acc']:.3f}, E[lat] {row['expected_lat_ms']:.3f} ms")
    parts.append(f"argmax {row['argmax_lat_ms']:.3f} ms (target {row['target_ms']:g})")
    parts.append(f"{row['seconds']:.0f} s")
    return f"epoch {row['epoch']}/{epochs} {row['phase']}: " + ", ".join(parts)


__all__ = ["run_epoch", "theta_forward", "probs", "argmax_arch", "skip_share", "epoch_line"]
