"""MnasNet's multi-objective rewards (soft / hard Pareto) and TuNAS's absolute reward."""

from __future__ import annotations

from functools import partial
from typing import Callable

from ..base import SearchError

# MnasNet (Tan et al. 2019, Eq. 2):
#
#     reward(m) = ACC(m) · [LAT(m) / T]^w,    w = α if LAT(m) ≤ T else β
#
# soft constraint: α = β = −0.07 (a model 2x slower must be ~5% more accurate to tie);
# hard constraint: α = 0, β = −1 (accuracy alone under T, sharply penalised above it).
#
# TuNAS (Bender et al. 2020, "absolute reward"):
#
#     reward(m) = ACC(m) + β · |LAT(m) / T − 1|,   β < 0 (TuNAS uses β = −0.07 here)
#
# which pulls the latency *towards* T from both sides instead of only rewarding speed.

SOFT = (-0.07, -0.07)
HARD = (0.0, -1.0)
ABS_BETA = -0.07


def mnas(acc: float, lat: float, target: float, alpha: float, beta: float) -> float:
    """ACC · (LAT/T)^w with w = alpha when LAT ≤ T, else beta."""
    if target <= 0 or lat <= 0:
        raise ValueError(f"latency and target must be positive (got {lat}, {target})")
    w = alpha if lat <= target else beta
    return float(acc) * (float(lat) / float(target)) ** w


def soft(acc: float, lat: float, target: float) -> float:
    return mnas(acc, lat, target, *SOFT)


def hard(acc: float, lat: float, target: float) -> float:
    return mnas(acc, lat, target, *HARD)


def absolute(acc: float, lat: float, target: float, beta: float = ABS_BETA) -> float:
    """ACC + beta · |LAT/T − 1| (beta < 0 penalises any distance from the target)."""
    if target <= 0:
        raise ValueError(f"target must be positive (got {target})")
    return float(acc) + beta * abs(float(lat) / float(target) - 1.0)


REWARDS: dict[str, Callable[[float, float, float], float]] = {
    "soft": soft,
    "hard": hard,
    "abs": absolute,
}


def get_reward(name: str, **params) -> Callable[[float, float, float], float]:
    """The reward ``f(acc, lat_ms, target_ms)`` by name; ``params`` override alpha/beta."""
    if name not in REWARDS:
        raise SearchError(f"unknown reward {name!r}; choose one of {', '.join(REWARDS)}")
    if not params:
        return REWARDS[name]
    if name == "abs":
        return partial(absolute, **params)
    alpha, beta = SOFT if name == "soft" else HARD
    return partial(mnas, alpha=params.get("alpha", alpha), beta=params.get("beta", beta))


__all__ = ["mnas", "soft", "hard", "absolute", "get_reward", "REWARDS", "SOFT", "HARD", "ABS_BETA"]
