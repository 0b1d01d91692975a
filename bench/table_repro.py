"""Benchmark: do two fresh tables of the same space on the same machine agree?

Profiles ``--space`` on ``--backend`` twice, one after the other, each into a new table (the
converted block models are cached: this times, it does not convert), then compares what the
two predict: the reference network, ``--networks`` seeded random networks, and the per-block
medians.  Prints the figures and writes bench/results/table_repro.json (one row per backend
and ruler setting).  Goal (issue "latency you can trust"): the reference within 5%, the
median block ratio within 5%.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import add_merge_option, write_rows

from hwnas.device_profiler.runner import ProfileConfig, profile_run
from hwnas.latency import LatencyTable
from hwnas.space import get_space, random_arch, reference_arch, reference_names

RESULTS = Path(__file__).parent / "results" / "table_repro.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="fbnet-small")
    ap.add_argument("--backend", default="host-ort")
    ap.add_argument("--networks", type=int, default=50)
    ap.add_argument("--no-ruler", action="store_true", help="time the raw clock")
    add_merge_option(ap)
    args = ap.parse_args(argv)
    space = get_space(args.space)
    ref = reference_arch(space, reference_names(space)[0])
    rng = random.Random(0)
    nets = [random_arch(space, rng=rng) for _ in range(args.networks)]
    tables, seconds, loads = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(2):
            out = Path(tmp) / f"t{i}.csv"
            loads.append(round(os.getloadavg()[0], 2))
            t0 = time.perf_counter()
            profile_run(
                ProfileConfig(
                    device="host",
                    backend=args.backend,
                    space=args.space,
                    out=out,
                    progress=False,
                    ruler=not args.no_ruler,
                ),
                log=lambda m: None,
            )
            seconds.append(round(time.perf_counter() - t0))
            tables.append(LatencyTable.load(out))
    a, b = tables
    keys = [k for k in a.keys() if k in b and a.lookup(k) > 0 and b.lookup(k) > 0]  # noqa: SIM118
    blocks = [b.lookup(k) / a.lookup(k) for k in keys]
    ratios = np.array([b.predict(n, space) / a.predict(n, space) for n in nets])
    row = {
        "space": args.space,
        "backend": args.backend,
        "timing": "raw" if args.no_ruler else "ruler",
        "reference_ms": [round(t.predict(ref, space), 4) for t in tables],
        "reference_ratio": round(b.predict(ref, space) / a.predict(ref, space), 4),
        "block_median_ratio": round(float(np.median(blocks)), 4),
        "block_ratio_p10_p90": [round(float(np.percentile(blocks, q)), 3) for q in (10, 90)],
        "networks": args.networks,
        "network_ratio_median": round(float(np.median(ratios)), 4),
        "network_ratio_p10_p90": [round(float(np.percentile(ratios, q)), 3) for q in (10, 90)],
        "networks_within_5pct": round(float(np.mean(np.abs(ratios - 1) <= 0.05)), 3),
        "ruler_unit_us": [t.provenance.get("ruler", {}).get("unit_us") for t in tables],
        "calibration": [t.calibration.get("model") for t in tables],
        "edges_a_b": [
            [round(t.meta["edges"]["a_us"], 2), round(t.meta["edges"]["b_us_per_element"], 5)]
            for t in tables
            if "edges" in t.meta
        ],
        "profile_s": seconds,
        "load_avg_1m": loads,
    }
    print(
        f"{args.space} {args.backend} {row['timing']}: reference {row['reference_ms'][0]:.4f} → "
        f"{row['reference_ms'][1]:.4f} ms (×{row['reference_ratio']:.3f}); median block "
        f"×{row['block_median_ratio']:.3f}; {args.networks} random networks ×"
        f"{row['network_ratio_median']:.3f} (p10–p90 {row['network_ratio_p10_p90']}), "
        f"{100 * row['networks_within_5pct']:.0f}% within 5%; profiles {seconds} s, load {loads}"
    )
    write_rows(RESULTS, [row], ("space", "backend", "timing"), args.merge)
    return 0


if __name__ == "__main__":
    sys.exit(main())
