"""What a search has to beat at the same latency target: the MobileNetV2-like reference scaled
to fit, and architectures drawn at random under the target."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from hwnas.latency import LatencyTable
from hwnas.space import Arch, SearchSpace, random_arch, reference_arch

# width multipliers tried for the reference, widest first
REFERENCE_WIDTHS = (1.25, 1.1, 1.0, 0.9, 0.8, 0.75, 0.7, 0.6, 0.5, 0.4)


def scaled_reference(
    space: SearchSpace, table: LatencyTable, target_ms: float, name: str = "mobilenetv2"
) -> Arch:
    """The best member of the reference's family under ``target_ms``: the reference at each
    width multiplier, and where that is over the target its closest repair (the exact DP
    keeps the most of its choices, turning layers into skips or narrowing stages); of those
    under the target the one that spends most of it (the largest predicted latency)."""
    found: dict[tuple, Arch] = {}
    for w in REFERENCE_WIDTHS:
        ref = reference_arch(space, name, width=w)
        fitted = table.repair(space, ref, target_ms)
        tag = f"{name} x{w}" + ("" if fitted.choices == ref.choices else " repaired")
        found.setdefault(fitted.choices, Arch.of(space, fitted.choices, tag))
    under = [a for a in found.values() if table.predict(a, space) <= target_ms]
    return max(under, key=lambda a: table.predict(a, space))


def random_under(
    space: SearchSpace,
    table: LatencyTable,
    target_ms: float,
    rng: random.Random,
    tries: int = 200,
    draw: Callable[[], Sequence[int]] | None = None,
) -> Arch:
    """A random architecture under the target (rejection sampling; after ``tries`` misses
    the last draw repaired under the target): uniform over the space from ``rng``, or the
    choices ``draw()`` returns."""
    for _ in range(tries):
        a = Arch.of(space, draw()) if draw else random_arch(space, rng=rng)
        if table.predict(a, space) <= target_ms:
            return a
    return table.repair(space, a, target_ms)


__all__ = ["REFERENCE_WIDTHS", "scaled_reference", "random_under"]
