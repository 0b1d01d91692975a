"""What a table's sidecar says about how it was profiled (``profile_run`` writes it): the
provenance of the backend and preset, the profile settings, and what a resumed table must
share with the run continuing it."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from hwnas.convert import tool_versions
from hwnas.errors import HwnasError
from hwnas.space import SearchSpace

from .backends import Backend
from .blockmodels import RECIPE_VERSION
from .presets import Preset


def existing(out: Path, space: SearchSpace, prov: dict) -> tuple[list[dict], dict]:
    """Rows and meta already in ``out`` (a resumed run); refuses a table of another setting."""
    from hwnas.latency import LatencyTable, space_meta

    if not out.exists():
        return [], {}
    table = LatencyTable.load(out)
    if table.meta["space"] != space_meta(space):
        raise HwnasError(
            f"{out} holds a table of another space ({table.meta['space']['name']} "
            f"{table.meta['space'].get('params')}); choose another --out"
        )
    theirs = table.provenance
    for k in ("backend", "precision", "threads"):
        if theirs.get(k) != prov.get(k):
            raise HwnasError(
                f"{out} was profiled with {k}={theirs.get(k)!r}, this run has "
                f"{prov.get(k)!r}; choose another --out to keep both"
            )
    if (
        prov.get("backend") != "adb"
        and theirs.get("cores") is not None
        and prov.get("cores") is not None
        and sorted(theirs["cores"]) != sorted(prov["cores"])
    ):
        from .cores import core_list

        raise HwnasError(
            f"{out} was profiled pinned to cores {core_list(theirs['cores'])}, "
            f"this run pins {core_list(prov['cores'])}; pass --cores "
            f"{core_list(theirs['cores'])} to continue it, or choose another "
            f"--out"
        )
    return table.frame.to_dict("records"), table.meta


def table_meta(cfg, space: SearchSpace, fmt: str, prov: dict, old_meta: dict) -> dict:
    """The sidecar of the table being written for ``cfg`` (a ``ProfileConfig``; what an
    earlier run stored carries over)."""
    from hwnas import __version__
    from hwnas.latency import space_meta

    meta = {
        "space": space_meta(space),
        "provenance": prov,
        "profile": {
            "warmup": cfg.warmup,
            "runs": cfg.runs,
            "repeats": cfg.repeats,
            "min_seconds": cfg.min_seconds,
            "seed": cfg.seed,
            "order": "seeded shuffle",
            "model_format": fmt,
            "resolution": space.resolution,
            "hwnas_version": __version__,
            "recipe": RECIPE_VERSION,
            "tools": tool_versions(),
        },
        "calibration": old_meta.get(
            "calibration", {"scale": 1.0, "offset_ms": 0.0, "per_type": {}}
        ),
    }
    for k in ("edges", "passes"):
        if k in old_meta:
            meta[k] = old_meta[k]
    return meta


def check_table_out(out: Path) -> None:
    """``--out`` is a table CSV whose sidecar name is free or a table sidecar (never a file
    hwnas did not write)."""
    from hwnas.io import OutputError
    from hwnas.latency import check_sidecar_ours

    if out.is_dir():
        raise OutputError(out, "it is a directory; --out takes a table CSV path")
    if out.suffix != ".csv":
        raise OutputError(
            out, "a latency table needs a .csv name (its sidecar is the .json beside it)"
        )
    check_sidecar_ours(out)


def provenance(backend: Backend, preset: Preset, note: str | None) -> dict:
    prov = dict(backend.provenance())
    if backend.name != "adb":
        prov["device"] = "host"  # never a phone, whatever the preset
    prov["preset"] = {
        k: v
        for k, v in preset.as_dict().items()
        if k in ("name", "model", "soc", "backend", "precision", "threads")
    }
    if note:
        prov["fallback"] = note
    return prov


def dynamic(backend: Backend) -> dict:
    """Provenance that changes while profiling (temperatures, cool-downs on a phone)."""
    if backend.name != "adb":
        return {}
    return {
        k: v
        for k, v in backend.provenance().items()
        if k in ("temperature_c", "cooldowns", "cooldown_wait_s", "cooldown_timeouts")
    }


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
