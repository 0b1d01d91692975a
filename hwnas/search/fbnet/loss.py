"""FBNet's latency-aware loss, the target-aware term hwnas adds, and θ statistics (pure)."""

from __future__ import annotations

import numpy as np
import torch

ALPHA = 0.2  # FBNet paper, Sec. 4.1
BETA = 0.6
TARGET_TERMS = ("abs", "hinge", "none")


def fbnet_loss(
    ce: torch.Tensor, lat_us: torch.Tensor, alpha: float = ALPHA, beta: float = BETA
) -> torch.Tensor:
    """FBNet (Wu et al., CVPR 2019), Eq. (2):

        L(a, w_a) = CE(a, w_a) · α · log(LAT(a))^β

    The power β applies to log(LAT), not to LAT.  ``lat_us`` is in microseconds so that
    log(LAT) > 0 for any table (every network costs well over 1 µs); it is clamped at e so
    the power of the logarithm is always defined and the loss is never NaN.
    """
    return ce * alpha * torch.log(lat_us.clamp_min(torch.e)) ** beta


def target_term(lat_ms: torch.Tensor, target_ms: float, kind: str = "abs") -> torch.Tensor:
    """The target-aware latency term added to the θ loss (weighted by ``target_weight``).

    * ``abs``   — TuNAS's absolute reward, |LAT/T − 1|: pulls the expected latency to the
      target from both sides, so the search spends the budget instead of collapsing to
      skips below it (the repair then only trims what is over);
    * ``hinge`` — max(0, LAT/T − 1): penalises only exceeding the target;
    * ``none``  — FBNet as published: no target during search (the repair still enforces it).
    """
    if kind == "abs":
        return (lat_ms / target_ms - 1.0).abs()
    if kind == "hinge":
        return torch.relu(lat_ms / target_ms - 1.0)
    if kind == "none":
        return lat_ms.new_zeros(())
    raise ValueError(f"unknown target term {kind!r}; choose one of {', '.join(TARGET_TERMS)}")


def theta_loss(
    ce: torch.Tensor,
    lat_ms: torch.Tensor,
    target_ms: float,
    alpha: float = ALPHA,
    beta: float = BETA,
    kind: str = "abs",
    weight: float = 1.0,
) -> torch.Tensor:
    """The architecture loss: FBNet's Eq. (2) (latency in µs) + weight · target term."""
    return fbnet_loss(ce, lat_ms * 1000.0, alpha, beta) + weight * target_term(
        lat_ms, target_ms, kind
    )


def gumbel_weights(
    theta: torch.Tensor, tau: float, gen: torch.Generator, hard: bool
) -> tuple[torch.Tensor, int]:
    """Gumbel-softmax weights over ``theta``'s options and the sampled index (its argmax).

    ``g_i = softmax((θ_i + G_i) / τ)`` with ``G_i = −log(−log U_i)``, ``U ~ Uniform(0, 1)``
    drawn from ``gen``; with ``hard`` the forward value is one-hot (straight-through, GDAS).
    """
    u = torch.rand(theta.shape, generator=gen, dtype=theta.dtype).clamp_(1e-10, 1.0 - 1e-7)
    soft = ((theta - torch.log(-torch.log(u))) / tau).softmax(-1)
    idx = int(soft.detach().argmax())
    if not hard:
        return soft, idx
    one_hot = torch.zeros_like(soft)
    one_hot[idx] = 1.0
    return one_hot - soft.detach() + soft, idx


def temperature(epoch: int, tau0: float = 5.0, decay: float = 0.045) -> float:
    """Gumbel-softmax temperature of an epoch: τ0 · e^(−decay · epoch) (FBNet: 5.0, 0.045)."""
    return tau0 * float(torch.exp(torch.tensor(-decay * epoch, dtype=torch.float64)))


def depth_first(space, theta) -> list[np.ndarray]:
    """Per-choice scores for naming θ's architecture: whether a layer runs first, then which
    block.  For an op choice with ``skip``, a block ``o`` scores

        log P(not skip) + log p(o) − max over blocks o' of log p(o')

    and ``skip`` scores log p(skip); any other choice scores log p.  Plain log p (the
    constrained MAP) charges every block the spread of θ over eight blocks against one skip:
    on ``make run``'s supernet at 0.7× (2026-12-05) θ left P(skip) at 0.15–0.43 in stages
    3–7 (each block ~0.1), yet the MAP under the target skipped all 22 layers (0.045 ms for a
    0.120 ms target) while θ's expected latency sat near it (0.131 ms).  Here a layer
    runs when θ says it more likely runs than not, as the best block θ names; the DP trades
    a block for a cheaper one at the cost of their log-ratio."""
    out = []
    for c, t in zip(space.choices, theta):
        lp = t.detach().double().log_softmax(-1).numpy()
        if c.kind == "op" and "skip" in c.options and len(c.options) > 1:
            s = c.options.index("skip")
            blocks = np.delete(np.arange(len(lp)), s)
            runs = float(np.logaddexp.reduce(lp[blocks]))  # log P(not skip)
            lp = lp.copy()
            lp[blocks] += runs - lp[blocks].max()
        out.append(lp)
    return out


def entropy(theta: torch.Tensor) -> float:
    """Entropy (nats) of softmax(θ)."""
    logp = theta.detach().double().log_softmax(-1)
    return float(-(logp.exp() * logp).sum())


__all__ = [
    "ALPHA",
    "BETA",
    "TARGET_TERMS",
    "fbnet_loss",
    "target_term",
    "theta_loss",
    "gumbel_weights",
    "temperature",
    "depth_first",
    "entropy",
]
