"""MACs and params of layers and architectures, counted on the real modules (meta tensors)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .builder import layer_module
from .space import LayerInfo, SearchSpace


@dataclass(frozen=True)
class Complexity:
    macs: int
    params: int

    def __add__(self, other: "Complexity") -> "Complexity":
        return Complexity(self.macs + other.macs, self.params + other.params)


def layer_complexity(info: LayerInfo) -> Complexity:
    """MACs of convs and linears (+ the SE gate multiply) and all parameters of one layer."""
    with torch.device("meta"):  # no real weights: counting needs shapes only
        module = layer_module(info)
    macs = 0

    def conv_hook(m: nn.Conv2d, inp, out):
        nonlocal macs
        kh, kw = m.kernel_size
        macs += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inp, out):
        nonlocal macs
        macs += out.numel() * m.in_features

    hooks = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    h, w, c = info.in_shape
    with torch.no_grad():
        module.eval()(torch.empty(1, c, h, w, device="meta"))
    for hk in hooks:
        hk.remove()
    params = sum(p.numel() for p in module.parameters())
    return Complexity(macs, params)


def arch_complexity(
    space: SearchSpace, arch
) -> tuple[Complexity, list[tuple[LayerInfo, Complexity]]]:
    rows = [(info, layer_complexity(info)) for info in space.layers(arch)]
    total = Complexity(0, 0)
    for _, c in rows:
        total = total + c
    return total, rows
