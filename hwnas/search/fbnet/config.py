"""FBNet's search settings (``FBNetConfig``), checked on construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hwnas.supernet.train import SAMPLERS

from ..base import SearchConfig
from ..confirm import checks as confirm_checks
from .loss import TARGET_TERMS


@dataclass(frozen=True)
class FBNetConfig(SearchConfig):
    strategy: ClassVar[str] = "fbnet"

    # soft (FBNet) | hard (GDAS straight-through) | auto: hard on a trained supernet (its
    # weights were trained as single paths, not as the soft mixture), soft from scratch
    mode: str = "auto"
    epochs: int = 4
    warmup_epochs: int = 1
    alpha: float = 0.2
    beta: float = 0.6
    tau0: float = 5.0
    tau_decay: float = 0.045
    target_term: str = "abs"
    target_weight: float = 1.0
    w_lr: float = 0.1
    w_momentum: float = 0.9
    w_wd: float = 1e-4
    theta_lr: float = 0.01
    theta_wd: float = 5e-4
    gate: str = "block"  # hard θ step: gate the whole block output, or only its "branch"
    select: int = 16  # candidates under T scored by the supernet at the end (0: argmax θ)
    distill_weight: float = 1.0  # stage-first candidates: weight of the MSE to the anchor
    student_share: float = 0.5  # stage-first candidates run in the path this often (after warm-up)
    sampling: str = "depth"  # warm-up paths: supernet.train.SAMPLERS
    supernet: str = ""  # start from a trained supernet (`hwnas supernet train`), not from scratch
    tune_weights: bool = False  # with a supernet: train its weights too (default: θ only)
    refine: int = 6  # generations of evolution on the supernet, seeded with θ's candidates
    # with select: this many leaders and the table's capacity picks trained stand-alone for
    # confirm_epochs, the best on the held-out split wins (search.confirm; 0: no training)
    confirm: int = 3
    confirm_epochs: int = 1
    confirm_images: int = 0  # training images each candidate trains on (0: all)

    def __post_init__(self):
        if self.mode == "auto":
            object.__setattr__(self, "mode", "hard" if self.supernet else "soft")
        super().__post_init__()

    @property
    def frozen(self) -> bool:
        """θ alone learns: the weights are a trained supernet's and stay as they are."""
        return bool(self.supernet) and not self.tune_weights

    def checks(self) -> list[tuple[bool, str]]:
        return [
            (
                self.mode in ("soft", "hard"),
                f"--mode must be soft, hard or auto (got {self.mode!r})",
            ),
            (self.epochs >= 1, f"--epochs must be at least 1 (got {self.epochs})"),
            (
                0 <= self.warmup_epochs < self.epochs,
                f"--warmup-epochs must be in 0..epochs-1 = 0..{self.epochs - 1} "
                f"(got {self.warmup_epochs}); θ is trained only after the warm-up",
            ),
            (
                self.target_term in TARGET_TERMS,
                f"target_term must be one of {', '.join(TARGET_TERMS)} (got {self.target_term!r})",
            ),
            (self.alpha > 0 and self.beta > 0, "alpha and beta must be positive"),
            (self.tau0 > 0 and self.tau_decay >= 0, "tau0 must be > 0 and tau_decay >= 0"),
            (self.distill_weight >= 0, "distill_weight must be >= 0"),
            (self.select >= 0, f"select must be >= 0 (got {self.select})"),
            (
                self.refine >= 0 and (self.refine == 0 or self.select >= 2),
                f"refine must be >= 0 and needs select >= 2 (got {self.refine})",
            ),
            (self.gate in ("block", "branch"), f"gate must be block or branch (got {self.gate!r})"),
            *confirm_checks(self),
            (0 <= self.student_share <= 1, "student_share must be in [0, 1]"),
            (
                self.sampling in SAMPLERS,
                f"sampling must be one of {', '.join(SAMPLERS)} (got {self.sampling!r})",
            ),
        ]


__all__ = ["FBNetConfig"]
