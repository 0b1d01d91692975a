"""Small statistics shared by the profiler, the searchers and the benchmarks."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b of two score lists over the same items (ties counted as neither):
    (concordant − discordant) / √((n0 − ties_a)(n0 − ties_b)), n0 = n(n−1)/2; NaN when
    either list is constant or has fewer than 2 items."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError("kendall_tau needs two lists of the same length")
    n = len(a)
    if n < 2:
        return float("nan")
    da = np.sign(a[:, None] - a[None, :])[np.triu_indices(n, 1)]
    db = np.sign(b[:, None] - b[None, :])[np.triu_indices(n, 1)]
    denom = np.sqrt(np.count_nonzero(da) * np.count_nonzero(db))
    return float((da * db).sum() / denom) if denom else float("nan")


__all__ = ["kendall_tau"]
