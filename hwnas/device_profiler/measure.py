"""What ``hwnas profile`` does per block (convert, time, one table row) and, once the table has
every block asked for, the extra shuffled passes and the block-model edges
(:func:`hwnas.device_profiler.runner.profile_run` drives them)."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import numpy as np

from hwnas.errors import HwnasError
from hwnas.space import LayerInfo

from .backends import Backend
from .blockmodels import ModelCache, is_analytic

if TYPE_CHECKING:
    from .runner import ProfileConfig, ProfileResult


def measure_block(
    info: LayerInfo,
    backend: Backend,
    cache: ModelCache,
    fmt: str,
    precision: str,
    cfg: ProfileConfig,
    result: ProfileResult,
) -> dict:
    if is_analytic(info):
        result.analytic += 1
        return _row(info, None, 0, 0)
    label = "/".join(map(str, info.key))
    try:
        built = cache.block(info, fmt, precision)
        result.converted += not built.cached
        result.conversion_s += built.seconds
        cooldown = getattr(backend, "cooldown", None)
        if cooldown is not None:
            cooldown()
        t0 = time.perf_counter()
        samples = backend.measure(built.path, warmup=cfg.warmup, runs=cfg.runs, repeats=cfg.repeats)
        result.measure_s += time.perf_counter() - t0
    except HwnasError as e:
        raise type(e)(
            f"block {label}: {e} (rows measured so far are saved; re-run the same "
            f"command to continue)"
        ) from e
    cv = samples.repeat_cv() if hasattr(samples, "repeat_cv") else None
    if cv is not None:
        result.repeat_cvs.append(cv)
    result.measured += 1
    return _row(info, samples.stats(), cfg.runs, cfg.repeats)


def _row(info: LayerInfo, stats: dict | None, runs: int, repeats: int) -> dict:
    block, h, w, cin, cout, stride = info.key
    key = {"block": block, "H": h, "W": w, "Cin": cin, "Cout": cout, "stride": stride}
    if stats is None:  # identity: nothing runs
        return {
            **key,
            "median_us": 0.0,
            "p10_us": 0.0,
            "p90_us": 0.0,
            "mean_us": 0.0,
            "std_us": 0.0,
            "runs": 0,
            "repeats": 0,
            "analytic": True,
        }
    return {
        **key,
        **{k: round(stats[k], 3) for k in ("median_us", "p10_us", "p90_us", "mean_us", "std_us")},
        "runs": runs,
        "repeats": repeats,
        "analytic": False,
    }


def row_key(row: dict) -> tuple:
    """A table row's key, as ``LayerInfo.key`` spells it."""
    return (
        row["block"],
        int(row["H"]),
        int(row["W"]),
        int(row["Cin"]),
        int(row["Cout"]),
        int(row["stride"]),
    )


def more_passes(out, rows, meta, infos, backend, cache, fmt, precision, cfg) -> None:
    """Once the table has every block asked for: ``passes − 1`` more passes over all of them,
    each in a fresh shuffled order, one repeat per block per pass; a block's median becomes
    the median of its pass medians.  A burst of load (another process, a noisy neighbour)
    lasts seconds — longer than a block's whole measurement — so back-to-back repeats all
    see it; spread over passes it hits one of a block's medians, not all.  Written once at
    the end: an interrupted refinement leaves the first pass's table and runs again."""
    from hwnas.latency import write_table_atomic
    from hwnas.progress import progress_bar

    if cfg.passes <= 1 or "passes" in meta:
        return
    index = {row_key(r): r for r in rows}
    measured = [i for i in infos if i.key in index and not is_analytic(i)]
    medians = {i.key: [float(index[i.key]["median_us"])] for i in measured}
    rng = random.Random(cfg.seed + 1)
    with progress_bar(
        f"{cfg.passes - 1} more passes", (cfg.passes - 1) * len(measured), cfg.progress
    ) as bar:
        for _ in range(cfg.passes - 1):
            order = list(measured)
            rng.shuffle(order)
            for info in order:
                path = cache.block(info, fmt, precision).path
                samples = backend.measure(path, warmup=cfg.warmup, runs=cfg.runs, repeats=1)
                medians[info.key].append(samples.stats()["median_us"])
                bar.advance(1)
    for key, ms in medians.items():
        index[key]["median_us"] = round(float(np.median(ms)), 3)
        index[key]["repeats"] = int(index[key]["repeats"]) + cfg.passes - 1
    meta["passes"] = {
        "passes": cfg.passes,
        "statistic": "median of the pass medians (the first pass: median of its repeats' samples)",
    }
    write_table_atomic(out, rows, meta)


def store_edges(out, rows, meta, space, backend, cache, fmt, precision, cfg, log) -> None:
    """Once the table has every block asked for: measure the standalone models' edges
    (``edges.py``, once per table) and make them the table's calibration, unless it already
    has one fitted on whole networks (``hwnas tables validate``)."""
    from hwnas.latency import write_table_atomic
    from hwnas.progress import progress_bar

    from .edges import EDGE_KEYS, edge_calibration, measure_edges

    if not cfg.edges or "edges" in meta:
        return
    with progress_bar("measuring block-model edges", EDGE_KEYS, cfg.progress) as bar:
        edges = measure_edges(
            space,
            backend,
            cache,
            fmt,
            precision,
            warmup=cfg.warmup,
            runs=cfg.runs,
            progress=lambda: bar.advance(1),
        )
    if edges is None:
        return
    meta["edges"] = edges
    if "fitted_on" not in meta.get("calibration", {}):
        meta["calibration"] = edge_calibration(edges, space)
    log(
        f"block-model edges: {edges['a_us']:.2f} µs + {1000 * edges['b_us_per_element']:.3f} "
        f"ns/element per standalone block ({len(edges['points'])} stacked pairs); stored "
        f"as {out.with_suffix('.json').name}'s calibration"
    )
    write_table_atomic(out, rows, meta)
