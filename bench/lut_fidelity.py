"""LUT fidelity: Σ of block latencies vs measured whole networks, before/after calibration.

Per (space, backend): the space's reference nets plus N seeded random ones; only the table
keys those networks need are profiled (same runner, same cache); then `validate` measures
every network end to end on the same backend and settings, fits the calibration on half
and reports the held-out half.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from _results import add_merge_option, write_rows

from hwnas.logs import show_on_stderr
from hwnas.device_profiler.runner import ProfileConfig, profile_run
from hwnas.device_profiler.validate import ValidateConfig, sample_archs, validate
from hwnas.space import get_space

RESULTS = Path(__file__).parent / "results" / "lut_fidelity.json"
KEEP = ("n", "mape_pct", "rmse_ms", "within_5pct", "within_10pct", "kendall_tau", "mean_error_pct")


def one(
    space_name: str,
    backend: str,
    samples: int,
    seed: int,
    cache: Path,
    runs: int,
    repeats: int,
    workdir: Path,
    fit: int = 20,
    ruler: bool = True,
    min_seconds: float | None = None,
) -> dict:
    space = get_space(space_name)
    archs = sample_archs(space, samples, seed)
    keys = {info.key for a in archs for info in space.layers(a)}
    out = workdir / f"{backend}_{space_name}.csv"
    load = os.getloadavg()[0]  # the box is shared: timings scale with what else runs
    t0 = time.perf_counter()
    r = profile_run(
        ProfileConfig(
            device="host",
            backend=backend,
            space=space_name,
            out=out,
            warmup=10,
            runs=runs,
            repeats=repeats,
            cache_dir=cache,
            keys=tuple(keys),
            progress=False,
            ruler=ruler,
            min_seconds=min_seconds,
        ),
        log=lambda m: None,
    )
    t_prof = time.perf_counter() - t0
    t0 = time.perf_counter()
    tail = "" if ruler else "_raw"
    plot = RESULTS.parent / f"lut_fidelity_{space_name}_{backend}{tail}.png"
    n_nets = len(archs)
    rep = validate(
        ValidateConfig(
            table=out,
            samples=samples,
            seed=seed,
            cache_dir=cache,
            plot=plot,
            progress=False,
            fit_fraction=min(0.5, fit / n_nets),
        ),
        log=lambda m: None,
    )
    t_val = time.perf_counter() - t0
    pick = {
        k: {m: round(v, 4) if isinstance(v, float) else v for m, v in rep[k].items() if m in KEEP}
        for k in (
            "all_raw",
            "held_out_raw",
            "held_out_edges",
            "held_out_calibrated",
            "all_calibrated_in_sample",
        )
        if k in rep
    }
    nets = sorted(x["measured_ms"] for x in rep["records"])
    meta = json.loads(out.with_suffix(".json").read_text())
    by_model = held_out_by_model(rep["records"], meta, space)
    return {
        "space": space_name,
        "backend": backend,
        "networks": rep["networks"],
        "random": samples,
        "fit": rep["fit_networks"],
        "held_out": rep["held_out_networks"],
        "timing": "ruler" if ruler else "raw",
        "min_seconds": meta["profile"]["min_seconds"],
        "ruler_unit_us": (r.ruler or {}).get("unit_us"),
        "table_keys": len(keys),
        "blocks_measured": r.measured,
        "profile_s": round(t_prof),
        "validate_s": round(t_val),
        "measured_ms_range": [round(nets[0], 3), round(nets[-1], 3)],
        **pick,
        "calibration": rep["calibration"],
        "held_out_fitted_model": rep["split_calibration"]["model"],  # chosen on the fit set
        "fit_set_loo_mape_pct": rep["split_calibration"].get("loo_mape_pct"),
        "held_out_by_model": by_model,
        "plot": str(plot),
        "load_avg_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def held_out_by_model(records: list[dict], meta: dict, space) -> dict:
    """Every calibration model fitted on the fit set, scored on the held-out networks: what
    each choice of model would have given (the one `validate` chose is among them)."""
    from hwnas.device_profiler.calibration import FITS, apply_calibration, fit_edges, metrics

    fit = [r for r in records if not r["held_out"]]
    hold = [r for r in records if r["held_out"]]
    models = [*(fit_edges(meta["edges"], space) if "edges" in meta else ()), *FITS]
    out = {}
    for name, f in models:
        cal = f([r["sums_ms"] for r in fit], [r["measured_ms"] for r in fit])
        if cal is not None:
            pred = [apply_calibration(cal, r["sums_ms"]) for r in hold]
            m = metrics(pred, [r["measured_ms"] for r in hold])
            out[name] = {k: round(m[k], 4) for k in ("within_10pct", "within_5pct", "mape_pct")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--plan",
        default="fbnet-small:host-ort:50,mnasnet-small:host-ort:30,fbnet-small:host-litert:8",
        help="comma list of space:backend:random-samples",
    )
    ap.add_argument(
        "--fit",
        type=int,
        default=20,
        help="networks the calibration is fitted on (at most half; the rest are held out)",
    )
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--no-ruler",
        action="store_true",
        help="time without the ruler (raw wall clock, as before the ruler existed)",
    )
    ap.add_argument("--cache", type=Path, default=None, help="model cache (default: temp)")
    ap.add_argument(
        "--min-seconds",
        type=float,
        default=None,
        help="each block's repeat times at least this long (hwnas profile's --min-seconds; "
        "default: the backend's)",
    )
    add_merge_option(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp) / "cache"
        for item in args.plan.split(","):
            space, backend, n = item.split(":")
            rows.append(
                one(
                    space,
                    backend,
                    int(n),
                    args.seed,
                    cache,
                    args.runs,
                    args.repeats,
                    Path(tmp),
                    args.fit,
                    not args.no_ruler,
                    args.min_seconds,
                )
            )
            r = rows[-1]
            print(
                f"{space:>14} {backend:<12} {r['timing']:<5} nets {r['networks']:>3} "
                f"(held out {r['held_out']:>2}), load {r['load_avg_1m']}",
                flush=True,
            )
            for label, k in (
                ("raw Σ blocks", "held_out_raw"),
                ("measured edges", "held_out_edges"),
                (f"calibrated [{r['calibration']['model']}]", "held_out_calibrated"),
            ):
                if k in r:
                    m = r[k]
                    print(
                        f"    {label:<32} MAPE {m['mape_pct']:5.1f}%  ±10% "
                        f"{100 * m['within_10pct']:3.0f}%  ±5% {100 * m['within_5pct']:3.0f}%"
                        f"  τ {m['kendall_tau']:.3f}",
                        flush=True,
                    )
    write_rows(RESULTS, rows, ("space", "backend", "timing", "min_seconds"), args.merge)


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    main()
