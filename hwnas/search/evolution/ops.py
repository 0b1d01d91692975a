"""Evolution's operators: the first generation, mutation, uniform crossover, children under
the target, ranking by fitness, and the leaders re-scored on the whole held-out split (also
used by FBNet's ``refine`` and its winner's choice)."""

from __future__ import annotations

import random

import torch

from hwnas.space import Arch, SearchSpace
from hwnas.supernet import CALIBRATION_BATCHES, path_accuracy
from hwnas.supernet.train import depth_path

from ..baselines import random_under

REDRAWS = 50


def mutate(space: SearchSpace, choices: tuple, prob: float, rng: random.Random) -> tuple:
    """Each choice re-drawn with probability ``prob`` (at least one always changes)."""
    out = list(choices)
    movable = [i for i, c in enumerate(space.choices) if len(c) > 1]
    forced = rng.choice(movable) if movable else None
    for i in movable:
        if i == forced or rng.random() < prob:
            out[i] = rng.choice([k for k in range(len(space.choices[i])) if k != out[i]])
    return tuple(out)


def crossover(a: tuple, b: tuple, rng: random.Random) -> tuple:
    """Uniform crossover: each choice from either parent."""
    return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))


def rank(fitness: dict, table, space) -> list[tuple]:
    """Architectures by fitness, best first (ties: the faster first)."""
    return sorted(fitness, key=lambda a: (-fitness[a], table.predict(a, space)))


def next_generation(
    space,
    table,
    target,
    fitness: dict,
    population: list,
    size: int,
    parents: int,
    mutation: float,
    rng: random.Random,
) -> list[tuple]:
    """``size`` new distinct children under the target from the ``parents`` fittest seen."""
    best = rank(fitness, table, space)[:parents]
    seen = set(fitness) | set(population)
    children: list[tuple] = []
    while len(children) < size:
        c = _child(space, table, target, best, mutation, rng, seen | set(children))
        if c not in children:
            children.append(c)
    return children


def _child(space, table, target, parents, mutation, rng, seen) -> tuple:
    """A new child under the target, by mutation or crossover of ``parents``."""
    for _ in range(REDRAWS):
        if rng.random() < 0.5 or len(parents) < 2:
            c = mutate(space, rng.choice(parents), mutation, rng)
        else:
            a, b = rng.sample(parents, 2)
            c = crossover(a, b, rng)
        if c not in seen and table.predict(c, space) <= target:
            return c
    return tuple(table.repair(space, list(c), target).choices)


def first_generation(space, table, target, net, size: int, rng: random.Random) -> list[tuple]:
    """``size`` distinct architectures under the target: every other one drawn uniformly
    (``random_under``), the rest with the supernet's depth-uniform sampling
    (``supernet.train.depth_path``, by rejection, repaired after ``REDRAWS`` misses), so
    the first generation holds shallow-and-wide members as well as deep-and-narrow ones."""
    gen = torch.Generator().manual_seed(rng.getrandbits(31))
    population: list[tuple] = []
    while len(population) < size:
        if len(population) % 2 == 0:
            drawn = random_under(space, table, target, rng)
        else:
            drawn = random_under(
                space, table, target, rng, REDRAWS, draw=lambda: depth_path(net, gen)
            )
        a = tuple(drawn.choices)
        if a not in population:
            population.append(a)
    return population


def full_score(net, space, a, splits, seed: int) -> float:
    """Held-out accuracy on the whole held-out split, BN re-estimated on the default batches."""
    return path_accuracy(
        net, Arch.of(space, a), splits, calib_batches=CALIBRATION_BATCHES, seed=seed
    )


def rescore_leaders(
    net, space, table, fitness: dict, n: int, splits, seed: int
) -> tuple[list[tuple], dict]:
    """The ``n`` fittest of ``fitness`` scored again on the whole held-out split (the
    generations' few batches make the maximum a lucky draw: the winner's curse); returns
    every architecture ranked (the re-scored first) and the fitness with those scores."""
    ranked = rank(fitness, table, space)
    full = {a: full_score(net, space, a, splits, seed) for a in ranked[:n]}
    return rank(full, table, space) + ranked[n:], {**fitness, **full}


__all__ = [
    "REDRAWS",
    "mutate",
    "crossover",
    "rank",
    "next_generation",
    "first_generation",
    "full_score",
    "rescore_leaders",
]
