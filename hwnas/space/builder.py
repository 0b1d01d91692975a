"""Arch → plain ``torch.nn.Module``, built from the one walker."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .blocks import build_block
from .space import LayerInfo, SearchSpace


class Net(nn.Sequential):
    """A plain sequential CNN: one child per walker layer, named after it (dots → '_')."""


def layer_module(info: LayerInfo) -> nn.Module:
    return build_block(info.spec, info.cin, info.cout, info.stride)


def build_model(space: SearchSpace, arch) -> Net:
    return Net(
        OrderedDict((module_name(info.name), layer_module(info)) for info in space.layers(arch))
    )


def module_name(layer_name: str) -> str:
    return layer_name.replace(".", "_")
