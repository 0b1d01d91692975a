"""A search's latency table and space: the named table checked against the space, or the
newest matching one, or (when there is none) a fresh host profile; and the target checked
against the table."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hwnas.device_profiler.runner import profile_host
from hwnas.latency import LatencyTable, sidecar_path
from hwnas.space import SearchSpace, get_space

from .base import SearchError

logger = logging.getLogger(__name__)


def make_space(space_name: str, **overrides) -> SearchSpace:
    """The named space with ``overrides`` (None values keep defaults); bad names → SearchError."""
    try:
        return get_space(space_name, **overrides)
    except (KeyError, TypeError) as e:
        raise SearchError(e.args[0] if e.args else str(e)) from None


def _sidecar_matches(csv_path: Path, space: SearchSpace) -> bool:
    try:
        meta = json.loads(sidecar_path(csv_path).read_text())
        s = meta["space"]
        return (s["name"], s.get("version"), s.get("params", {})) == (
            space.name,
            space.version,
            dict(space.params),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def find_table(space: SearchSpace, tables_dir: str | Path = "latency_tables") -> Path | None:
    """The newest ``*.csv`` in ``tables_dir`` whose sidecar names exactly this space."""
    d = Path(tables_dir)
    if not d.is_dir():
        return None
    found = [p for p in d.glob("*.csv") if _sidecar_matches(p, space)]
    return max(found, key=lambda p: (p.stat().st_mtime, p.name)) if found else None


def resolve_table(
    space_name: str,
    table_path: str | Path | None = None,
    tables_dir: str | Path = "latency_tables",
    **space_overrides,
) -> tuple[LatencyTable, SearchSpace]:
    """The latency table and space for a search.

    An explicit ``table_path`` is loaded and checked against the space; otherwise the newest
    matching table in ``tables_dir``; when there is none, the host is profiled first (ONNX
    Runtime backend, ``host-ort``), saying so on stderr, and the new table is used.
    """
    space = make_space(space_name, **space_overrides)
    if table_path is not None:
        table = LatencyTable.load(table_path)
        table.check_space(space)
        _say_fidelity(table)
        return table, space
    found = find_table(space, tables_dir)
    if found is None:
        out = Path(tables_dir) / f"host-ort_{space.name}_r{space.resolution}.csv"
        logger.info(
            f"no latency table for {space.name} (resolution {space.resolution}) in "
            f"{tables_dir}/: profiling this host with host-ort into {out} first"
        )
        found = profile_host(space, out)
    table = LatencyTable.load(found)
    table.check_space(space)
    _say_fidelity(table)
    return table, space


def table_and_space(
    cfg, table: LatencyTable | None = None, space: SearchSpace | None = None
) -> tuple[LatencyTable, SearchSpace]:
    """A search's (table, space): the ones passed in, checked against each other, or
    ``resolve_table`` from the config's ``space``, ``table``, ``tables_dir`` and
    ``resolution``."""
    if table is not None and space is not None:
        table.check_space(space)
        return table, space
    return resolve_table(cfg.space, cfg.table, cfg.tables_dir, resolution=cfg.resolution)


def _say_fidelity(table: LatencyTable) -> None:
    note = table.fidelity_note()
    if note:
        logger.info(note)


def check_target(table: LatencyTable, space: SearchSpace, target_ms: float) -> tuple[float, float]:
    """Refuse a target below the space's fastest architecture; return the (min, max) ms."""
    lo, hi = table.bounds(space)
    if not target_ms > 0:
        raise SearchError(f"--target-ms must be positive (got {target_ms:g})")
    if target_ms < lo:
        raise SearchError(
            f"target {target_ms:g} ms is below the fastest architecture of "
            f"{space.name} on this table ({lo:.3f} ms); use --target-ms >= "
            f"{lo:.3f}"
        )
    return lo, hi


__all__ = ["make_space", "find_table", "resolve_table", "table_and_space", "check_target"]
