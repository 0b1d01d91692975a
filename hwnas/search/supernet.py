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
import torch.nn.functional as F
from torch import nn

from hwnas.space import SearchSpace, build_block, parse_key
from hwnas.space.blocks import FC, Head, IRBlock, Pool, Skip, Stem
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
    """A layer's candidates with entangled weights (OFA-style), so that every candidate of a
    layer computes features of the same kind and the next layer can serve them all.

    The IR candidates share one set of convolutions at the largest kernel and expansion:
    ``k3`` uses the centre 3x3 of the 5x5 depthwise kernel, ``e1``/``e3`` the first
    ``cin·e`` expanded channels of ``e6``, and ``g2`` the block-diagonal part of the same 1x1
    weights (a group conv is a dense conv with those weights zeroed) followed by the channel
    shuffle.  BatchNorms are per candidate (their statistics differ).  ``skip`` has its own
    module (identity, or FBNet's 1x1 projection when the shape changes).  Independent weights
    per candidate, as FBNet's supernet has, do not train within a CPU budget: measured on
    fbnet-small, random paths over just {k3_e6, k5_e6} stayed at chance after 75 steps
    while a fixed path reached 54%.
    """

    def __init__(self, ops: tuple[str, ...], cin: int, cout: int, stride: int):
        super().__init__()
        self.specs = [parse_key(k) for k in ops]
        irs = [sp for sp in self.specs if isinstance(sp, IRBlock)]
        self.cin, self.cout, self.stride = cin, cout, stride
        self.kmax = max((sp.kernel for sp in irs), default=1)
        self.mid = cin * max((sp.expansion for sp in irs), default=1)
        self.pw = nn.Parameter(torch.empty(self.mid, cin, 1, 1))
        self.dw = nn.Parameter(torch.empty(self.mid, 1, self.kmax, self.kmax))
        self.pwl = nn.Parameter(torch.empty(cout, self.mid, 1, 1))
        for w in (self.pw, self.dw, self.pwl):
            nn.init.kaiming_normal_(w, mode="fan_out")
        self.bns = nn.ModuleList(
            nn.ModuleList(nn.BatchNorm2d(c) for c in (cin * sp.expansion, cin * sp.expansion, cout))
            if isinstance(sp, IRBlock) else nn.Identity() for sp in self.specs)
        self.skips = nn.ModuleList(
            build_block(sp, cin, cout, stride) if isinstance(sp, Skip) else nn.Identity()
            for sp in self.specs)

    def candidate(self, i: int, x: torch.Tensor) -> torch.Tensor:
        sp = self.specs[i]
        if not isinstance(sp, IRBlock):
            return self.skips[i](x)
        mid, g, k = self.cin * sp.expansion, sp.groups, sp.kernel
        bn1, bn2, bn3 = self.bns[i]
        off = (self.kmax - k) // 2
        h = F.relu(bn1(F.conv2d(x, _grouped(self.pw[:mid], g))))
        if g > 1:
            n, c, hh, ww = h.shape
            h = h.view(n, g, c // g, hh, ww).transpose(1, 2).reshape(n, c, hh, ww)
        h = F.conv2d(h, self.dw[:mid, :, off:off + k, off:off + k], stride=self.stride,
                     padding=k // 2, groups=mid)
        h = bn3(F.conv2d(F.relu(bn2(h)), _grouped(self.pwl[:, :mid], g)))
        return h + x if self.stride == 1 and self.cin == self.cout else h

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: int | None) -> torch.Tensor:
        if index is not None:
            return weights[index] * self.candidate(index, x)
        out = weights[0] * self.candidate(0, x)
        for i in range(1, len(self.specs)):
            out = out + weights[i] * self.candidate(i, x)
        return out


def _grouped(w: torch.Tensor, groups: int) -> torch.Tensor:
    """A dense 1x1 weight with everything outside the ``groups`` diagonal blocks zeroed."""
    if groups == 1:
        return w
    cout, cin = w.shape[:2]
    rows = torch.arange(cout) * groups // cout
    cols = torch.arange(cin) * groups // cin
    return w * (rows[:, None] == cols[None, :]).to(w.dtype)[:, :, None, None]


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
