"""The one declarative search space: macro stages + micro choices, and the one walker.

A ``SearchSpace`` is data: a stem, stages (base channels, layers, first stride), a head,
and the options of each kind of choice.  From it follow

* ``choices`` — the choice points in one fixed order (see ``SearchSpace.choices``);
  an architecture is one option index per choice point;
* ``slots()`` — every layer position the network can have, each with the choice points
  it depends on and a pure function that resolves it to a ``LayerInfo``;
* ``layers(arch)`` — *the* walker: the resolved slots of one architecture, in order.

Model building, FLOPs/params, block-model generation, the latency table, its bounds and
the repair DP all read ``slots()``/``layers()``; nothing else walks a network.

Choice order.  ``family="fbnet"``: for each stage ``sN.width`` then ``sN.lJ.op`` for each
of its layers.  ``family="mnasnet"``: for each block ``bN.op``, ``bN.kernel``, ``bN.se``,
``bN.skip``, ``bN.width``, ``bN.layers`` (the MnasNet paper's order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .blocks import FC, BlockSpec, Head, MnasBlock, Pool, Stem, parse_key

Shape = tuple[int, int, int]  # (H, W, C)
LatencyKey = tuple[str, int, int, int, int, int]  # (block key, H, W, Cin, Cout, stride)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor`` (never below it, never 10% below ``value``)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def conv_out(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded conv (k odd, padding k//2) with ``stride``."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class Choice:
    """One choice point: a name and its option values (in a fixed order)."""

    name: str
    kind: str  # width | op | kernel | se | skip | layers
    options: tuple

    def __len__(self) -> int:
        return len(self.options)

    def index(self, value) -> int:
        try:
            return self.options.index(value)
        except ValueError:
            raise ValueError(f"{self.name}: {value!r} is not one of {list(self.options)}") from None


@dataclass(frozen=True)
class Stage:
    """A macro stage (FBNet) or block (MnasNet): base channels, layers, first stride."""

    name: str
    channels: int
    layers: int
    stride: int


@dataclass(frozen=True)
class LayerInfo:
    """What the walker yields for one layer."""

    name: str
    spec: BlockSpec
    in_shape: Shape
    cout: int
    stride: int

    @property
    def cin(self) -> int:
        return self.in_shape[2]

    @property
    def out_shape(self) -> Shape:
        if isinstance(self.spec, (Pool, FC)):
            return (1, 1, self.cout)
        h, w, _ = self.in_shape
        return (conv_out(h, self.stride), conv_out(w, self.stride), self.cout)

    @property
    def key(self) -> LatencyKey:
        h, w, c = self.in_shape
        return (self.spec.key(), h, w, c, self.cout, self.stride)


@dataclass(frozen=True)
class Slot:
    """A layer position: the choice points it depends on and how it resolves.

    ``resolve(values)`` gets the option *values* of ``deps`` (in that order) and returns
    the layer, or ``None`` where that assignment leaves the position out (fewer layers).
    """

    name: str
    deps: tuple[int, ...]
    resolve: Callable[[tuple], "LayerInfo | None"] = field(compare=False)


@dataclass(frozen=True)
class SearchSpace:
    name: str
    family: str  # "fbnet" (per-layer op choice) | "mnasnet" (factorized per block)
    resolution: int
    num_classes: int
    stem_channels: int
    stem_stride: int
    stages: tuple[Stage, ...]
    head_channels: int
    width_multipliers: tuple[float, ...] = (0.75, 1.0, 1.25)
    in_channels: int = 3
    version: int = 1
    ops: tuple[str, ...] = ()  # fbnet: candidate block keys per layer
    mnas_ops: tuple[str, ...] = ("conv", "dwconv", "mbconv_e3", "mbconv_e6")
    kernels: tuple[int, ...] = (3, 5)
    se_ratios: tuple[float, ...] = (0.0, 0.25)
    skip_ops: tuple[str, ...] = ("none", "identity")
    layer_deltas: tuple[int, ...] = (-1, 0, 1)
    width_mult: float = 1.0  # global multiplier applied to every base width
    description: str = ""
    params: dict = field(default_factory=dict, compare=False)  # factory arguments, for Arch JSON

    def __post_init__(self):
        if self.family not in ("fbnet", "mnasnet"):
            raise ValueError(f"unknown space family {self.family!r}")
        object.__setattr__(self, "_choices", self._make_choices())
        object.__setattr__(self, "_slots", self._make_slots())

    # ------------------------------------------------------------------ choices
    def stage_widths(self, stage: Stage) -> tuple[int, ...]:
        """The distinct channel counts a stage may take (multipliers rounded to 8)."""
        base = stage.channels * self.width_mult
        return tuple(sorted({make_divisible(base * m) for m in self.width_multipliers}))

    def stage_layer_counts(self, stage: Stage) -> tuple[int, ...]:
        return tuple(sorted({max(1, stage.layers + d) for d in self.layer_deltas}))

    def _make_choices(self) -> tuple[Choice, ...]:
        out: list[Choice] = []
        for st in self.stages:
            if self.family == "fbnet":
                out.append(Choice(f"{st.name}.width", "width", self.stage_widths(st)))
                out += [Choice(f"{st.name}.l{j}.op", "op", self.ops) for j in range(st.layers)]
            else:
                out += [
                    Choice(f"{st.name}.op", "op", self.mnas_ops),
                    Choice(f"{st.name}.kernel", "kernel", self.kernels),
                    Choice(f"{st.name}.se", "se", self.se_ratios),
                    Choice(f"{st.name}.skip", "skip", self.skip_ops),
                    Choice(f"{st.name}.width", "width", self.stage_widths(st)),
                    Choice(f"{st.name}.layers", "layers", self.stage_layer_counts(st)),
                ]
        return tuple(out)

    @property
    def choices(self) -> tuple[Choice, ...]:
        return self._choices  # type: ignore[attr-defined]

    def choice_index(self, name: str) -> int:
        for i, c in enumerate(self.choices):
            if c.name == name:
                return i
        raise KeyError(f"space {self.name} has no choice point {name!r}")

    @property
    def size(self) -> int:
        """Number of distinct index vectors (architectures) in the space."""
        return math.prod(len(c) for c in self.choices)

    # ------------------------------------------------------------------ slots
    def slots(self) -> tuple[Slot, ...]:
        return self._slots  # type: ignore[attr-defined]

    def _make_slots(self) -> tuple[Slot, ...]:
        slots: list[Slot] = []
        h = w = self.resolution
        stem_c = make_divisible(self.stem_channels * self.width_mult)
        stem_in = (h, w, self.in_channels)
        slots.append(_fixed("stem", LayerInfo("stem", Stem(3), stem_in, stem_c, self.stem_stride)))
        h, w = conv_out(h, self.stem_stride), conv_out(w, self.stem_stride)
        prev_width: int | None = None  # choice index of the previous stage's width
        for st in self.stages:
            width = self.choice_index(f"{st.name}.width")
            for j in range(
                max(self.stage_layer_counts(st)) if self.family == "mnasnet" else st.layers
            ):
                stride = st.stride if j == 0 else 1
                hw = (h, w) if j == 0 else (conv_out(h, st.stride), conv_out(w, st.stride))
                slots.append(self._layer_slot(st, j, hw, stride, width, prev_width, stem_c))
            h, w = conv_out(h, st.stride), conv_out(w, st.stride)
            prev_width = width
        last = (prev_width,)
        head_c = make_divisible(self.head_channels * self.width_mult)
        slots.append(
            Slot(
                "head", last, lambda v, h=h, w=w: LayerInfo("head", Head(), (h, w, v[0]), head_c, 1)
            )
        )
        slots.append(_fixed("pool", LayerInfo("pool", Pool(), (h, w, head_c), head_c, 1)))
        slots.append(_fixed("fc", LayerInfo("fc", FC(), (1, 1, head_c), self.num_classes, 1)))
        return tuple(slots)

    def _layer_slot(
        self,
        st: Stage,
        j: int,
        hw: tuple[int, int],
        stride: int,
        width: int,
        prev_width: int | None,
        stem_c: int,
    ) -> Slot:
        name = f"{st.name}.l{j}"
        first = j == 0
        # deps: [prev width (first layer only, when there is one)], own width, micro choices
        in_dep = (prev_width,) if first and prev_width is not None else ()
        if self.family == "fbnet":
            micro = (self.choice_index(f"{name}.op"),)
        else:
            micro = tuple(
                self.choice_index(f"{st.name}.{k}")
                for k in ("op", "kernel", "se", "skip", "layers")
            )
        deps = in_dep + (width,) + micro

        def resolve(values: tuple) -> LayerInfo | None:
            vals = list(values)
            cin = vals.pop(0) if in_dep else (stem_c if first else None)
            cout = vals.pop(0)
            cin = cout if cin is None else cin
            if self.family == "fbnet":
                spec = parse_key(vals[0])
            else:
                op, kernel, se, skip, layers = vals
                if j >= layers:
                    return None
                spec = _mnas_spec(
                    op, kernel, se, skip == "identity" and stride == 1 and cin == cout
                )
            return LayerInfo(name, spec, (hw[0], hw[1], cin), cout, stride)

        return Slot(name, deps, resolve)

    # ------------------------------------------------------------------ walker
    def values(self, arch: "Sequence[int] | object") -> tuple:
        """Option values of an architecture (an ``Arch`` or a list of indices)."""
        idx = _indices(arch)
        self.check(idx)
        return tuple(c.options[i] for c, i in zip(self.choices, idx))

    def layers(self, arch) -> list[LayerInfo]:
        """The one walker: ``LayerInfo`` for each layer of ``arch`` in network order."""
        vals = self.values(arch)
        out = []
        for slot in self.slots():
            info = slot.resolve(tuple(vals[d] for d in slot.deps))
            if info is not None:
                out.append(info)
        return out

    def check(self, idx: Sequence[int]) -> None:
        if len(idx) != len(self.choices):
            raise ValueError(
                f"architecture has {len(idx)} choices; space {self.name} has {len(self.choices)}"
            )
        for c, i in zip(self.choices, idx):
            if not 0 <= i < len(c):
                raise ValueError(f"choice {c.name}={i} is out of range 0..{len(c) - 1}")

    def encode(self, values: dict) -> list[int]:
        """Index vector from option values by choice name (all names required)."""
        missing = [c.name for c in self.choices if c.name not in values]
        if missing:
            raise ValueError(f"values missing for {', '.join(missing)}")
        return [c.index(values[c.name]) for c in self.choices]

    def all_keys(self) -> list[LatencyKey]:
        """Every distinct latency-table key any architecture of the space can need."""
        keys: dict[LatencyKey, None] = {}
        for info in self.all_layer_infos():
            keys.setdefault(info.key, None)
        return list(keys)

    def all_layer_infos(self) -> list[LayerInfo]:
        """One LayerInfo per distinct key, over all slots and all their dependency values."""
        import itertools

        seen: dict[LatencyKey, LayerInfo] = {}
        for slot in self.slots():
            for combo in itertools.product(*(self.choices[d].options for d in slot.deps)):
                info = slot.resolve(combo)
                if info is not None:
                    seen.setdefault(info.key, info)
        return list(seen.values())


def _fixed(name: str, info: LayerInfo) -> Slot:
    return Slot(name, (), lambda v, info=info: info)


def _mnas_spec(op: str, kernel: int, se: float, residual: bool) -> MnasBlock:
    if op.startswith("mbconv_e"):
        return MnasBlock("mbconv", kernel, int(op[len("mbconv_e") :]), se, residual)
    return MnasBlock(op, kernel, 1, se, residual)


def _indices(arch) -> list[int]:
    return list(getattr(arch, "choices", arch))
