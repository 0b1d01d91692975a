"""Block vocabulary: frozen block specs with canonical keys, and the one spec → module registry.

A key is a prefix followed by ``_``-separated tokens, e.g. ``ir_k5_e1_g2``,
``mbconv_k5_e6_se0.25_id``, ``stem_k3``, ``skip``.  Parsing is table-driven: each spec
class lists its tokens as ``(tag, field, type)``; a token equal to the field's default
is omitted from the key, so every spec has exactly one key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from hwnas.errors import HwnasError

__all__ = [
    "BlockSpec",
    "IRBlock",
    "Skip",
    "MnasBlock",
    "Stem",
    "Head",
    "Pool",
    "FC",
    "parse_key",
    "build_block",
    "register",
    "REGISTRY",
    "FBNET_OPS",
]


class BlockKeyError(HwnasError, ValueError):
    """A block key that does not parse."""


@dataclass(frozen=True)
class BlockSpec:
    """Base of all block specs. Subclasses set PREFIX and TOKENS."""

    PREFIX: ClassVar[str] = ""
    # (tag, field name, type); flags use type bool and have no value part ("id").
    TOKENS: ClassVar[tuple[tuple[str, str, type], ...]] = ()

    def key(self) -> str:
        parts = [self.PREFIX]
        for tag, name, typ in self.TOKENS:
            value = getattr(self, name)
            default = _field_default(type(self), name)
            if value == default:
                continue
            if typ is bool:
                parts.append(tag)
            elif typ is float:
                parts.append(f"{tag}{value:g}")
            else:
                parts.append(f"{tag}{value}")
        return "_".join(parts)

    @classmethod
    def parse(cls, key: str) -> "BlockSpec":
        return parse_key(key)

    def __str__(self) -> str:
        return self.key()


def _field_default(cls: type, name: str):
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.default
    raise AttributeError(name)


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class IRBlock(BlockSpec):
    """FBNet inverted residual: 1x1 group conv → shuffle (g>1) → dw kxk → 1x1 group conv.

    BN after every conv, ReLU after the first two; identity residual when stride is 1
    and Cin == Cout.  The expansion 1x1 conv is kept for e=1 too (as FBNet's IRF block).
    """

    PREFIX: ClassVar[str] = "ir"
    TOKENS: ClassVar = (("k", "kernel", int), ("e", "expansion", int), ("g", "groups", int))
    kernel: int
    expansion: int
    groups: int = 1


@dataclass(frozen=True)
class Skip(BlockSpec):
    """FBNet's skip candidate: identity, or a 1x1 conv-BN-ReLU projection (with the
    layer's stride) when the shape changes — as the FBNet authors' ``skip`` op does."""

    PREFIX: ClassVar[str] = "skip"


@dataclass(frozen=True)
class MnasBlock(BlockSpec):
    """MnasNet block: op ∈ {conv, dwconv, mbconv}, kernel, expansion (mbconv), SE ratio,
    and ``residual`` (the skip op "identity"; the walker sets it only where it applies:
    stride 1 and Cin == Cout, so the key tells what the module really computes)."""

    PREFIX: ClassVar[str] = "mnas"  # not used in keys: the op name is the prefix
    TOKENS: ClassVar = (
        ("k", "kernel", int),
        ("e", "expansion", int),
        ("se", "se", float),
        ("id", "residual", bool),
    )
    op: str
    kernel: int
    expansion: int = 1
    se: float = 0.0
    residual: bool = False

    def __post_init__(self):
        if self.op not in ("conv", "dwconv", "mbconv"):
            raise ValueError(f"unknown MnasNet op {self.op!r}")
        if (self.op == "mbconv") == (self.expansion == 1):
            raise ValueError(
                f"{self.op}: expansion {self.expansion} is not allowed "
                "(mbconv needs e>1; conv and dwconv have none)"
            )

    def key(self) -> str:
        base = super().key()  # "mnas_k3_e6..."
        return self.op + base[len(self.PREFIX) :]


@dataclass(frozen=True)
class Stem(BlockSpec):
    """First conv: kxk conv (with the layer's stride), BN, ReLU."""

    PREFIX: ClassVar[str] = "stem"
    TOKENS: ClassVar = (("k", "kernel", int),)
    kernel: int


@dataclass(frozen=True)
class Head(BlockSpec):
    """Last conv: 1x1 conv, BN, ReLU."""

    PREFIX: ClassVar[str] = "head"


@dataclass(frozen=True)
class Pool(BlockSpec):
    """Global average pool to 1x1."""

    PREFIX: ClassVar[str] = "pool"


@dataclass(frozen=True)
class FC(BlockSpec):
    """Classifier: flatten + linear."""

    PREFIX: ClassVar[str] = "fc"


_SPEC_CLASSES: dict[str, tuple[type[BlockSpec], dict]] = {
    "ir": (IRBlock, {}),
    "skip": (Skip, {}),
    "conv": (MnasBlock, {"op": "conv"}),
    "dwconv": (MnasBlock, {"op": "dwconv"}),
    "mbconv": (MnasBlock, {"op": "mbconv"}),
    "stem": (Stem, {}),
    "head": (Head, {}),
    "pool": (Pool, {}),
    "fc": (FC, {}),
}

# FBNet's 9 candidates, in the paper's order (Table 2), then skip.
FBNET_OPS: tuple[str, ...] = (
    "ir_k3_e1",
    "ir_k3_e1_g2",
    "ir_k3_e3",
    "ir_k3_e6",
    "ir_k5_e1",
    "ir_k5_e1_g2",
    "ir_k5_e3",
    "ir_k5_e6",
    "skip",
)


def parse_key(key: str) -> BlockSpec:
    """Parse a canonical key back into its spec; ``parse_key(s.key()) == s``."""
    prefix, *tokens = key.split("_")
    if prefix not in _SPEC_CLASSES:
        raise BlockKeyError(
            f"unknown block key {key!r}: prefix {prefix!r} is not one of "
            f"{', '.join(sorted(_SPEC_CLASSES))}"
        )
    cls, fixed = _SPEC_CLASSES[prefix]
    values = dict(fixed)
    remaining = list(cls.TOKENS)
    for tok in tokens:
        for i, (tag, name, typ) in enumerate(remaining):
            if typ is bool and tok == tag:
                values[name] = True
            elif typ is not bool and tok.startswith(tag) and _is_number(tok[len(tag) :]):
                values[name] = typ(tok[len(tag) :])
            else:
                continue
            del remaining[: i + 1]  # tokens appear in fixed order, each once
            break
        else:
            raise BlockKeyError(f"unknown block key {key!r}: token {tok!r} is not understood")
    spec = cls(**values)
    if spec.key() != key:
        raise BlockKeyError(f"block key {key!r} is not canonical; write {spec.key()!r}")
    return spec


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return s != ""


# --------------------------------------------------------------------------- modules


class ConvBNReLU(nn.Sequential):
    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        relu: bool = True,
    ):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """SE as MnasNet: reduce to max(1, int(ref_channels * ratio)), ReLU, expand, sigmoid."""

    def __init__(self, channels: int, ref_channels: int, ratio: float):
        super().__init__()
        reduced = max(1, int(ref_channels * ratio))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(reduced, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))
        return x * s


class Residual(nn.Module):
    """``body(x) + x`` when ``add`` else ``body(x)``."""

    def __init__(self, body: nn.Module, add: bool):
        super().__init__()
        self.body = body
        self.add = add

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y + x if self.add else y


def zero_init_residual(model: nn.Module) -> int:
    """Start every identity-residual block of ``model`` as the identity: the last BatchNorm
    scale of its body at zero (Goyal et al., 2017; torchvision's ``zero_init_residual``).
    Returns how many blocks were changed."""
    n = 0
    for m in model.modules():
        if isinstance(m, Residual) and m.add:
            bns = [b for b in m.body.modules() if isinstance(b, nn.BatchNorm2d)]
            if bns:
                nn.init.zeros_(bns[-1].weight)
                n += 1
    return n


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1)


def _ir(spec: IRBlock, cin: int, cout: int, stride: int) -> nn.Module:
    mid = cin * spec.expansion
    g = spec.groups
    body: list[nn.Module] = [ConvBNReLU(cin, mid, 1, groups=g)]
    if g > 1:
        body.append(ChannelShuffle(g))
    body += [
        ConvBNReLU(mid, mid, spec.kernel, stride, groups=mid),
        ConvBNReLU(mid, cout, 1, groups=g, relu=False),
    ]
    return Residual(nn.Sequential(*body), add=stride == 1 and cin == cout)


def _skip(spec: Skip, cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return ConvBNReLU(cin, cout, 1, stride)


def _mnas(spec: MnasBlock, cin: int, cout: int, stride: int) -> nn.Module:
    if spec.residual and not (stride == 1 and cin == cout):
        raise ValueError(
            f"{spec.key()}: an identity residual needs stride 1 and Cin == Cout "
            f"(got stride {stride}, {cin} -> {cout})"
        )
    k, se = spec.kernel, spec.se
    if spec.op == "conv":
        body: list[nn.Module] = [ConvBNReLU(cin, cout, k, stride)]
        if se:
            body.append(SqueezeExcite(cout, cin, se))
    elif spec.op == "dwconv":
        body = [ConvBNReLU(cin, cin, k, stride, groups=cin)]
        if se:
            body.append(SqueezeExcite(cin, cin, se))
        body.append(ConvBNReLU(cin, cout, 1, relu=False))
    elif spec.op == "mbconv":
        mid = cin * spec.expansion
        body = [ConvBNReLU(cin, mid, 1), ConvBNReLU(mid, mid, k, stride, groups=mid)]
        if se:
            body.append(SqueezeExcite(mid, cin, se))
        body.append(ConvBNReLU(mid, cout, 1, relu=False))
    else:
        raise ValueError(f"unknown MnasNet op {spec.op!r}")
    return Residual(nn.Sequential(*body), add=spec.residual)


def _stem(spec: Stem, cin: int, cout: int, stride: int) -> nn.Module:
    return ConvBNReLU(cin, cout, spec.kernel, stride)


def _head(spec: Head, cin: int, cout: int, stride: int) -> nn.Module:
    return ConvBNReLU(cin, cout, 1, stride)


def _pool(spec: Pool, cin: int, cout: int, stride: int) -> nn.Module:
    return nn.AdaptiveAvgPool2d(1)


def _fc(spec: FC, cin: int, cout: int, stride: int) -> nn.Module:
    return nn.Sequential(Flatten(), nn.Linear(cin, cout))


Builder = Callable[[BlockSpec, int, int, int], nn.Module]
REGISTRY: dict[type[BlockSpec], Builder] = {}


def register(spec_cls: type[BlockSpec], builder: Builder) -> None:
    """Register the module constructor of a spec class; a second registration is refused."""
    if spec_cls in REGISTRY:
        raise KeyError(f"block spec {spec_cls.__name__} is already registered")
    REGISTRY[spec_cls] = builder


for _cls, _builder in (
    (IRBlock, _ir),
    (Skip, _skip),
    (MnasBlock, _mnas),
    (Stem, _stem),
    (Head, _head),
    (Pool, _pool),
    (FC, _fc),
):
    register(_cls, _builder)


def build_block(spec: BlockSpec, cin: int, cout: int, stride: int) -> nn.Module:
    """The module for ``spec`` taking ``cin`` channels to ``cout`` with ``stride``."""
    try:
        builder = REGISTRY[type(spec)]
    except KeyError:
        raise KeyError(f"no module registered for block spec {type(spec).__name__}") from None
    return builder(spec, cin, cout, stride)
