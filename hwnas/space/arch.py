"""``Arch``: one architecture of a space — choice indices + the space's identity — as JSON."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.errors import HwnasError
from hwnas.io import read_json

from .catalog import SPACES, get_space, reference_values
from .space import SearchSpace

ARCH_SCHEMA = 1


class ArchError(HwnasError, ValueError):
    """An architecture file or value that does not fit."""


@dataclass(frozen=True)
class Arch:
    space: str
    choices: tuple[int, ...]
    version: int = 1
    space_args: dict = field(default_factory=dict, compare=False, hash=False)
    name: str = field(default="", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "choices", tuple(int(c) for c in self.choices))

    # ----------------------------------------------------------------- space
    def get_space(self) -> SearchSpace:
        try:
            space = get_space(self.space, **self.space_args)
        except (KeyError, TypeError) as e:
            what = "unknown space" if self.space not in SPACES else "bad space"
            raise ArchError(f"architecture of {what} {self.space!r}: {_msg(e)}") from None
        if space.version != self.version:
            raise ArchError(
                f"architecture is for {self.space} version {self.version}; "
                f"this hwnas has version {space.version}"
            )
        try:
            space.check(self.choices)
        except ValueError as e:
            raise ArchError(f"architecture does not fit space {self.space}: {e}") from None
        return space

    @classmethod
    def of(cls, space: SearchSpace, choices, name: str = "") -> "Arch":
        space.check(list(choices))
        return cls(space.name, tuple(choices), space.version, dict(space.params), name)

    # ----------------------------------------------------------------- JSON
    def to_dict(self, space: SearchSpace | None = None) -> dict:
        space = space or self.get_space()
        return {
            "schema": ARCH_SCHEMA,
            "space": self.space,
            "version": self.version,
            "space_args": self.space_args,
            "name": self.name,
            "choices": list(self.choices),
            "values": {c.name: v for c, v in zip(space.choices, space.values(self.choices))},
        }

    def to_json(self, **extra) -> str:
        return json.dumps({**self.to_dict(), **extra}, indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "Arch":
        """Strict: integer choices, a known schema, plain fields of the right types."""
        if not isinstance(d, dict):
            raise ArchError("not an architecture (expected a JSON object)")
        if d.get("schema", ARCH_SCHEMA) != ARCH_SCHEMA:
            raise ArchError(
                f"unknown architecture schema {d.get('schema')!r} (this hwnas "
                f"reads schema {ARCH_SCHEMA})"
            )
        for key in ("space", "choices"):
            if key not in d:
                raise ArchError(f"not an architecture: missing field {key!r}")
        choices, version = d["choices"], d.get("version", 1)
        rules = [
            (isinstance(d["space"], str), "'space' must be a space name"),
            (
                isinstance(choices, list) and all(_is_int(c) for c in choices),
                f"'choices' must be a list of integer option indices (got {choices!r:.80})",
            ),
            (_is_int(version), f"'version' must be an integer (got {version!r})"),
            (isinstance(d.get("space_args", {}), dict), "'space_args' must be an object"),
            (isinstance(d.get("name", ""), str), "'name' must be a string"),
        ]
        for ok, message in rules:
            if not ok:
                raise ArchError(f"not an architecture: {message}")
        return cls(
            d["space"], tuple(choices), version, dict(d.get("space_args", {})), d.get("name", "")
        )

    def save(self, path: str | Path, **extra) -> None:
        from hwnas.io import atomic_write_text

        atomic_write_text(path, self.to_json(**extra) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Arch":
        p = Path(path)
        if p.is_dir():
            p = p / "arch.json"
        if not p.exists():
            raise ArchError(f"{path}: no such architecture file")
        d = read_json(p, ArchError)
        if not isinstance(d, dict):
            raise ArchError(f"{p}: not an architecture (expected a JSON object)")
        doc = d.get("arch", d)
        try:
            arch = cls.from_dict(doc)
            space = arch.get_space()  # validates
        except ArchError as e:
            raise ArchError(f"{p}: {e}") from None
        values = doc.get("values") if isinstance(doc, dict) else None
        if values is not None:
            ours = {c.name: v for c, v in zip(space.choices, space.values(arch.choices))}
            if not isinstance(values, dict):
                raise ArchError(f"{p}: 'values' must be an object of choice name -> value")
            wrong = [k for k, v in values.items() if k not in ours or not _same(v, ours[k])]
            if wrong:
                k = wrong[0]
                raise ArchError(
                    f"{p}: 'values' contradict 'choices' at {k!r} ({values[k]!r} "
                    f"vs {ours.get(k, 'no such choice point')!r}); fix or remove "
                    f"'values'"
                )
        return arch


def choices_key(choices) -> str:
    """Choice indices as one short string, ``"0-3-1"``: a cache and log key."""
    return "-".join(str(int(c)) for c in choices)


def key_choices(key: str) -> list[int]:
    """The choice indices of a :func:`choices_key` string."""
    return [int(c) for c in key.split("-")]


def reference_arch(space: SearchSpace, name: str, width: float = 1.0) -> Arch:
    return Arch.of(space, space.encode(reference_values(space, name, width)), name)


def random_arch(
    space: SearchSpace, seed: int | None = None, rng: random.Random | None = None
) -> Arch:
    rng = rng or random.Random(seed)
    return Arch.of(space, [rng.randrange(len(c)) for c in space.choices], f"random-{seed}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _same(saved, ours) -> bool:
    """A saved value equals the space's (JSON turns tuples into lists)."""
    return saved == json.loads(json.dumps(ours))


def _msg(e: Exception) -> str:
    return e.args[0] if e.args else str(e)
