"""MACs and params of layers and architectures, counted on the real modules (meta tensors)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import build_block
from .space import LayerInfo, SearchSpace


@dataclass(frozen=True)
class Complexity:
    macs: int
    params: int

    def __add__(self, other: "Complexity") -> "Complexity":
        return Complexity(self.macs + other.macs, self.params + other.params)


def layer_complexity(info: LayerInfo) -> Complexity:
    """MACs of convs and linears (+ the SE gate multiply) and all parameters of one layer."""
    return _complexity(info.spec, info.in_shape, info.cout, info.stride)


@functools.lru_cache(maxsize=4096)
def _complexity(spec, in_shape, cout: int, stride: int) -> Complexity:
    """``layer_complexity`` of a layer's shape-defining fields (its name does not count), once
    per process: a table's 420 layers are counted by every synthetic table and report."""
    h, w, c = in_shape
    with torch.device("meta"):  # no real weights: counting needs shapes only
        module = build_block(spec, c, cout, stride)
    macs = 0

    def conv_hook(m: nn.Conv2d, inp, out):
        nonlocal macs
        kh, kw = m.kernel_size
        macs += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inp, out):
        nonlocal macs
        macs += out.numel() * m.in_features

    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear_hook)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            # shape-preserving, and on meta tensors its decomposition took 3/4 of the count
            m.forward = _same
    with torch.no_grad():
        module.eval()(torch.empty(1, c, h, w, device="meta"))
    params = sum(p.numel() for p in module.parameters())
    return Complexity(macs, params)


def _same(x):
    return x


def arch_complexity(
    space: SearchSpace, arch
) -> tuple[Complexity, list[tuple[LayerInfo, Complexity]]]:
    rows = [(info, layer_complexity(info)) for info in space.layers(arch)]
    total = Complexity(0, 0)
    for _, c in rows:
        total = total + c
    return total, rows
