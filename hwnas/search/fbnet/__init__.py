"""FBNet: differentiable (Gumbel-softmax) search on a supernet whose single paths are the
exported networks; the winner drawn from θ and chosen by the supernet's own accuracy.

``config`` (FBNetConfig), ``state`` (checkpoint and resume), ``steps`` (one epoch: weight and
θ steps), ``select`` (naming the winner), ``run`` (the search), ``loss`` and ``report``."""

from .config import FBNetConfig
from .run import search
from .select import choose, derive, refine, select, supernet_accuracy, supernet_note
from .steps import argmax_arch, probs, skip_share, theta_forward

__all__ = [
    "FBNetConfig",
    "search",
    "derive",
    "select",
    "refine",
    "choose",
    "argmax_arch",
    "skip_share",
    "probs",
    "supernet_accuracy",
    "supernet_note",
    "theta_forward",
]
