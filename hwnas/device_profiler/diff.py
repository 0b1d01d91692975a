"""`hwnas tables diff A.csv B.csv`: how two latency tables of one space differ.

Per block the ratio B/A of the two medians, over the rows both tables have and both
measured (identity rows are 0 µs in both and say nothing); overall its median and spread,
per op type (the block name: ``ir_k3_e6``, ``skip``, ``stem``, ``head``, ``pool``, ``fc``)
its median and range; the MobileNetV2-like reference network as each table predicts it
(calibrated, and the raw Σ of its blocks); and the provenance fields that differ — the
backend, the runtime's version, threads, pinned cores, the block-model recipe, the
calibration — since those, not the machine's mood, are the first suspects when two tables
disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwnas.errors import HwnasError

REFERENCE = "mobilenetv2"

# (label, path into the sidecar) of the fields a diff compares
FIELDS = (
    ("device", ("provenance", "device")),
    ("host cpu", ("provenance", "host_cpu")),
    ("host cores", ("provenance", "host_cores")),
    ("backend", ("provenance", "backend")),
    ("runtime", ("provenance", "runtime")),
    ("runtime version", ("provenance", "runtime_version")),
    ("precision", ("provenance", "precision")),
    ("threads", ("provenance", "threads")),
    ("cores", ("provenance", "cores")),
    ("ruler", ("provenance", "ruler")),
    ("model format", ("provenance", "model_format")),
    ("recipe", ("profile", "recipe")),
    ("hwnas version", ("profile", "hwnas_version")),
    ("tools", ("profile", "tools")),
    ("warmup", ("profile", "warmup")),
    ("runs", ("profile", "runs")),
    ("repeats", ("profile", "repeats")),
    ("min seconds", ("profile", "min_seconds")),
    ("seed", ("profile", "seed")),
    ("passes", ("passes", "passes")),
    ("edges", ("edges", None)),
    ("calibration", ("calibration", None)),
    ("validation", ("validation", None)),
)


def _get(meta: dict, path: tuple) -> object:
    top, key = path
    v = meta.get(top)
    if key is None:
        if isinstance(v, dict) and top == "edges":  # the fit, not its points
            return {k: x for k, x in v.items() if k in ("a_us", "b_us_per_element")}
        return v
    v = v.get(key) if isinstance(v, dict) else None
    if key == "ruler" and isinstance(v, dict):  # its network and unit, not its windows
        return {k: x for k, x in v.items() if k in ("network", "unit_us")}
    return v


def _spread(r: np.ndarray) -> dict:
    return {
        "n": int(r.size),
        "median": float(np.median(r)),
        "p10": float(np.percentile(r, 10)),
        "p90": float(np.percentile(r, 90)),
        "min": float(r.min()),
        "max": float(r.max()),
    }


def _same_space(a, b) -> None:
    sa, sb = a.meta["space"], b.meta["space"]
    ta = (sa["name"], sa.get("version"), sa.get("params", {}))
    tb = (sb["name"], sb.get("version"), sb.get("params", {}))
    if ta != tb:

        def say(t):
            extra = ", ".join(f"{k}={v}" for k, v in sorted(t[2].items()))
            return f"{t[0]} v{t[1]} ({extra})"

        raise HwnasError(
            f"{b.path} holds a table of space {say(tb)}, {a.path} one of "
            f"{say(ta)}; diff compares two tables of the same space"
        )


def _reference(a, b) -> dict:
    """The reference network on each table: predicted (calibrated) and Σ of its blocks."""
    from hwnas.space import reference_arch

    try:
        space = a.space()
        arch = reference_arch(space, REFERENCE)
    except (HwnasError, KeyError, ValueError, IndexError, StopIteration) as e:
        return {"name": REFERENCE, "error": f"the space cannot express it ({_msg(e)})"}
    out: dict = {"name": REFERENCE}
    for side, tab in (("a", a), ("b", b)):
        try:
            out[f"{side}_ms"] = tab.predict(arch, space)
            out[f"{side}_raw_ms"] = tab.raw_sum(arch, space)
        except HwnasError as e:
            out["error"] = f"{tab.path.name if tab.path else side}: {_msg(e)}"
            return out
    out["ratio"] = out["b_ms"] / out["a_ms"] if out["a_ms"] > 0 else None
    out["raw_ratio"] = out["b_raw_ms"] / out["a_raw_ms"] if out["a_raw_ms"] > 0 else None
    return out


def _msg(e: Exception) -> str:
    return str(e.args[0]) if e.args else type(e).__name__


def diff_tables(a, b) -> dict:
    """The figures of ``hwnas tables diff`` for two loaded :class:`LatencyTable` of the same
    space (a table of another space is a :class:`HwnasError`)."""
    _same_space(a, b)
    ka, kb = (
        {tuple(k): t.lookup(k) for k in keys}  # key → median (ms)
        for t, keys in ((a, a.keys()), (b, b.keys()))
    )
    both = [k for k in ka if k in kb]
    measured = [k for k in both if ka[k] > 0 and kb[k] > 0]
    ratio = {k: kb[k] / ka[k] for k in measured}
    by_type: dict[str, list[float]] = {}
    for k in measured:
        by_type.setdefault(k[0], []).append(ratio[k])
    per_type = {t: _spread(np.array(v)) for t, v in sorted(by_type.items())}
    fields = []
    for label, path in FIELDS:
        va, vb = _get(a.meta, path), _get(b.meta, path)
        if va != vb:
            fields.append({"field": label, "a": va, "b": vb})
    overall = _spread(np.array(list(ratio.values()))) if ratio else {"n": 0}
    return {
        "a": str(a.path),
        "b": str(b.path),
        "space": a.meta["space"],
        "dates": {"a": a.provenance.get("date"), "b": b.provenance.get("date")},
        "rows": {
            "a": len(ka),
            "b": len(kb),
            "both": len(both),
            "measured_in_both": len(measured),
            "identity_in_both": sum(1 for k in both if ka[k] == 0 and kb[k] == 0),
            "zero_in_one": len(both)
            - len(measured)
            - sum(1 for k in both if ka[k] == 0 and kb[k] == 0),
            "only_a": len(ka) - len(both),
            "only_b": len(kb) - len(both),
        },
        "only_a": ["/".join(map(str, k)) for k in ka if k not in kb],
        "only_b": ["/".join(map(str, k)) for k in kb if k not in ka],
        "ratio": overall,
        "reference": _reference(a, b),
        "per_type": per_type,
        "provenance_differs": fields,
    }


def differing(va, vb) -> tuple:
    """Two values as a diff shows them: of two objects only the keys whose values differ."""
    if isinstance(va, dict) and isinstance(vb, dict):
        keys = [k for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)]
        return {k: va.get(k) for k in keys}, {k: vb.get(k) for k in keys}
    return va, vb


def short(v, width: int = 100) -> str:
    """A provenance value on one cell."""
    if v is None:
        return "—"
    v = _rounded(v)
    text = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)
    return text if len(text) <= width else text[: width - 1] + "…"


def _rounded(v):
    """Floats to 4 significant digits, inside objects and lists too."""
    if isinstance(v, float):
        return float(f"{v:.4g}")
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    return v


def load_pair(path_a: Path, path_b: Path):
    from hwnas.latency import LatencyTable

    return LatencyTable.load(path_a), LatencyTable.load(path_b)


__all__ = ["diff_tables", "load_pair", "short", "differing", "REFERENCE"]
