"""Evolution's search settings (``EvolutionConfig``), checked on construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..base import SearchConfig
from ..confirm import checks as confirm_checks

PARENTS = 6  # parents kept per generation by default (fewer when the population is smaller)


@dataclass(frozen=True)
class EvolutionConfig(SearchConfig):
    strategy: ClassVar[str] = "evolution"

    supernet: str = ""
    population: int = 16
    generations: int = 6
    parents: int | None = None  # None: min(6, population)
    mutation: float = 0.1
    calib_batches: int = 10  # of 64 training images, per architecture
    eval_batches: int = 4  # of 256 held-out images, per architecture
    rescore: int = 8  # the fittest re-scored on the whole held-out split at the end
    # then the confirmation (search.confirm): this many leaders and the table's capacity picks
    # trained stand-alone for confirm_epochs; the best on the held-out split wins (0: the
    # supernet's best wins)
    confirm: int = 3
    confirm_epochs: int = 1
    confirm_images: int = 0  # training images each candidate trains on (0: all)

    def __post_init__(self):
        if self.parents is None:
            object.__setattr__(self, "parents", min(PARENTS, self.population))
        super().__post_init__()

    def checks(self) -> list[tuple[bool, str]]:
        return [
            (
                bool(self.supernet),
                "--strategy evolution needs --supernet DIR (a folder written "
                "by `hwnas supernet train`)",
            ),
            (self.population >= 2, f"--population must be at least 2 (got {self.population})"),
            (self.generations >= 1, f"--generations must be at least 1 (got {self.generations})"),
            (
                1 <= self.parents <= self.population,
                f"--parents must be in 1..population (got {self.parents})",
            ),
            (0 < self.mutation <= 1, f"mutation must be in (0, 1] (got {self.mutation})"),
            (
                self.calib_batches >= 1 and self.eval_batches >= 1,
                "calib_batches and eval_batches must be at least 1",
            ),
            (self.rescore >= 0, f"rescore must be >= 0 (got {self.rescore})"),
            *confirm_checks(self),
        ]


__all__ = ["EvolutionConfig", "PARENTS"]
