"""MnasNet's search settings (``MnasConfig``), checked on construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..base import SearchConfig
from .controller import ControllerConfig
from .rewards import REWARDS

EVALUATORS = ("train", "shared", "supernet")
LATENCY_MODES = ("predict", "measured")


@dataclass(frozen=True)
class MnasConfig(SearchConfig):
    strategy: ClassVar[str] = "mnasnet"
    # where the trials run, not what is searched: a run resumes with other values of these
    resume_free: ClassVar[tuple[str, ...]] = (
        "resume",
        "accelerator",
        "gpus_per_trial",
        "workers",
        "ray_address",
        "ray_timeout_s",
    )

    space: str = "mnasnet-small"
    reward: str = "soft"  # soft | hard | abs
    trials: int = 32
    batch: int = 4  # architectures per controller update
    child_epochs: int = 1
    workers: int = 1  # 1 without --ray-address: in process, no Ray
    ray_address: str | None = None
    gpus_per_trial: float = 1.0  # Ray trials on CUDA: GPUs each asks for (0.25: 4 per GPU)
    latency: str = "predict"  # predict | measured
    evaluator: str = "train"  # train | shared | supernet (a trained one: `hwnas supernet train`)
    supernet: str = ""  # evaluator supernet: its folder
    supernet_epochs: int = 3  # shared evaluator: epochs of single-path supernet training
    # proxy budget: 1 epoch on 1.2k images at batch 64 / lr 0.1 stays near chance (~0.1 val
    # accuracy); 2.4k images at batch 32 / lr 0.05 gives ~0.54, enough to rank children
    subset: int | None = 3000
    batch_size: int = 32
    child_lr: float = 0.05
    retries: int = 2  # extra attempts for a failed trial / dead worker
    ray_timeout_s: float = 10.0
    ctl_lr: float = 5e-3
    ctl_hidden: int = 64
    ppo_clip: float = 0.2
    ppo_epochs: int = 4
    # entropy bonus c: the regularised policy is p ∝ exp(reward / c) per decision, and one of
    # fbnet-small's 29 decisions moves a supernet's reward by well under 0.01 (sd 0.044 over
    # whole random architectures), so 1e-2 held the controller near uniform; 1e-3 lets it
    # concentrate (tests/test_mnasnet.py, bench/mnasnet_controller.py)
    entropy: float = 1e-3
    baseline_decay: float = 0.9

    def checks(self) -> list[tuple[bool, str]]:
        return [
            (
                self.reward in REWARDS,
                f"unknown reward {self.reward!r}; choose one of {', '.join(REWARDS)}",
            ),
            (
                self.evaluator in EVALUATORS,
                f"unknown evaluator {self.evaluator!r}; choose one of {', '.join(EVALUATORS)}",
            ),
            (
                self.latency in LATENCY_MODES,
                f"unknown latency mode {self.latency!r}; choose one of {', '.join(LATENCY_MODES)}",
            ),
            (self.workers >= 1, f"--workers must be at least 1 (got {self.workers})"),
            (self.trials >= 1, f"--trials must be at least 1 (got {self.trials})"),
            (self.batch >= 1, f"--batch must be at least 1 (got {self.batch})"),
            (
                self.child_epochs >= 1,
                f"--child-epochs must be at least 1 (got {self.child_epochs})",
            ),
            (
                self.supernet_epochs >= 1,
                f"supernet_epochs must be at least 1 (got {self.supernet_epochs})",
            ),
            (self.retries >= 0, f"retries must be >= 0 (got {self.retries})"),
            (self.ray_timeout_s > 0, "ray_timeout_s must be positive"),
            (
                0 < self.gpus_per_trial <= 1 or float(self.gpus_per_trial).is_integer(),
                f"--gpus-per-trial must be a fraction in (0, 1] or a whole number, as Ray "
                f"requires (got {self.gpus_per_trial:g})",
            ),
        ]

    def controller(self) -> ControllerConfig:
        return ControllerConfig(
            hidden=self.ctl_hidden,
            lr=self.ctl_lr,
            clip=self.ppo_clip,
            ppo_epochs=self.ppo_epochs,
            entropy=self.entropy,
            baseline_decay=self.baseline_decay,
        )


__all__ = ["MnasConfig", "EVALUATORS", "LATENCY_MODES"]
