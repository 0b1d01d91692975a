"""LSTM controller for MnasNet: one categorical decision per choice point, trained with PPO."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class ControllerConfig:
    hidden: int = 64
    lr: float = 5e-3  # Adam (MnasNet used 3.5e-4 over ~8k models; our budgets are far smaller)
    clip: float = 0.2  # PPO ratio clip ε
    ppo_epochs: int = 4  # gradient steps on each batch
    entropy: float = 1e-3  # entropy bonus weight
    baseline_decay: float = 0.5  # moving-average baseline: b ← d·b + (1−d)·mean(reward)
    max_grad_norm: float = 5.0
    init_range: float = 0.1


class Controller(nn.Module):
    """Decision i: LSTM step on the embedding of decision i−1 (a learned start input for
    i = 0), then a linear head with ``sizes[i]`` logits.  Decisions follow the space's
    fixed choice order, so any space works."""

    def __init__(
        self, sizes: Sequence[int], cfg: ControllerConfig = ControllerConfig(), seed: int = 0
    ):
        super().__init__()
        if not sizes or min(sizes) < 1:
            raise ValueError(f"every choice point needs at least one option (got {sizes})")
        self.sizes, self.cfg = [int(n) for n in sizes], cfg
        h = cfg.hidden
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.start = nn.Parameter(torch.zeros(1, h))
            self.embed = nn.ModuleList(nn.Embedding(n, h) for n in self.sizes)
            self.cell = nn.LSTMCell(h, h)
            self.heads = nn.ModuleList(nn.Linear(h, n) for n in self.sizes)
            for p in self.parameters():
                nn.init.uniform_(p, -cfg.init_range, cfg.init_range)
        self.opt = torch.optim.Adam(self.parameters(), lr=cfg.lr)
        self.gen = torch.Generator().manual_seed(seed + 7919)
        self.baseline: float | None = None
        self.updates = 0

    # ------------------------------------------------------------------ rollout
    def _run(self, n: int, choices: torch.Tensor | None):
        """(choices (n, D), Σ log p (n,), Σ entropy (n,)); samples when ``choices`` is None."""
        h = c = torch.zeros(n, self.cfg.hidden)
        x = self.start.expand(n, -1)
        picked, logp, ent = [], torch.zeros(n), torch.zeros(n)
        for i, head in enumerate(self.heads):
            h, c = self.cell(x, (h, c))
            log_probs = F.log_softmax(head(h), dim=-1)
            if choices is None:
                a = torch.multinomial(log_probs.detach().exp(), 1, generator=self.gen).squeeze(1)
            else:
                a = choices[:, i]
            picked.append(a)
            logp = logp + log_probs.gather(1, a[:, None]).squeeze(1)
            ent = ent - (log_probs.exp() * log_probs).sum(-1)
            x = self.embed[i](a)
        return torch.stack(picked, 1), logp, ent

    @torch.no_grad()
    def sample(self, n: int) -> list[tuple[int, ...]]:
        """``n`` architectures (choice-index tuples) from the seeded generator."""
        out, _, _ = self._run(n, None)
        return [tuple(int(v) for v in row) for row in out]

    def log_prob(self, choices: Sequence[Sequence[int]]) -> torch.Tensor:
        """Σ log p of each given architecture (n,)."""
        t = torch.as_tensor([list(c) for c in choices], dtype=torch.long)
        return self._run(len(t), t)[1]

    # ------------------------------------------------------------------ PPO
    def update(self, choices: Sequence[Sequence[int]], rewards: Sequence[float]) -> dict:
        """One PPO update on a batch: clipped surrogate on advantages r − b, plus an entropy
        bonus; the moving-average baseline b absorbs the batch mean before the advantages."""
        if len(choices) != len(rewards) or not choices:
            raise ValueError("update needs as many rewards as architectures (and at least one)")
        cfg = self.cfg
        t = torch.as_tensor([list(c) for c in choices], dtype=torch.long)
        r = torch.as_tensor([float(v) for v in rewards])
        mean = float(r.mean())
        b = mean if self.baseline is None else self.baseline
        # the average absorbs this batch first: a lagging baseline makes every sample of an
        # improving policy look good and collapses it early
        self.baseline = cfg.baseline_decay * b + (1 - cfg.baseline_decay) * mean
        adv = r - self.baseline
        with torch.no_grad():
            old = self._run(len(t), t)[1]
        stats = {}
        for _ in range(cfg.ppo_epochs):
            _, logp, ent = self._run(len(t), t)
            ratio = torch.exp(logp - old)
            surr = torch.min(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv)
            loss = -surr.mean() - cfg.entropy * ent.mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.parameters(), cfg.max_grad_norm)
            self.opt.step()
            stats = {"loss": float(loss.detach()), "entropy": float(ent.mean().detach())}
        self.updates += 1
        return {**stats, "baseline": self.baseline, "mean_reward": float(r.mean())}

    # ------------------------------------------------------------------ checkpoint
    def full_state(self) -> dict:
        """Weights, optimizer, sampling generator, baseline and update count (torch.save-able
        with weights_only=True)."""
        return {
            "model": self.state_dict(),
            "opt": self.opt.state_dict(),
            "gen": self.gen.get_state(),
            "sizes": list(self.sizes),
            "baseline": float("nan") if self.baseline is None else self.baseline,
            "updates": self.updates,
        }

    def load_full_state(self, state: dict) -> None:
        if list(state["sizes"]) != self.sizes:
            raise ValueError(
                f"controller checkpoint is for choice sizes {state['sizes']}, not {self.sizes}"
            )
        self.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])
        b = float(state["baseline"])
        self.baseline = None if b != b else b
        self.updates = int(state["updates"])


__all__ = ["Controller", "ControllerConfig"]
