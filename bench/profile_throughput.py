"""Profiling throughput: blocks/min, conversion vs measurement split, CV across repeats.

Fresh model cache per run, so conversion is timed. Runs that profile only a sample of a
space's blocks report the full-table time as an *extrapolation* (labelled as such).
Backend ``adb-standin``: the phone path (`--device pixel1` over the ADB wire protocol) against
the stand-in phone on 127.0.0.1, which times the pushed files with LiteRT on this host, so its
measurement time is not a phone's; the conversion is the phone path's own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _results import add_merge_option, write_rows

from hwnas.logs import show_on_stderr
from hwnas.device_profiler.cores import default_jobs
from hwnas.device_profiler.runner import ProfileConfig, profile_run
from hwnas.space import get_space

RESULTS = Path(__file__).parent / "results" / "profile_throughput.json"


def one(
    space_name: str,
    resolution: int | None,
    backend: str,
    limit: int | None,
    runs: int,
    repeats: int,
    jobs: int | None = None,
) -> dict:
    space = get_space(space_name, resolution=resolution)
    total = len(space.all_keys())
    load = os.getloadavg()[0]  # the box is shared: figures scale with what else runs
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        phone = {"device": "host", "backend": backend}
        if backend == "adb-standin":
            from hwnas.testing.adb_standin import AdbStandin, PhoneConfig

            standin = stack.enter_context(AdbStandin(PhoneConfig(), idle_s=600, lifetime_s=3600))
            binary = Path(tmp) / "benchmark_model"  # the stand-in runs any file as the tool
            binary.write_bytes(b"\x7fELF stand-in\n")
            phone = {"device": "pixel1", "serial": standin.serial, "benchmark_binary": binary}
        cfg = ProfileConfig(
            **phone,
            space=space_name,
            resolution=resolution,
            out=Path(tmp) / "t.csv",
            warmup=10,
            runs=runs,
            repeats=repeats,
            cache_dir=Path(tmp) / "cache",
            limit=limit,
            progress=False,
            jobs=jobs,
        )
        t0 = time.perf_counter()
        r = profile_run(cfg, log=lambda m: None)
        wall = time.perf_counter() - t0
    done = r.measured + r.analytic
    per_min = 60.0 * done / wall if wall else float("nan")
    cvs = r.repeat_cvs
    return {
        "space": space_name,
        "resolution": space.resolution,
        "backend": backend,
        "keys_in_space": total,
        "blocks_done": done,
        "measured": r.measured,
        "identity": r.analytic,
        "wall_s": round(wall, 1),
        "conversion_s": round(r.conversion_s, 1),
        "measure_s": round(r.measure_s, 1),
        "conversion_s_per_block": round(r.conversion_s / max(r.measured, 1), 3),
        "measure_s_per_block": round(r.measure_s / max(r.measured, 1), 3),
        "blocks_per_min": round(per_min, 1),
        "full_table_min": round(total / per_min, 1) if per_min else None,
        "full_table_is_extrapolated": done < total,
        "repeat_cv_median": round(statistics.median(cvs), 4) if cvs else None,
        "repeat_cv_p90": round(sorted(cvs)[int(0.9 * (len(cvs) - 1))], 4) if cvs else None,
        "converted": r.converted,
        "jobs": default_jobs(jobs),  # processes converting (profile --jobs)
        "warmup": 10,
        "runs": runs,
        "repeats": repeats,
        "load_avg_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--plan",
        default="fbnet-small:32:host-ort:all,"
        "fbnet-small:32:host-litert:40,mnasnet-small:32:host-ort:120,"
        "mnasnet-small:32:host-litert:30,fbnet:224:host-ort:30,"
        "fbnet:224:host-litert:12",
        help="comma list of space:resolution:backend:(all|N blocks)",
    )
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=None, help="conversion processes (default: cores)")
    add_merge_option(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for item in args.plan.split(","):
        space, res, backend, n = item.split(":")
        rows.append(
            one(
                space,
                int(res),
                backend,
                None if n == "all" else int(n),
                args.runs,
                args.repeats,
                args.jobs,
            )
        )
        r = rows[-1]
        print(
            f"{r['space']:>14} r{r['resolution']:<4} {r['backend']:<12} "
            f"{r['blocks_done']:>4}/{r['keys_in_space']:<5} {r['blocks_per_min']:>7.1f}/min "
            f"conv {r['conversion_s_per_block']:.2f} s/blk meas "
            f"{r['measure_s_per_block']:.2f} s/blk  full table "
            f"{r['full_table_min']} min"
            f"{' (extrapolated)' if r['full_table_is_extrapolated'] else ''}"
            f"  CV(repeats) median {r['repeat_cv_median']}",
            flush=True,
        )
    from hwnas.convert import tool_versions

    write_rows(RESULTS, rows, ("space", "resolution", "backend"), args.merge, tools=tool_versions())


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    main()
