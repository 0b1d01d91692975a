"""Device presets: package data ``hwnas/devices/*.json`` plus the user's own preset files."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from hwnas.convert import check_precision
from hwnas.errors import HwnasError
from hwnas.io import read_json

USER_DIR_ENV = "HWNAS_DEVICES_DIR"
_FIELDS = (
    "name",
    "description",
    "model",
    "manufacturer",
    "soc",
    "backend",
    "precision",
    "threads",
    "cores",
    "notes",
)


@dataclass(frozen=True)
class Preset:
    """What phone a table is for and how to time on it."""

    name: str
    description: str = ""
    model: str = ""
    manufacturer: str = ""
    soc: str = ""
    backend: str = "adb"  # adb | host-ort | host-litert
    precision: str = "int8"
    threads: int = 1
    cores: str | None = None  # e.g. "2,3"; None: the big cores by max frequency
    notes: str = ""
    source: str = ""  # the file it came from

    def __post_init__(self):
        where = self.source or self.name
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise HwnasError(f"preset {where}: name {self.name!r} must be letters, digits, -_.")
        if self.backend not in ("adb", "host-ort", "host-litert"):
            raise HwnasError(
                f"preset {where}: backend {self.backend!r} is not one of adb, host-ort, host-litert"
            )
        check_precision(self.precision, f"preset {where}: precision")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise HwnasError(f"preset {where}: threads must be a positive integer")

    @property
    def is_phone(self) -> bool:
        return self.backend == "adb"

    def as_dict(self) -> dict:
        return asdict(self)


def user_dir() -> Path:
    env = os.environ.get(USER_DIR_ENV)
    return Path(env) if env else Path.home() / ".config" / "hwnas" / "devices"


def load_preset_file(path: str | Path) -> Preset:
    p = Path(path)
    try:
        data = read_json(p, HwnasError, "preset is ")
    except OSError as e:
        raise HwnasError(f"{p}: cannot read preset ({e.strerror})") from None
    return _from_dict(data, str(p))


def _from_dict(data, source: str) -> Preset:
    if not isinstance(data, dict) or "name" not in data:
        raise HwnasError(f"{source}: a preset is a JSON object with at least a 'name'")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise HwnasError(
            f"{source}: unknown preset field(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}"
        )
    cores = data.get("cores")
    if cores is not None and not isinstance(cores, str):
        cores = ",".join(map(str, cores)) if isinstance(cores, list) else str(cores)
    return Preset(**{**data, "cores": cores, "source": source})


def _builtin() -> list[Preset]:
    folder = resources.files("hwnas") / "devices"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            out.append(_from_dict(json.loads(entry.read_text()), f"hwnas/devices/{entry.name}"))
    return out


def list_presets() -> list[Preset]:
    """Built-in presets, then the user's (``~/.config/hwnas/devices/*.json``), which win on
    equal names."""
    found = {p.name: p for p in _builtin()}
    d = user_dir()
    if d.is_dir():
        for f in sorted(d.glob("*.json")):
            p = load_preset_file(f)
            found[p.name] = p
    return list(found.values())


def get_preset(name_or_path: str | Path) -> Preset:
    """A preset by name, or from a preset file path."""
    text = str(name_or_path)
    if text.endswith(".json") or os.sep in text:
        return load_preset_file(text)
    for p in list_presets():
        if p.name == text:
            return p
    names = ", ".join(p.name for p in list_presets())
    raise HwnasError(
        f"unknown device {text!r}; choose one of {names}, or pass a preset file "
        f"(JSON) or put one in {user_dir()}"
    )


load_preset = get_preset  # the name the profiler's brief uses


__all__ = ["Preset", "get_preset", "load_preset", "list_presets", "load_preset_file", "user_dir"]
