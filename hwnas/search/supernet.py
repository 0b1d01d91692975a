"""FBNet supernet: a mixed op per searchable layer plus FBNetV2 channel masks per stage width.

Every candidate of a layer is built once at the widest widths of its stage (input: the
previous stage's widest width).  A stage's width choice does not copy weights: the stage's
layer outputs are multiplied by ``Σ_k g_k · mask_k`` where ``mask_k`` keeps the first
``width_k`` channels and ``g`` are the Gumbel weights of the width logits (FBNetV2's channel
masking).  Masked channels are zero, so the next layer sees exactly the narrower input.

Gumbel weights come from ``gumbel_weights``: ``soft`` = the Gumbel-softmax vector (FBNet:
every candidate runs, outputs weighted); ``hard`` = a straight-through one-hot (GDAS: only the
sampled candidate runs; its weight is 1 in the forward pass and the softmax's gradient flows
back to θ).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hwnas.space import SearchSpace, build_block, parse_key
from hwnas.space.blocks import FC, Head, Pool, Stem
from hwnas.space.space import make_divisible

from .common import SearchError


@dataclass(frozen=True)
class LayerPlan:
    """One searchable layer: its op choice point, its stage's width choice point, shapes."""

    name: str
    op_choice: int
    width_choice: int
    cin: int  # widest input channels
    cout: int  # widest output channels
    stride: int


def plan_layers(space: SearchSpace) -> list[LayerPlan]:
    """The searchable layers of an fbnet-family space, in network order."""
    if space.family != "fbnet":
        raise SearchError(f"FBNet search needs an fbnet-family space; {space.name} is "
                          f"{space.family} (use --strategy mnasnet)")
    out, cin = [], make_divisible(space.stem_channels * space.width_mult)
    for st in space.stages:
        w = space.choice_index(f"{st.name}.width")
        cout = max(space.choices[w].options)
        for j in range(st.layers):
            name = f"{st.name}.l{j}"
            out.append(LayerPlan(name, space.choice_index(f"{name}.op"), w, cin, cout,
                                 st.stride if j == 0 else 1))
            cin = cout
    return out


def gumbel_weights(theta: torch.Tensor, tau: float, gen: torch.Generator, hard: bool
                   ) -> tuple[torch.Tensor, int]:
    """Gumbel-softmax weights over ``theta``'s options and the sampled index (its argmax).

    ``g_i = softmax((θ_i + G_i) / τ)`` with ``G_i = −log(−log U_i)``, ``U ~ Uniform(0, 1)``
    drawn from ``gen``; with ``hard`` the forward value is one-hot (straight-through).
    """
    u = torch.rand(theta.shape, generator=gen, dtype=theta.dtype).clamp_(1e-10, 1.0 - 1e-7)
    soft = ((theta - torch.log(-torch.log(u))) / tau).softmax(-1)
    idx = int(soft.detach().argmax())
    if not hard:
        return soft, idx
    one_hot = torch.zeros_like(soft)
    one_hot[idx] = 1.0
    return one_hot - soft.detach() + soft, idx


class MixedOp(nn.Module):
    """A layer's candidates; ``forward(x, w, idx)`` mixes them (soft) or runs one (hard)."""

    def __init__(self, ops: tuple[str, ...], cin: int, cout: int, stride: int):
        super().__init__()
        self.candidates = nn.ModuleList(build_block(parse_key(k), cin, cout, stride) for k in ops)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: int | None) -> torch.Tensor:
        if index is not None:
            return weights[index] * self.candidates[index](x)
        out = weights[0] * self.candidates[0](x)
        for w, op in zip(weights[1:], self.candidates[1:]):
            out = out + w * op(x)
        return out


class Supernet(nn.Module):
    """The weights of every candidate; architecture weights are passed in per forward."""

    def __init__(self, space: SearchSpace):
        super().__init__()
        self.plan = plan_layers(space)
        stem_c = make_divisible(space.stem_channels * space.width_mult)
        self.stem = build_block(Stem(3), space.in_channels, stem_c, space.stem_stride)
        self.layers = nn.ModuleList(MixedOp(space.ops, p.cin, p.cout, p.stride) for p in self.plan)
        last = self.plan[-1].cout
        head_c = make_divisible(space.head_channels * space.width_mult)
        self.head = build_block(Head(), last, head_c, 1)
        self.pool = build_block(Pool(), head_c, head_c, 1)
        self.fc = build_block(FC(), head_c, space.num_classes, 1)
        for p in {p.width_choice for p in self.plan}:
            widths = space.choices[p].options
            masks = torch.zeros(len(widths), max(widths))
            for k, c in enumerate(widths):
                masks[k, :c] = 1.0
            self.register_buffer(f"masks_{p}", masks, persistent=False)

    def forward(self, x: torch.Tensor, weights: list[torch.Tensor],
                indices: list[int] | None = None) -> torch.Tensor:
        """``weights[i]``: the (Gumbel) weights of choice point i; ``indices`` given → hard."""
        x = self.stem(x)
        mask, mask_of = None, None
        for p, layer in zip(self.plan, self.layers):
            idx = indices[p.op_choice] if indices is not None else None
            x = layer(x, weights[p.op_choice], idx)
            if mask_of != p.width_choice:
                mask_of = p.width_choice
                mask = weights[mask_of] @ getattr(self, f"masks_{mask_of}")
            x = x * mask.view(1, -1, 1, 1)
        return self.fc(self.pool(self.head(x)))


__all__ = ["LayerPlan", "plan_layers", "gumbel_weights", "MixedOp", "Supernet"]
