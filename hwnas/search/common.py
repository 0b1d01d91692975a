"""Shared by both searchers: their common config, finding the latency table, checking the
target, writing the results."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from hwnas.device_profiler.runner import profile_host
from hwnas.errors import HwnasError, check
from hwnas.io import atomic_write_json, atomic_write_text, check_resume
from hwnas.latency import LatencyTable, TableError, sidecar_path
from hwnas.space import Arch, SearchSpace, get_space

RESULT_SCHEMA = 1


class SearchError(HwnasError):
    """A search that cannot start or finish as asked (bad target, config, or resume)."""


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """What every searcher is given: target, output, table, data, space, budget, seed.

    Subclasses add their own fields (all with defaults) and their own `checks()`.
    """

    target_ms: float
    out: str
    table: str | None = None
    data: str = "fashion-mnist"
    data_root: str | None = None
    space: str = "fbnet-small"
    resolution: int | None = None  # None: the space's default
    subset: int | None = 2000  # training images used (before the 80/20 split); None: all
    batch_size: int = 64
    seed: int = 0
    resume: bool = False
    topk: int = 5
    tables_dir: str = "latency_tables"

    def checks(self) -> list[tuple[bool, str]]:
        return []

    def __post_init__(self):
        common = [
            (self.target_ms > 0, f"--target-ms must be positive (got {self.target_ms})"),
            (
                self.subset is None or self.subset >= 10,
                f"--subset must be at least 10 images (got {self.subset})",
            ),
            (self.batch_size >= 1, f"--batch-size must be at least 1 (got {self.batch_size})"),
            (self.topk >= 1, f"topk must be at least 1 (got {self.topk})"),
        ]
        check(common + self.checks(), SearchError)


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
        print(
            f"no latency table for {space.name} (resolution {space.resolution}) in "
            f"{tables_dir}/: profiling this host with host-ort into {out} first",
            file=sys.stderr,
        )
        found = profile_host(space, out)
    table = LatencyTable.load(found)
    table.check_space(space)
    _say_fidelity(table)
    return table, space


def _say_fidelity(table: LatencyTable) -> None:
    note = table.fidelity_note()
    if note:
        print(note, file=sys.stderr)


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


def provenance_summary(table: LatencyTable) -> dict:
    prov = table.provenance
    keep = (
        "device",
        "backend",
        "runtime",
        "runtime_version",
        "precision",
        "threads",
        "date",
        "host_cpu",
        "soc",
    )
    return {k: prov[k] for k in keep if k in prov}


def arch_record(space: SearchSpace, table: LatencyTable, arch: Arch, target_ms: float) -> dict:
    pred = table.predict(arch, space)
    return {
        **arch.to_dict(space),
        "predicted_ms": round(pred, 6),
        "target_ms": target_ms,
        "margin_ms": round(target_ms - pred, 6),
    }


def write_result(
    out_dir: str | Path,
    space: SearchSpace,
    table: LatencyTable,
    arch: Arch,
    target_ms: float,
    topk: Sequence[tuple[Arch, float]] = (),
    extra: dict | None = None,
) -> dict:
    """Write ``arch.json`` (winner + predicted latency, margin, table, provenance) and
    ``topk.json`` (``[(arch, score), ...]``, best first); returns the arch.json record."""
    out = Path(out_dir)
    rec = {
        **arch_record(space, table, arch, target_ms),
        "table": str(table.path) if table.path else None,
        "provenance": provenance_summary(table),
        "result_schema": RESULT_SCHEMA,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(extra or {}),
    }
    if rec["predicted_ms"] > target_ms + 1e-9:
        raise SearchError(
            f"internal: winner predicted {rec['predicted_ms']:.3f} ms exceeds "
            f"target {target_ms:g} ms"
        )
    atomic_write_json(out / "arch.json", rec)
    atomic_write_json(
        out / "topk.json",
        {
            "target_ms": target_ms,
            "table": rec["table"],
            "archs": [
                {**arch_record(space, table, a, target_ms), "score": float(s)} for a, s in topk
            ],
        },
    )
    return rec


def config_dict(config) -> dict:
    d = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def write_config(out_dir: str | Path, config) -> None:
    atomic_write_json(Path(out_dir) / "config.json", config_dict(config))


def prepare_out(cfg: SearchConfig, out: Path, ckpt: str) -> bool:
    """Check the output folder against ``--resume``; True when checkpoint ``ckpt`` is to be
    loaded.  Resuming with settings other than those in ``config.json`` is refused."""
    return check_resume(out, ckpt, config_dict(cfg), cfg.resume, "search", SearchError)


def write_summary(out_dir: str | Path, markdown: str) -> None:
    atomic_write_text(Path(out_dir) / "summary.md", markdown.rstrip() + "\n")


__all__ = [
    "SearchError",
    "SearchConfig",
    "TableError",
    "make_space",
    "find_table",
    "resolve_table",
    "check_target",
    "write_result",
    "write_config",
    "write_summary",
    "arch_record",
    "provenance_summary",
    "config_dict",
    "prepare_out",
]
