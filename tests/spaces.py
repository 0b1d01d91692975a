"""The one tiny-space factory the tests share: two stages at 8 px, small enough to profile."""

from hwnas.space.space import SearchSpace, Stage


def tiny_space(name: str, *, depths: tuple[int, int] = (2, 2), **overrides) -> SearchSpace:
    """A two-stage fbnet-family space (8 → 16 channels, second stage stride 2).

    `name` keeps each test's table and cache apart; `overrides` replace any field.
    """
    fields = dict(
        name=name,
        family="fbnet",
        resolution=8,
        num_classes=3,
        stem_channels=8,
        stem_stride=1,
        stages=(Stage("s1", 8, depths[0], 1), Stage("s2", 16, depths[1], 2)),
        head_channels=32,
        ops=("ir_k3_e1", "ir_k3_e3", "skip"),
        params={"tiny": 1},
    )
    fields.update(overrides)
    return SearchSpace(**fields)
