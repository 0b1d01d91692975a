"""An export's inputs: the architecture and its search result (``Source``), the output
folder (checked before any work), the latency table and backend, and the data."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.errors import HwnasError

from .config import ExportConfig, say

if TYPE_CHECKING:
    from hwnas.search.base import SearchResult


@dataclass(frozen=True)
class Source:
    """The architecture and what the search recorded about it (``result``: the typed
    ``arch.json``; only ``arch`` is set for a bare architecture file)."""

    arch: object
    space: object
    result: SearchResult
    arch_file: Path
    run_dir: Path | None


def load_source(path: Path) -> Source:
    """The architecture of a run directory or JSON file, with its search result."""
    from hwnas.search.base import SearchResult
    from hwnas.space import Arch

    path = Path(path)
    if path.is_dir():
        arch_file = path / "arch.json"
        if not arch_file.is_file():
            raise HwnasError(
                f"{path}: no arch.json in this run directory (pass a search run "
                "directory or an ARCH.json)"
            )
        run_dir = path
    elif path.is_file():
        arch_file, run_dir = path, None
    else:
        raise HwnasError(f"{path}: no such run directory or architecture file")
    arch = Arch.load(arch_file)
    space = arch.get_space()
    record = json.loads(arch_file.read_text())
    result = SearchResult.from_record(record if isinstance(record, dict) else {}, arch)
    return Source(arch, space, result, arch_file, run_dir)


def default_out(src: Source) -> Path:
    return (src.run_dir if src.run_dir is not None else src.arch_file.parent) / "export"


EXPORT_MARKERS = ("summary.json", "model.json")  # an earlier export, safe to replace


def check_writable(out: Path, arch_file: Path | None = None) -> None:
    """Fail early (creating nothing) when ``out`` cannot be created, or must not be replaced:
    the export swaps the whole folder, so it refuses one holding anything but an earlier
    export (or its ``train/``) — never a search run directory."""
    if out.exists() and not out.is_dir():
        raise HwnasError(f"cannot write the export to {out}: it exists and is not a directory")
    if arch_file is not None and out.resolve() in Path(arch_file).resolve().parents:
        raise HwnasError(
            f"cannot write the export to {out}: it holds the architecture "
            f"{arch_file}; choose another --out"
        )
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        if names - {"train"} and not names & set(EXPORT_MARKERS):
            raise HwnasError(
                f"cannot write the export to {out}: it is a folder with other "
                "files, not an earlier export; choose another --out"
            )
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise HwnasError(f"cannot write the export to {out}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        read_only = os.statvfs(probe).f_flag & os.ST_RDONLY
        why = os.strerror(errno.EROFS) if read_only else "permission denied"
        raise HwnasError(f"cannot write the export to {out}: {probe} is not writable ({why})")


def load_table(cfg: ExportConfig, src: Source):
    """The latency table (explicit --table, else the one arch.json names) or None."""
    from hwnas.latency import LatencyTable

    if cfg.table is not None:
        table = LatencyTable.load(cfg.table)
        table.check_space(src.space)
        return table
    named = src.result.table
    if not named:
        return None
    for candidate in (Path(named), src.arch_file.parent / named):
        if candidate.is_file():
            table = LatencyTable.load(candidate)
            table.check_space(src.space)
            return table
    say(
        cfg,
        f"note: the table {named} named in {src.arch_file} is not found; using the "
        "recorded prediction and provenance",
    )
    return None


def choose_backend(cfg: ExportConfig, provenance: dict) -> str:
    """--backend, else the table's: the phone over adb when it came from one, else its host
    backend (host-litert when unknown)."""
    if cfg.backend is not None:
        from hwnas.device_profiler.backends import BACKENDS

        if cfg.backend not in BACKENDS:
            raise HwnasError(
                f"unknown backend {cfg.backend!r}; choose one of {', '.join(BACKENDS)}"
            )
        return cfg.backend
    device = provenance.get("device")
    if device and device != "host":
        return "adb"
    backend = provenance.get("backend")
    return backend if backend in ("host-ort", "host-litert") else "host-litert"


def load_data(cfg: ExportConfig, space):
    from hwnas.data import load_for_space

    try:
        splits = load_for_space(
            cfg.data, cfg.data_root, space, cfg.seed, cfg.subset, workers=cfg.workers
        )
    except HwnasError as e:
        raise HwnasError(f"no data for training and int8 calibration ({cfg.data}): {e}") from None
    if len(splits.classes) != space.num_classes:
        raise HwnasError(
            f"the architecture has {space.num_classes} classes, {cfg.data} has "
            f"{len(splits.classes)}"
        )
    return splits
