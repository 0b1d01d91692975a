"""``LatencyTable``: lookup, calibrated prediction, the differentiable expectation, exact
bounds and the budget repair over one table (its files: :mod:`hwnas.latency.files`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from hwnas.io import read_json
from hwnas.space import Arch, LatencyKey, SearchSpace, get_space
from hwnas.space.dp import best_under_budget, extreme
from hwnas.space.space import conv_out

from .files import (
    IDENTITY_CALIBRATION,
    KEY_COLUMNS,
    SCHEMA_VERSION,
    TableError,
    read_csv,
    rows_frame,
    sidecar_path,
    space_meta,
    validate_frame,
    validate_meta,
    write_table_atomic,
)

FIDELITY_GOAL = 0.9  # share of held-out networks within ±10% below which a table warns


@dataclass
class LatencyTable:
    frame: pd.DataFrame
    meta: dict
    path: Path | None = None
    _ms: dict = field(init=False, repr=False)
    _slot_cache: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self):
        validate_frame(self.frame, self.path)
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
        meta = read_json(side, TableError)
        validate_meta(meta, side)
        return cls(read_csv(p), meta, p)

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
        factor = cal["per_type"].get(key_type(key), 1.0)
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


def key_type(key: LatencyKey) -> str:
    """A layer key's op type, the calibration's per-type unit (``ir_k3_e6`` → ``ir``)."""
    return key[0].split("_")[0]


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
