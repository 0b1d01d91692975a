"""``Arch``: one architecture of a space — choice indices + the space's identity — as JSON."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.errors import HwnasError

from .catalog import get_space, reference_values
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
            raise ArchError(f"architecture of unknown space {self.space!r}: {_msg(e)}") from None
        if space.version != self.version:
            raise ArchError(f"architecture is for {self.space} version {self.version}; "
                            f"this hwnas has version {space.version}")
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
        try:
            return cls(d["space"], tuple(d["choices"]), int(d.get("version", 1)),
                       dict(d.get("space_args", {})), d.get("name", ""))
        except (KeyError, TypeError, ValueError) as e:
            raise ArchError(f"not an architecture: missing or bad field {_msg(e)}") from None

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
        try:
            d = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ArchError(f"{p}: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise ArchError(f"{p}: not an architecture (expected a JSON object)")
        arch = cls.from_dict(d.get("arch", d))
        arch.get_space()  # validates
        return arch


def reference_arch(space: SearchSpace, name: str, width: float = 1.0) -> Arch:
    return Arch.of(space, space.encode(reference_values(space, name, width)), name)


def random_arch(space: SearchSpace, seed: int | None = None, rng: random.Random | None = None) -> Arch:
    rng = rng or random.Random(seed)
    return Arch.of(space, [rng.randrange(len(c)) for c in space.choices], f"random-{seed}")


def _msg(e: Exception) -> str:
    return e.args[0] if e.args else str(e)
