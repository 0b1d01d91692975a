"""Architecture search under a latency target: one package per strategy, one entry.

- ``fbnet/``: differentiable search (Gumbel softmax over θ) on the FBNet supernet;
- ``evolution/``: evolution on a supernet trained once (``hwnas supernet train``);
- ``mnasnet/``: an RL controller on a Pareto reward, children trained or supernet-scored;
- ``base``: what they share (``SearchConfig``, ``SearchError``, ``SearchResult``, resume, the
  files every run writes); ``tables``: the latency table and the target; ``baselines``: what
  a search has to beat.

Every strategy's ``search(cfg, table=None, space=None, *, stop_after=None)`` returns a
``SearchResult`` (what ``arch.json`` holds); ``search`` below picks the strategy from the
config's class::

    from hwnas.search import search
    from hwnas.search.fbnet import FBNetConfig

    result = search(FBNetConfig(target_ms=2.0, out="runs/x"))
    result.predicted_ms, result.choices, result.extra["supernet"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import SearchConfig, SearchError, SearchResult

if TYPE_CHECKING:
    from hwnas.latency import LatencyTable
    from hwnas.space import SearchSpace

STRATEGIES = ("fbnet", "evolution", "mnasnet")


def config_class(strategy: str) -> type[SearchConfig]:
    """The config class of ``strategy`` (one of ``STRATEGIES``)."""
    if strategy == "fbnet":
        from .fbnet import FBNetConfig

        return FBNetConfig
    if strategy == "evolution":
        from .evolution import EvolutionConfig

        return EvolutionConfig
    if strategy == "mnasnet":
        from .mnasnet import MnasConfig

        return MnasConfig
    raise SearchError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def search(
    cfg: SearchConfig,
    table: LatencyTable | None = None,
    space: SearchSpace | None = None,
    *,
    stop_after: int | None = None,
) -> SearchResult | None:
    """Run (or resume) the search ``cfg`` configures (its class names the strategy) and
    return its result; ``table`` and ``space``: already loaded (else from ``cfg``).
    ``stop_after`` ends the run early after that many epochs (fbnet), generations
    (evolution) or controller batches (mnasnet), and then returns None."""
    if cfg.strategy == "fbnet":
        from .fbnet import search as run
    elif cfg.strategy == "evolution":
        from .evolution import search as run
    elif cfg.strategy == "mnasnet":
        from .mnasnet import search as run
    else:
        raise SearchError(f"{type(cfg).__name__}: not a strategy's config")
    return run(cfg, table, space, stop_after=stop_after)


__all__ = ["search", "config_class", "STRATEGIES", "SearchConfig", "SearchError", "SearchResult"]
