"""LatencyTable: per-block latencies of one space on one device/backend — load, save,
lookup, predict, differentiable expectation, exact bounds and the budget repair.

Files (never pickle): ``NAME.csv`` with one row per key (columns ``TABLE_COLUMNS``,
latencies in microseconds as measured) and ``NAME.json`` beside it::

    {"schema": 1,
     "space": {"name": "fbnet-small", "version": 1, "params": {...}},
     "provenance": {"device": "host" | phone model, "backend": ..., ...},
     "calibration": {"scale": 1.0, "offset_ms": 0.0, "per_type": {"ir": 1.0, ...}}}

The API speaks **milliseconds**: ``lookup``, ``predict``, ``expected``, ``bounds``.
Prediction is calibrated: ``predict = Σ_layers (scale · per_type[prefix] · median +
per_layer + per_element · elements) + offset`` where the last two terms are added for every
measured (non-identity) layer — the cost of a standalone block model's edges (the invoke, the
quantize of its input and dequantize of its output, layout changes: ``elements`` is the
layer's input plus output tensor size) that a whole network pays once.  ``hwnas profile``
measures the edge terms (``edge_calibration``), ``hwnas tables validate`` fits on whole
networks.  Every term is per layer, so bounds and the budget DP stay exact under calibration.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, atomic_write_text
from hwnas.space import Arch, LatencyKey, SearchSpace, get_space
from hwnas.space.dp import best_under_budget, extreme
from hwnas.space.space import conv_out

SCHEMA_VERSION = 1
FIDELITY_GOAL = 0.9  # share of held-out networks within ±10% below which a table warns
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


@dataclass
class LatencyTable:
    frame: pd.DataFrame
    meta: dict
    path: Path | None = None
    _ms: dict = field(init=False, repr=False)
    _slot_cache: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self):
        _validate_frame(self.frame, self.path)
        self._ms = {
            (r.block, int(r.H), int(r.W), int(r.Cin), int(r.Cout), int(r.stride)): float(
                r.median_us
            )
            / 1000.0
            for r in self.frame.itertuples(index=False)
        }

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, csv_path: str | Path) -> "LatencyTable":
        """Read a table and its sidecar, checking every field: a bad one is one
        :class:`TableError` naming the file, line and column."""
        p = Path(csv_path)
        if p.is_dir():
            raise TableError(f"{p} is a directory, not a latency table CSV")
        if not p.exists():
            raise TableError(f"{p}: no such latency table (make one with `hwnas profile`)")
        side = sidecar_path(p)
        if side == p:
            raise TableError(f"{p}: a latency table is a .csv file (with a .json sidecar)")
        if not side.exists():
            raise TableError(f"{p}: its JSON sidecar {side.name} is missing")
        try:
            meta = json.loads(side.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TableError(f"{side}: not valid JSON ({e})") from None
        _validate_meta(meta, side)
        return cls(_read_csv(p), meta, p)

    def save(self, csv_path: str | Path | None = None) -> Path:
        p = Path(csv_path or self.path)
        write_table_atomic(p, self.frame, self.meta)
        self.path = p
        return p

    # ------------------------------------------------------------------ identity
    @property
    def calibration(self) -> dict:
        return {**IDENTITY_CALIBRATION, **self.meta.get("calibration", {})}

    def with_calibration(self, calibration: dict) -> "LatencyTable":
        meta = {**self.meta, "calibration": {**IDENTITY_CALIBRATION, **calibration}}
        return LatencyTable(self.frame.copy(), meta, self.path)

    @property
    def provenance(self) -> dict:
        return self.meta.get("provenance", {})

    @property
    def fidelity(self) -> dict | None:
        """Held-out figures of the last ``hwnas tables validate`` (None: never validated)."""
        return self.meta.get("validation")

    def fidelity_note(self) -> str | None:
        """One line for a table that predicts whole networks badly or was never checked."""
        v = self.fidelity
        name = self.path.name if self.path else "this table"
        if v is None:
            return (
                f"note: {name} has not been checked against whole networks; `hwnas tables "
                f"validate {self.path or 'TABLE'}` measures how well it predicts them"
            )
        if v.get("within_10pct", 0.0) < FIDELITY_GOAL:
            return (
                f"warning: {name} predicts only {100 * v['within_10pct']:.0f}% of "
                f"{v['held_out']} held-out networks within ±10% (MAPE "
                f"{v['mape_pct']:.1f}%): its latencies are rough"
            )
        return None

    def space(self, **overrides) -> SearchSpace:
        """The space this table was profiled for."""
        s = self.meta["space"]
        try:
            return get_space(s["name"], **{**s.get("params", {}), **overrides})
        except KeyError as e:
            raise TableError(f"{self.path}: {e.args[0]}") from None

    def check_space(self, space: SearchSpace) -> None:
        s = self.meta["space"]
        theirs = (s["name"], s.get("version"), s.get("params", {}))
        ours = (space.name, space.version, dict(space.params))
        if theirs != ours:
            raise TableError(
                f"table {self.path} was profiled for space {_describe(*theirs)}, "
                f"not {_describe(*ours)}; profile this space with `hwnas profile`"
            )

    # ------------------------------------------------------------------ lookup
    def __contains__(self, key: LatencyKey) -> bool:
        return tuple(key) in self._ms

    def keys(self) -> list[LatencyKey]:
        return list(self._ms)

    def lookup(self, key: LatencyKey) -> float:
        """Uncalibrated median latency of one key, in ms."""
        try:
            return self._ms[tuple(key)]
        except KeyError:
            raise self._missing([key]) from None

    def layer_ms(self, key: LatencyKey) -> float:
        """A layer's calibrated latency: scale · per-type factor · median, plus the
        per-layer term for measured layers (identity rows stay 0)."""
        cal = self.calibration
        median = self.lookup(key)
        if median == 0.0:
            return 0.0
        factor = cal["per_type"].get(key[0].split("_")[0], 1.0)
        return (
            cal["scale"] * factor * median
            + cal["per_layer_ms"]
            + cal["per_element_ms"] * key_elements(key)
        )

    def _keys(self, arch, space: SearchSpace | None) -> list[LatencyKey]:
        """The arch's layer keys, all present in the table (else one error listing the gaps)."""
        space = space or _arch_space(arch, self)
        keys = [i.key for i in space.layers(arch)]
        missing = [k for k in keys if k not in self]
        if missing:
            raise self._missing(missing, space)
        return keys

    def raw_sum(self, arch, space: SearchSpace | None = None) -> float:
        """Uncalibrated Σ of the arch's layer medians, in ms."""
        return sum(self.lookup(k) for k in self._keys(arch, space))

    def predict(self, arch, space: SearchSpace | None = None) -> float:
        """Calibrated predicted latency of an architecture, in ms."""
        return self._affine(sum(self.layer_ms(k) for k in self._keys(arch, space)))

    def _affine(self, total):
        return total + self.calibration["offset_ms"]

    # ------------------------------------------------------------------ slots
    def slot_costs(self, space: SearchSpace) -> list[np.ndarray]:
        """Per slot, the (per-type calibrated) latency in ms for every value of its deps."""
        cache_key = (
            space.name,
            space.version,
            tuple(sorted(space.params.items())),
            json.dumps(self.calibration, sort_keys=True),
        )
        if cache_key in self._slot_cache:
            return self._slot_cache[cache_key]
        import itertools

        costs, missing = [], []
        for slot in space.slots():
            dims = [len(space.choices[d]) for d in slot.deps]
            arr = np.zeros(dims if dims else ())
            for idx in itertools.product(*(range(n) for n in dims)):
                info = slot.resolve(
                    tuple(space.choices[d].options[i] for d, i in zip(slot.deps, idx))
                )
                if info is None:
                    continue
                if info.key not in self:
                    missing.append(info.key)
                    continue
                arr[idx] = self.layer_ms(info.key)
            costs.append(arr)
        if missing:
            raise self._missing(list(dict.fromkeys(missing)), space)
        self._slot_cache[cache_key] = costs
        return costs

    def expected(self, probs, space: SearchSpace | None = None):
        """Differentiable expected latency (ms, torch scalar) under independent choice
        distributions: ``probs[i]`` is a 1-D tensor over the options of choice point i.
        E[LAT] = Σ_slots Σ_values Π p(dep=value) · LAT(slot, value) + offset, with LAT the
        calibrated layer latency."""
        import torch

        space = space or self.space()
        total = probs[0].new_zeros(())
        for slot, arr in zip(space.slots(), self.slot_costs(space)):
            t = torch.as_tensor(arr, dtype=probs[0].dtype, device=probs[0].device)
            for d in slot.deps:  # contract the leading axis with that choice's probabilities
                t = torch.tensordot(probs[d], t, dims=([0], [0]))
            total = total + t
        return self._affine(total)

    def bounds(self, space: SearchSpace | None = None) -> tuple[float, float]:
        """Exact minimum and maximum predicted latency (ms) over the space."""
        space = space or self.space()
        costs = self.slot_costs(space)
        lo, _ = extreme(space, costs, "min")
        hi, _ = extreme(space, costs, "max")
        return self._affine(lo), self._affine(hi)

    def fastest(self, space: SearchSpace | None = None) -> Arch:
        space = space or self.space()
        _, choices = extreme(space, self.slot_costs(space), "min")
        return Arch.of(space, choices, "fastest")

    def best_under(
        self,
        space: SearchSpace,
        scores: Sequence[Sequence[float]],
        target_ms: float,
        bins: int = 2000,
    ) -> Arch:
        """The architecture maximising Σ_i scores[i][choice_i] with predicted latency ≤ target.

        Exact up to rounding each slot's cost *up* to budget/bins, so the result is always
        within target; when the rounding leaves nothing, the fastest architecture (if it
        fits) is returned.  A target below the space's minimum is an error that states it.
        """
        lo, _ = self.bounds(space)
        if target_ms < lo:
            raise TableError(
                f"target {target_ms:g} ms is below the fastest architecture of "
                f"{space.name} on this table ({lo:.3f} ms)"
            )
        budget = target_ms - self.calibration["offset_ms"]
        found = best_under_budget(space, self.slot_costs(space), scores, budget, bins)
        arch = Arch.of(space, found[1]) if found else self.fastest(space)
        assert self.predict(arch, space) <= target_ms + 1e-9
        return arch

    def repair(self, space: SearchSpace, arch, target_ms: float, scores=None) -> Arch:
        """``arch`` if it meets the target, else the closest architecture that does:
        with ``scores`` (e.g. log-probabilities) the highest-scoring one, otherwise the one
        keeping the most of ``arch``'s choices."""
        arch = arch if isinstance(arch, Arch) else Arch.of(space, arch)
        if self.predict(arch, space) <= target_ms:
            return arch
        if scores is None:
            scores = [
                [1.0 if o == c else 0.0 for o in range(len(ch))]
                for ch, c in zip(space.choices, arch.choices)
            ]
        return self.best_under(space, scores, target_ms)

    # ------------------------------------------------------------------ errors
    def _missing(self, keys, space: SearchSpace | None = None) -> TableError:
        shown = ", ".join("/".join(map(str, k)) for k in keys[:5])
        more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
        sp = space.name if space else self.meta["space"]["name"]
        res = f" --resolution {space.resolution}" if space else ""
        return TableError(
            f"latency table {self.path} lacks {len(keys)} key(s): {shown}{more}; "
            f"fill it with `hwnas profile --space {sp}{res} --out {self.path} --resume`"
        )


def key_elements(key: LatencyKey) -> int:
    """Input plus output tensor elements of a layer key (global pooling outputs 1x1)."""
    block, h, w, cin, cout, stride = key[:6]
    ho, wo = (1, 1) if block == "pool" else (conv_out(h, stride), conv_out(w, stride))
    return int(h) * int(w) * int(cin) + ho * wo * int(cout)


def _arch_space(arch, table: LatencyTable) -> SearchSpace:
    return arch.get_space() if isinstance(arch, Arch) else table.space()


def _describe(name, version, params) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{name} v{version} ({extra})"


INT_COLUMNS = ["H", "W", "Cin", "Cout", "stride", "runs", "repeats"]
FLOAT_COLUMNS = STAT_COLUMNS[:5]
BOOL_VALUES = {"True": True, "False": False, "true": True, "false": False, "1": True, "0": False}


def _read_csv(p: Path) -> pd.DataFrame:
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


def _validate_meta(meta, side: Path) -> None:
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
        if not _is_number(v):
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
        if k in cal and not _is_number(cal[k]):
            field_error(f"calibration.{k}", cal[k], "a finite number")
    if not isinstance(cal.get("per_type", {}), dict):
        field_error("calibration.per_type", cal.get("per_type"), "an object")
    for k, v in cal.get("per_type", {}).items():
        if not _is_number(v):
            field_error(f"calibration.per_type.{k}", v, "a finite number")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _validate_frame(df: pd.DataFrame, path) -> None:
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


def synthetic_table(
    space: SearchSpace, per_mac_us: float = 0.001, per_layer_us: float = 5.0, seed: int = 0
) -> LatencyTable:
    """A table whose latencies follow MACs (for tests and dry runs; provenance says so)."""
    from hwnas.space import layer_complexity

    rng = np.random.default_rng(seed)
    rows = []
    for info in space.all_layer_infos():
        macs = layer_complexity(info).macs
        identity = info.spec.key() == "skip" and info.stride == 1 and info.cin == info.cout
        us = 0.0 if identity else per_layer_us + per_mac_us * macs * float(rng.uniform(0.9, 1.1))
        key = dict(zip(KEY_COLUMNS, info.key))
        rows.append(
            {
                **key,
                "median_us": us,
                "p10_us": us,
                "p90_us": us,
                "mean_us": us,
                "std_us": 0.0,
                "runs": 0,
                "repeats": 0,
                "analytic": True,
            }
        )
    meta = {
        "schema": SCHEMA_VERSION,
        "space": space_meta(space),
        "provenance": {"device": "synthetic", "backend": "macs-model"},
        "calibration": IDENTITY_CALIBRATION,
    }
    return LatencyTable(rows_frame(rows), meta)


__all__ = [
    "LatencyTable",
    "TableError",
    "check_sidecar_ours",
    "TABLE_COLUMNS",
    "KEY_COLUMNS",
    "STAT_COLUMNS",
    "SCHEMA_VERSION",
    "write_table_atomic",
    "rows_frame",
    "sidecar_path",
    "space_meta",
    "synthetic_table",
    "key_elements",
]
