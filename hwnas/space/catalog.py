"""The spaces hwnas ships, as data, and the reference architectures inside them.

| space          | input | stem        | stage strides        | widths      | classes |
|----------------|-------|-------------|----------------------|-------------|---------|
| fbnet          | 224   | 3x3/16, s2  | 1,2,2,2,1,2,1        | paper (x1)  | 1000    |
| fbnet-small    | 32    | 3x3/8,  s1  | 1,2,2,2,1,1,1        | paper x0.5  | 10      |
| mnasnet        | 224   | 3x3/32, s2  | 1,2,2,2,1,2,1 (MNv2) | MNv2 (x1)   | 1000    |
| mnasnet-small  | 32    | 3x3/16, s1  | 1,2,2,2,1,1,1        | MNv2 x0.5   | 10      |

The small variants keep every stage, layer and choice; they drop the stem stride and
stage 6's stride (32 px → 4x4 before the head instead of 224 → 7x7) and halve widths so a
2-core CPU can train them.  Widths (and the head) are rounded to multiples of 8.
"""

from __future__ import annotations

import math

from .blocks import FBNET_OPS
from .space import SearchSpace, Stage

FBNET_STAGES = (
    (16, 1, 1),
    (24, 4, 2),
    (32, 4, 2),
    (64, 4, 2),
    (112, 4, 1),
    (184, 4, 2),
    (352, 1, 1),
)
MNV2_BLOCKS = ((16, 1, 1), (24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1))
SMALL_STRIDES = (1, 2, 2, 2, 1, 1, 1)


def _stages(prefix: str, table, strides=None) -> tuple[Stage, ...]:
    strides = strides or [s for _, _, s in table]
    return tuple(
        Stage(f"{prefix}{i + 1}", c, n, s) for i, ((c, n, _), s) in enumerate(zip(table, strides))
    )


def fbnet(resolution: int = 224, num_classes: int = 1000, width_mult: float = 1.0) -> SearchSpace:
    """FBNet's TBS space (22 layers x 9 candidates) plus a per-stage width choice."""
    return SearchSpace(
        name="fbnet",
        family="fbnet",
        resolution=resolution,
        num_classes=num_classes,
        stem_channels=16,
        stem_stride=2,
        stages=_stages("s", FBNET_STAGES),
        head_channels=1984,
        ops=FBNET_OPS,
        width_mult=width_mult,
        description="FBNet TBS space: 22 layers x 9 candidates, per-stage width x{0.75,1,1.25}",
        params=dict(resolution=resolution, num_classes=num_classes, width_mult=width_mult),
    )


def fbnet_small(
    resolution: int = 32, num_classes: int = 10, width_mult: float = 0.5
) -> SearchSpace:
    return SearchSpace(
        name="fbnet-small",
        family="fbnet",
        resolution=resolution,
        num_classes=num_classes,
        stem_channels=16,
        stem_stride=1,
        stages=_stages("s", FBNET_STAGES, SMALL_STRIDES),
        head_channels=1984,
        ops=FBNET_OPS,
        width_mult=width_mult,
        description="fbnet for 28-32 px input: stem and stage-6 stride 1, widths x0.5",
        params=dict(resolution=resolution, num_classes=num_classes, width_mult=width_mult),
    )


def mnasnet(resolution: int = 224, num_classes: int = 1000, width_mult: float = 1.0) -> SearchSpace:
    """MnasNet's factorized hierarchical space on MobileNetV2's 7-block skeleton."""
    return SearchSpace(
        name="mnasnet",
        family="mnasnet",
        resolution=resolution,
        num_classes=num_classes,
        stem_channels=32,
        stem_stride=2,
        stages=_stages("b", MNV2_BLOCKS),
        head_channels=1280,
        width_mult=width_mult,
        description="MnasNet factorized hierarchical space: 7 blocks x (op, kernel, SE, skip, "
        "width, layers)",
        params=dict(resolution=resolution, num_classes=num_classes, width_mult=width_mult),
    )


def mnasnet_small(
    resolution: int = 32, num_classes: int = 10, width_mult: float = 0.5
) -> SearchSpace:
    return SearchSpace(
        name="mnasnet-small",
        family="mnasnet",
        resolution=resolution,
        num_classes=num_classes,
        stem_channels=32,
        stem_stride=1,
        stages=_stages("b", MNV2_BLOCKS, SMALL_STRIDES),
        head_channels=1280,
        width_mult=width_mult,
        description="mnasnet for 28-32 px input: stem and block-6 stride 1, widths x0.5",
        params=dict(resolution=resolution, num_classes=num_classes, width_mult=width_mult),
    )


SPACES = {
    "fbnet": fbnet,
    "fbnet-small": fbnet_small,
    "mnasnet": mnasnet,
    "mnasnet-small": mnasnet_small,
}


def get_space(name: str, **overrides) -> SearchSpace:
    """A space by name; ``overrides`` (resolution, num_classes, width_mult) that are None
    keep the space's defaults."""
    try:
        factory = SPACES[name]
    except KeyError:
        raise KeyError(f"unknown space {name!r}; choose one of {', '.join(SPACES)}") from None
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - {"resolution", "num_classes", "width_mult"})
    if unknown:
        raise KeyError(f"space {name}: unknown parameter(s) {', '.join(unknown)}")
    for key, low in (("resolution", 8), ("num_classes", 2)):
        v = given.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < low):
            raise KeyError(f"space {name}: {key} must be an integer of at least {low} (got {v!r})")
    w = given.get("width_mult")
    if w is not None and not (
        isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and 0 < w <= 10
    ):
        raise KeyError(f"space {name}: width_mult must be a number in (0, 10] (got {w!r})")
    return factory(**given)


# --------------------------------------------------------------------------- references
# FBNet reference nets: published per-layer choices (L1..L22) from DESIGN.md, widths x1.0.
_FBNET_REFS = {
    "fbnet-a": "skip | k3_e3 k3_e1 skip skip | k5_e6 k3_e3 k5_e1 k3_e3 | k5_e6 k5_e3 k5_e1_g2 k5_e6 | "
    "k3_e6 k5_e1_g2 k5_e3 k3_e1_g2 | k5_e6 k5_e6 k5_e3 k5_e6 | k5_e6",
    "fbnet-b": "k3_e1 | k3_e6 k5_e1 k3_e1 k3_e1 | k5_e6 k5_e3 k3_e6 k5_e6 | k5_e6 k5_e6 skip k5_e3 | "
    "k5_e6 k3_e1 k5_e1 k5_e3 | k5_e6 k5_e1 k5_e6 k5_e6 | k3_e6",
    "fbnet-c": "k3_e1 | k3_e6 skip k3_e1 k3_e1 | k5_e6 k5_e3 k5_e6 k3_e6 | k5_e6 k5_e3 k5_e6 k5_e6 | "
    "k5_e6 k5_e6 k5_e6 k5_e3 | k5_e6 k5_e6 k5_e6 k5_e6 | k3_e6",
    # MobileNetV2-like: its t=1 first block, k3_e6 elsewhere, skips where MNv2 has fewer
    # layers per stage (1,2,3,4,3,3,1) than FBNet (1,4,4,4,4,4,1).
    "mobilenetv2": "k3_e1 | k3_e6 k3_e6 skip skip | k3_e6 k3_e6 k3_e6 skip | k3_e6 k3_e6 k3_e6 k3_e6 | "
    "k3_e6 k3_e6 k3_e6 skip | k3_e6 k3_e6 k3_e6 skip | k3_e6",
}

# MnasNet references, per block: (op, kernel, se, skip, width multiplier, layers delta).
_MNAS_REFS = {
    "mobilenetv2": [("dwconv", 3, 0.0, "identity", 1.0, 0)]
    + [("mbconv_e6", 3, 0.0, "identity", 1.0, 0)] * 6,
    # MnasNet-A1 (Tan et al. 2019, Fig. 7); block 5 has 120 ch here (96 x 1.25) vs 112.
    "mnasnet-a1": [
        ("dwconv", 3, 0.0, "identity", 1.0, 0),
        ("mbconv_e6", 3, 0.0, "identity", 1.0, 0),
        ("mbconv_e3", 5, 0.25, "identity", 1.25, 0),
        ("mbconv_e6", 3, 0.0, "identity", 1.25, 0),
        ("mbconv_e6", 3, 0.25, "identity", 1.25, -1),
        ("mbconv_e6", 5, 0.25, "identity", 1.0, 0),
        ("mbconv_e6", 3, 0.0, "identity", 1.0, 0),
    ],
    # MnasNet-B1 (no SE); block 6 has 200 ch here (160 x 1.25) vs 192.
    "mnasnet-b1": [
        ("dwconv", 3, 0.0, "identity", 1.0, 0),
        ("mbconv_e3", 3, 0.0, "identity", 1.0, 1),
        ("mbconv_e3", 5, 0.0, "identity", 1.25, 0),
        ("mbconv_e6", 5, 0.0, "identity", 1.25, -1),
        ("mbconv_e6", 3, 0.0, "identity", 1.0, -1),
        ("mbconv_e6", 5, 0.0, "identity", 1.25, 1),
        ("mbconv_e6", 3, 0.0, "identity", 1.0, 0),
    ],
}

REFERENCES = {
    "fbnet": ("mobilenetv2", "fbnet-a", "fbnet-b", "fbnet-c"),
    "mnasnet": ("mobilenetv2", "mnasnet-a1", "mnasnet-b1"),
}


def reference_names(space: SearchSpace) -> tuple[str, ...]:
    return REFERENCES[space.family]


def reference_values(space: SearchSpace, name: str, width: float = 1.0) -> dict:
    """Option values (by choice name) of a reference architecture in ``space``."""
    if name not in REFERENCES[space.family]:
        raise KeyError(
            f"unknown reference {name!r} for space {space.name}; choose one of "
            f"{', '.join(REFERENCES[space.family])}"
        )
    values: dict = {}
    if space.family == "fbnet":
        ops = [t if t == "skip" else f"ir_{t}" for t in _FBNET_REFS[name].replace("|", " ").split()]
        it = iter(ops)
        for st in space.stages:
            values[f"{st.name}.width"] = _width(space, st, width)
            for j in range(st.layers):
                values[f"{st.name}.l{j}.op"] = next(it)
    else:
        for st, (op, k, se, skip, mult, dl) in zip(space.stages, _MNAS_REFS[name]):
            values.update(
                {
                    f"{st.name}.op": op,
                    f"{st.name}.kernel": k,
                    f"{st.name}.se": se,
                    f"{st.name}.skip": skip,
                    f"{st.name}.width": _width(space, st, mult),
                    f"{st.name}.layers": max(1, st.layers + dl),
                }
            )
    return values


def _width(space: SearchSpace, stage: Stage, mult: float) -> int:
    """The stage width option nearest to ``mult`` x the stage's base width."""
    target = stage.channels * space.width_mult * mult
    return min(space.stage_widths(stage), key=lambda c: (abs(c - target), c))
