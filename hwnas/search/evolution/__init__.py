"""Evolution on a supernet trained once (Single Path One-Shot): a population under the
target, scored by the supernet, mutated and crossed over for a few generations.

``config`` (EvolutionConfig), ``ops`` (the operators, shared with FBNet's refinement),
``state`` (resume), ``run`` (the search, one target or several), ``report``."""

from .config import EvolutionConfig
from .ops import crossover, first_generation, mutate, next_generation, rank, rescore_leaders
from .run import search, search_targets, target_dir

__all__ = [
    "EvolutionConfig",
    "search",
    "search_targets",
    "target_dir",
    "mutate",
    "crossover",
    "rank",
    "next_generation",
    "rescore_leaders",
    "first_generation",
]
