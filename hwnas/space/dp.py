"""Exact dynamic programs over a space's slots: min/max cost, and best score under a budget.

A space's latency is a sum of slot costs, each slot depending on a few choice points
(a layer's own op, its width and the previous stage's width).  Visiting the choice points
in the space's fixed order and keeping, as DP state, the values of the already-decided
choice points that later slots still need (the "frontier"), gives exact optima in time
linear in the number of choice points:

* ``extreme(space, costs, "min"|"max")`` — the cheapest / dearest architecture;
* ``best_under_budget(space, costs, scores, budget)`` — the architecture maximising
  ``Σ_i scores[i][choice_i]`` subject to ``Σ slot costs ≤ budget`` (a knapsack over the
  separable table; costs are rounded *up* to ``budget / bins`` so the result is always
  within budget).

``costs`` holds one numpy array per slot, indexed by the option indices of its deps.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .space import SearchSpace


def _plan(space: SearchSpace):
    """For each step t (choice point): slots completed at t, and the frontier after t."""
    slots = space.slots()
    n = len(space.choices)
    done_at: list[list[int]] = [[] for _ in range(n)]
    constant: list[int] = []
    last_use = [-1] * n
    for si, slot in enumerate(slots):
        if not slot.deps:
            constant.append(si)
            continue
        done_at[max(slot.deps)].append(si)
        for d in slot.deps:
            last_use[d] = max(last_use[d], max(slot.deps))
    frontiers = [tuple(d for d in range(t + 1) if last_use[d] > t) for t in range(n)]
    return done_at, constant, frontiers


def _step_cost(costs, slots, done: list[int], assign: dict[int, int]) -> float:
    return float(sum(costs[si][tuple(assign[d] for d in slots[si].deps)] for si in done))


def extreme(
    space: SearchSpace, costs: Sequence[np.ndarray], mode: str = "min"
) -> tuple[float, list[int]]:
    """The minimum (or maximum) total cost over the space and an architecture attaining it."""
    sign = 1.0 if mode == "min" else -1.0
    scores = [np.zeros(len(c)) for c in space.choices]
    total, arch = _run(space, [sign * np.asarray(c, float) for c in costs], scores, budget=None)
    return sign * total, arch


def best_under_budget(
    space: SearchSpace,
    costs: Sequence[np.ndarray],
    scores: Sequence[Sequence[float]],
    budget: float,
    bins: int = 2000,
) -> tuple[float, list[int]] | None:
    """Maximise Σ scores under Σ costs ≤ budget; None when no architecture fits."""
    return _run(space, [np.asarray(c, float) for c in costs], scores, budget=budget, bins=bins)


# ~65 lines: the one forward recurrence of the DP (states, candidates, backpointers) kept in
# one piece; the helpers around it do the planning, costs and the trace back.
def _run(space, costs, scores, budget: float | None, bins: int = 2000):
    """Shared DP.  Without a budget: minimise cost.  With a budget: maximise score subject
    to the discretised (rounded-up) cost ≤ budget."""
    slots = space.slots()
    done_at, constant, frontiers = _plan(space)
    base = sum(float(costs[si][()]) for si in constant)
    if budget is not None:
        remaining = budget - base
        if remaining < 0:
            return None
        unit = remaining / bins if remaining > 0 else 1.0
        width = bins + 1
    else:
        unit, width = None, 1
    # states: frontier values -> (value array over bins, backpointer)
    # value: with budget, best score per used-bin; without, (−cost) in one cell.
    states: dict[tuple, np.ndarray] = {(): _initial(width)}
    back: list[dict[tuple, tuple]] = []
    prev_frontier: tuple[int, ...] = ()
    for t, choice in enumerate(space.choices):
        new_states: dict[tuple, np.ndarray] = {}
        new_back: dict[tuple, tuple] = {}
        for state_idx, (fvals, val) in enumerate(states.items()):
            assign = dict(zip(prev_frontier, fvals))
            for o in range(len(choice)):
                assign[t] = o
                c = _step_cost(costs, slots, done_at[t], assign)
                key = tuple(assign[d] for d in frontiers[t])
                s = float(scores[t][o])
                if budget is None:
                    cand = val - c
                    shift = 0
                else:
                    shift = _bins_up(c, unit)
                    if shift > bins:
                        continue
                    cand = np.full(width, -np.inf)
                    cand[shift:] = val[: width - shift] + s
                cur = new_states.get(key)
                if cur is None:
                    new_states[key] = cand
                    new_back[key] = (
                        np.full(width, -1, np.int32),
                        np.zeros(width, np.int32),
                        np.zeros(width, np.int32),
                    )
                    cur = new_states[key]
                    better = np.isfinite(cand)
                else:
                    better = cand > cur
                if np.any(better):
                    cur[better] = cand[better]
                    bp_state, bp_opt, bp_shift = new_back[key]
                    bp_state[better] = state_idx
                    bp_opt[better] = o
                    bp_shift[better] = shift
        back.append(new_back)
        states, prev_frontier = new_states, frontiers[t]
    ((final_key, final_val),) = states.items()  # the frontier is empty after the last choice
    if not np.any(np.isfinite(final_val)):
        return None
    cell = int(np.argmax(final_val))
    arch = _trace(space, back, final_key, cell, frontiers)
    cost = base + sum(
        _slot_cost(costs, slots, si, arch) for si in range(len(slots)) if slots[si].deps
    )
    return cost, arch


def _initial(width: int) -> np.ndarray:
    v = np.full(width, -np.inf)
    v[0] = 0.0
    return v


def _bins_up(cost: float, unit: float) -> int:
    return max(0, math.ceil(cost / unit - 1e-9))


def _trace(space, back, key, cell, frontiers) -> list[int]:
    n = len(space.choices)
    arch = [0] * n
    for t in range(n - 1, -1, -1):
        bp_state, bp_opt, bp_shift = back[t][key]
        arch[t] = int(bp_opt[cell])
        prev_keys = list(back[t - 1]) if t > 0 else [()]
        prev = prev_keys[int(bp_state[cell])]
        cell -= int(bp_shift[cell])
        key = prev
    return arch


def _slot_cost(costs, slots, si: int, arch: Sequence[int]) -> float:
    return float(costs[si][tuple(arch[d] for d in slots[si].deps)])
