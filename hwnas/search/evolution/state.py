"""Evolution's state after each generation (``state.json``): the generation, the next
population, every fitness so far, the log rows and the RNG, so ``--resume`` finishes with the
same result as an uninterrupted run."""

from __future__ import annotations

import json
import random
from pathlib import Path

from hwnas.io import atomic_write_json

from ..base import SearchError

STATE = "state.json"


def save_state(out, gen, population, fitness, history, rng) -> None:
    state = rng.getstate()
    atomic_write_json(
        out / STATE,
        {
            "generation": gen,
            "population": [list(a) for a in population],
            "fitness": [[list(a), v] for a, v in fitness.items()],
            "history": history,
            "rng": [state[0], list(state[1]), state[2]],
        },
    )


def load_state(out: Path, rng: random.Random):
    try:
        s = json.loads((out / STATE).read_text())
        rng.setstate((s["rng"][0], tuple(s["rng"][1]), s["rng"][2]))
        return (
            int(s["generation"]),
            [tuple(a) for a in s["population"]],
            {tuple(a): float(v) for a, v in s["fitness"]},
            s["history"],
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        raise SearchError(
            f"{out / STATE}: unreadable search state; delete it to start over"
        ) from None


__all__ = ["STATE", "save_state", "load_state"]
