"""A latency table's files: ``NAME.csv`` (one row per key, ``TABLE_COLUMNS``) and its JSON
sidecar ``NAME.json``; writing them atomically, and reading them with every field checked
(a bad one is one :class:`TableError` naming the file, line and column)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, atomic_write_text
from hwnas.space import SearchSpace

SCHEMA_VERSION = 1
KEY_COLUMNS = ["block", "H", "W", "Cin", "Cout", "stride"]
STAT_COLUMNS = ["median_us", "p10_us", "p90_us", "mean_us", "std_us", "runs", "repeats"]
TABLE_COLUMNS = KEY_COLUMNS + STAT_COLUMNS + ["analytic"]
IDENTITY_CALIBRATION = {
    "scale": 1.0,
    "offset_ms": 0.0,
    "per_type": {},
    "per_layer_ms": 0.0,
    "per_element_ms": 0.0,
}


class TableError(HwnasError):
    """A latency table that is missing, malformed, or does not fit the space."""


def sidecar_path(csv_path: str | Path) -> Path:
    return Path(csv_path).with_suffix(".json")


def space_meta(space: SearchSpace) -> dict:
    return {"name": space.name, "version": space.version, "params": dict(space.params)}


def rows_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """A table frame with the canonical columns and order from row dicts."""
    df = pd.DataFrame(list(rows), columns=TABLE_COLUMNS)
    return df.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)


def write_table_atomic(
    csv_path: str | Path, rows: pd.DataFrame | Sequence[dict], meta: dict
) -> None:
    """Write CSV and JSON sidecar, each atomically (the profiler calls this after each block)."""
    df = rows if isinstance(rows, pd.DataFrame) else rows_frame(rows)
    meta = {"schema": SCHEMA_VERSION, "calibration": IDENTITY_CALIBRATION, **meta}
    check_sidecar_ours(csv_path)
    atomic_write_json(sidecar_path(csv_path), meta)
    atomic_write_text(csv_path, df[TABLE_COLUMNS].to_csv(index=False))


def check_sidecar_ours(csv_path: str | Path) -> None:
    """Refuse to write a table whose sidecar name holds a file hwnas did not write: the
    sidecar is only ever replaced when it carries a table sidecar's schema marker."""
    csv_path = Path(csv_path)
    side = sidecar_path(csv_path)
    if side == csv_path:
        raise TableError(
            f"{csv_path}: a latency table needs a .csv name (its sidecar is the .json beside it)"
        )
    if not os.path.lexists(side):
        return
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError):
        meta = None
    if not (
        isinstance(meta, dict)
        and meta.get("schema") == SCHEMA_VERSION
        and isinstance(meta.get("space"), dict)
    ):
        raise TableError(
            f"{side} exists and is not a latency table sidecar written by hwnas; "
            f"not overwriting it (move it away or choose another --out)"
        )


INT_COLUMNS = ["H", "W", "Cin", "Cout", "stride", "runs", "repeats"]
FLOAT_COLUMNS = STAT_COLUMNS[:5]
BOOL_VALUES = {"True": True, "False": False, "true": True, "false": False, "1": True, "0": False}


def read_csv(p: Path) -> pd.DataFrame:
    """The table CSV with every value checked (a torn or edited field is caught here)."""
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise TableError(f"{p}: not a readable CSV ({' '.join(str(e).split())})") from None
    missing = [c for c in TABLE_COLUMNS if c not in raw.columns]
    if missing:
        raise TableError(f"{p}: missing column(s) {', '.join(missing)}")
    df = raw[TABLE_COLUMNS].copy()

    def bad(col: str, mask, why: str):
        i = int(np.flatnonzero(np.asarray(mask))[0])
        value = raw[col].iloc[i]
        raise TableError(f"{p}: line {i + 2}, column {col}: {value!r} {why}")

    empty = df["block"].str.strip() == ""
    if empty.any():
        bad("block", empty, "is not a block name")
    for col in INT_COLUMNS + FLOAT_COLUMNS:
        num = pd.to_numeric(df[col].str.strip().replace("", "nan"), errors="coerce")
        if num.isna().any():
            bad(col, num.isna(), "is not a number")
        if not np.isfinite(num).all():
            bad(col, ~np.isfinite(num), "is not a finite number")
        if (num < 0).any():
            bad(col, num < 0, "is negative")
        if col in INT_COLUMNS:
            if (num != np.round(num)).any():
                bad(col, num != np.round(num), "is not an integer")
            num = num.astype(np.int64)
        df[col] = num
    flags = df["analytic"].str.strip().map(BOOL_VALUES)
    if flags.isna().any():
        bad("analytic", flags.isna(), "is not True or False")
    df["analytic"] = flags.astype(bool)
    return df


def validate_meta(meta, side: Path) -> None:
    """Every sidecar field hwnas reads has the right type (one line naming the field)."""
    if not isinstance(meta, dict):
        raise TableError(f"{side}: not a latency table sidecar (expected a JSON object)")
    if meta.get("schema") != SCHEMA_VERSION:
        raise TableError(
            f"{side}: unknown schema version {meta.get('schema')!r} "
            f"(this hwnas reads version {SCHEMA_VERSION})"
        )
    space = meta.get("space")
    if not isinstance(space, dict) or not isinstance(space.get("name"), str):
        raise TableError(f"{side}: no 'space' entry: which space was profiled is unknown")

    def field_error(name: str, value, want: str):
        raise TableError(f"{side}: field {name} is {json.dumps(value)[:60]}, not {want}")

    if not isinstance(space.get("params", {}), dict):
        field_error("space.params", space.get("params"), "an object")
    for k, v in space.get("params", {}).items():
        if not is_number(v):
            field_error(f"space.params.{k}", v, "a number")
    if "version" in space and not (
        isinstance(space["version"], int) and not isinstance(space["version"], bool)
    ):
        field_error("space.version", space["version"], "an integer")
    for key in ("provenance", "calibration", "profile", "edges", "validation", "passes"):
        if key in meta and not isinstance(meta[key], dict):
            field_error(key, meta[key], "an object")
    cal = meta.get("calibration", {})
    for k in ("scale", "offset_ms", "per_layer_ms", "per_element_ms"):
        if k in cal and not is_number(cal[k]):
            field_error(f"calibration.{k}", cal[k], "a finite number")
    if not isinstance(cal.get("per_type", {}), dict):
        field_error("calibration.per_type", cal.get("per_type"), "an object")
    for k, v in cal.get("per_type", {}).items():
        if not is_number(v):
            field_error(f"calibration.per_type.{k}", v, "a finite number")


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def validate_frame(df: pd.DataFrame, path) -> None:
    where = path or "latency table"
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise TableError(f"{where}: missing column(s) {', '.join(missing)}")
    num = df[STAT_COLUMNS[:5]]
    if num.isna().any().any():
        bad = df.loc[num.isna().any(axis=1), "block"].iloc[0]
        raise TableError(f"{where}: NaN latency in row of block {bad}")
    if (num < 0).any().any():
        bad = df.loc[(num < 0).any(axis=1), "block"].iloc[0]
        raise TableError(f"{where}: negative latency in row of block {bad}")
    if df.duplicated(KEY_COLUMNS).any():
        raise TableError(f"{where}: duplicate rows for the same key")
