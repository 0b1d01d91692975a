"""MnasNet: an LSTM controller trained with PPO on a Pareto reward (``rewards``), its child
architectures proxy-trained in process or on Ray (``pool``, ``trials``) or scored with shared
or trained supernet weights (``evaluators``, ``supernet``).

``config`` (MnasConfig), ``controller``, ``rewards``, ``trials``, ``pool``, ``evaluators``,
``supernet`` (the shared-weights supernet of the mnasnet space), ``run`` (the search),
``report``."""

from .config import EVALUATORS, LATENCY_MODES, MnasConfig
from .run import INVALID_REWARD, search

__all__ = ["MnasConfig", "search", "EVALUATORS", "LATENCY_MODES", "INVALID_REWARD"]
