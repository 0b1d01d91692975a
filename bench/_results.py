"""What the row-per-plan-item benchmarks share: merging with stored rows and writing results."""

from __future__ import annotations

import json
from pathlib import Path


def add_merge_option(ap) -> None:
    """``--merge``: keep the stored rows of plan items this run does not run (`write_rows`)."""
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the stored rows of plan items not run this time (replace only those that were)",
    )


def merge_rows(path: Path, new: list[dict], key: tuple[str, ...]) -> list[dict]:
    """The rows stored at `path` with those of this run's plan items replaced (stored first)."""
    try:
        old = json.loads(path.read_text())["rows"]
    except (OSError, ValueError, KeyError):
        return new
    fresh = {tuple(r.get(k) for k in key): r for r in new}
    out = [fresh.pop(tuple(r.get(k) for k in key), r) for r in old]
    return out + list(fresh.values())


def write_rows(
    path: Path, rows: list[dict], key: tuple[str, ...], merge: bool, **extra: object
) -> None:
    """Write `{"host_cpu", **extra, "rows"}` to `path`, keeping stored rows when `merge`."""
    from hwnas.device_profiler.backends import host_cpu

    path.parent.mkdir(parents=True, exist_ok=True)
    if merge:
        rows = merge_rows(path, rows, key)
    path.write_text(json.dumps({"host_cpu": host_cpu(), **extra, "rows": rows}, indent=2) + "\n")
    print(f"wrote {path}")
