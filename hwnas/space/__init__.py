"""The one declarative search space, its block vocabulary, walker and architectures."""

from .arch import Arch, ArchError, choices_key, key_choices, random_arch, reference_arch
from .blocks import FBNET_OPS, BlockSpec, build_block, parse_key
from .builder import build_model, layer_module
from .catalog import SPACES, get_space, reference_names, reference_values
from .complexity import Complexity, arch_complexity, layer_complexity
from .space import Choice, LayerInfo, LatencyKey, SearchSpace, Slot, Stage

__all__ = [
    "Arch",
    "ArchError",
    "choices_key",
    "key_choices",
    "random_arch",
    "reference_arch",
    "FBNET_OPS",
    "BlockSpec",
    "build_block",
    "parse_key",
    "build_model",
    "layer_module",
    "SPACES",
    "get_space",
    "reference_names",
    "reference_values",
    "Complexity",
    "arch_complexity",
    "layer_complexity",
    "Choice",
    "LayerInfo",
    "LatencyKey",
    "SearchSpace",
    "Slot",
    "Stage",
]
