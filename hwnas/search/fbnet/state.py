"""An FBNet search's state (supernet, θ, both optimizers, the sampling generator, the epochs
done and their history) and its checkpoint, written after every epoch for ``--resume``.

The supernet lives on the search's accelerator; θ, its optimizer and the generator stay on
the CPU (a few hundred numbers; the Gumbel draws are then the same on every accelerator).
The checkpoint holds CPU tensors and loads with ``map_location="cpu"``, so a search resumes
on another accelerator."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from hwnas.accelerator import Accelerator, to_cpu
from hwnas.io import atomic_torch_save
from hwnas.space import SearchSpace
from hwnas.supernet import FBNetSupernet, SupernetError
from hwnas.train import nhwc

from ..base import SearchError
from .config import FBNetConfig

CKPT = "ckpt.pt"


@dataclass
class State:
    net: FBNetSupernet
    theta: list[torch.Tensor]
    w_opt: torch.optim.Optimizer
    t_opt: torch.optim.Optimizer
    gen: torch.Generator
    epoch: int = 0  # epochs completed
    history: list = dataclasses.field(default_factory=list)  # per epoch: log row + θ
    acc: Accelerator = dataclasses.field(default_factory=lambda: Accelerator.for_device("cpu"))
    scaler: object = None  # fp16 gradient scaler of the weight steps (None: not needed)


def new_state(
    space: SearchSpace, cfg: FBNetConfig, start: dict | None = None, acc: Accelerator | None = None
) -> State:
    acc = acc or Accelerator.for_device("cpu")
    torch.manual_seed(cfg.seed)
    try:
        net = nhwc(FBNetSupernet(space).to(acc.device))
    except SupernetError as e:
        raise SearchError(f"{e} (use --strategy mnasnet)") from None
    if start is not None:
        net.load_state_dict(start)
    theta = [torch.zeros(len(c), requires_grad=True) for c in space.choices]
    w_opt = torch.optim.SGD(
        net.parameters(), lr=cfg.w_lr, momentum=cfg.w_momentum, weight_decay=cfg.w_wd
    )
    t_opt = torch.optim.Adam(theta, lr=cfg.theta_lr, weight_decay=cfg.theta_wd)
    gen = torch.Generator().manual_seed(cfg.seed + 12345)
    return State(net, theta, w_opt, t_opt, gen, acc=acc, scaler=acc.scaler())


def save(state: State, out: Path) -> None:
    blob = {
        "net": to_cpu(state.net.state_dict()),
        "theta": [t.detach().clone() for t in state.theta],
        "w_opt": to_cpu(state.w_opt.state_dict()),
        "t_opt": state.t_opt.state_dict(),
        "gen": state.gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "epoch": state.epoch,
        "history": json.dumps(state.history),
    }
    if state.scaler is not None:
        blob["scaler"] = state.scaler.state_dict()
    atomic_torch_save(out / CKPT, blob)


def load(state: State, out: Path) -> None:
    try:
        blob = torch.load(out / CKPT, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or foreign file: say which
        raise SearchError(
            f"{out / CKPT}: unreadable checkpoint ({type(e).__name__}); delete it to start over"
        ) from None
    state.net.load_state_dict(blob["net"])
    with torch.no_grad():
        for t, saved in zip(state.theta, blob["theta"]):
            t.copy_(saved)
    state.w_opt.load_state_dict(blob["w_opt"])
    state.t_opt.load_state_dict(blob["t_opt"])
    if state.scaler is not None and "scaler" in blob:
        state.scaler.load_state_dict(blob["scaler"])
    state.gen.set_state(blob["gen"])
    torch.set_rng_state(blob["torch_rng"])
    state.epoch = int(blob["epoch"])
    state.history = json.loads(blob["history"])


__all__ = ["CKPT", "State", "new_state", "save", "load"]
