"""MnasNet search: LSTM controller + PPO on a Pareto reward; child trials in process or on Ray.

Each batch: the controller samples ``batch`` architectures (one decision per choice point, in
the space's order); new ones are proxy-trained (``child_epochs`` on ``subset`` images, scored
on the validation split) or, with ``evaluator="shared"``, scored with a once-trained supernet's
weights (``evaluators.py``); repeats reuse the cached result; the reward combines accuracy with
the table's predicted latency or the whole model's measured latency (``latency="measured"``;
``rewards.py``); one PPO update follows and the state is checkpointed.  ``arch.json`` is the
best-reward trial with predicted latency ≤ T, or, when no trial met T, the best-reward one
repaired under T (``LatencyTable.repair``).

Trials train (and the shared or trained supernet scores) on ``cfg.accelerator``; on a Ray
cluster with ``cuda`` each trial asks Ray for ``gpus_per_trial`` GPUs (``pool.py``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch

from hwnas.accelerator import Accelerator
from hwnas.io import atomic_torch_save
from hwnas.latency import LatencyTable
from hwnas.progress import progress_bar
from hwnas.space import Arch, SearchSpace, choices_key, key_choices

from . import report
from ..tables import check_target, table_and_space
from ..base import (
    SearchError,
    SearchResult,
    accelerator_of,
    prepare_out,
    write_config,
    write_result,
)
from .config import MnasConfig
from .controller import Controller
from .evaluators import MeasuredLatency, SharedEvaluator, SupernetEvaluator, TrainEvaluator
from .trials import ChildJob
from .rewards import get_reward

logger = logging.getLogger(__name__)

CKPT = "ckpt.pt"
INVALID_REWARD = 0.0


# --------------------------------------------------------------------------- state


def _save(out: Path, ctl: Controller, trials: list, batches: list) -> None:
    blob = {
        "controller": ctl.full_state(),
        "trials": json.dumps(trials),
        "batches": json.dumps(batches),
    }
    atomic_torch_save(out / CKPT, blob)


def _load(out: Path, ctl: Controller) -> tuple[list, list]:
    try:
        blob = torch.load(out / CKPT, weights_only=True)
        ctl.load_full_state(blob["controller"])
        return json.loads(blob["trials"]), json.loads(blob["batches"])
    except Exception as e:  # corrupt or foreign file: say which
        raise SearchError(
            f"{out / CKPT}: unreadable checkpoint ({type(e).__name__}); delete it to start over"
        ) from None


def _check_modes(cfg: MnasConfig, space: SearchSpace) -> None:
    if cfg.evaluator == "shared" and space.family != "mnasnet":
        raise SearchError(f"--evaluator shared needs a mnasnet-family space, not {space.name}")
    if (cfg.evaluator == "supernet") != bool(cfg.supernet):
        raise SearchError(
            "--evaluator supernet and --supernet DIR go together (a folder "
            "written by `hwnas supernet train`)"
        )
    if cfg.evaluator == "supernet" and space.family != "fbnet":
        raise SearchError(
            f"--evaluator supernet needs an fbnet-family space (the trained "
            f"supernets are FBNet's), not {space.name}"
        )
    if cfg.evaluator == "supernet":  # a bad folder is refused before anything is written
        SupernetEvaluator(cfg.supernet, space, cfg.data, seed=cfg.seed)


def _job(cfg: MnasConfig, space: SearchSpace, trial: int, choices) -> ChildJob:
    return ChildJob(
        trial,
        tuple(choices),
        space,
        cfg.data,
        cfg.data_root,
        cfg.subset,
        cfg.seed,
        cfg.child_epochs,
        cfg.batch_size,
        cfg.child_lr,
        cfg.seed,
    )


def _accelerator(cfg: MnasConfig) -> Accelerator | None:
    """Where this machine trains or scores (an absent accelerator: one line, before anything
    is written); None when the trials run on a Ray cluster that decides (``--ray-address``
    with ``cuda`` or ``auto``: the cluster's GPUs, checked when the pool connects)."""
    if cfg.evaluator == "train" and cfg.ray_address and cfg.accelerator in ("cuda", "auto"):
        return None
    return accelerator_of(cfg, say=False)  # auto is said once the input is checked (search)


def _evaluator(cfg: MnasConfig, space: SearchSpace, out: Path, acc: Accelerator | None):
    if cfg.evaluator == "shared":
        logger.info(
            f"training the shared supernet ({cfg.supernet_epochs} epoch(s)) unless "
            f"{out}/supernet.pt exists"
        )
        job = _job(cfg, space, -1, [0] * len(space.choices))
        return SharedEvaluator(space, job, cfg.supernet_epochs, out, acc=acc)
    if cfg.evaluator == "supernet":
        return SupernetEvaluator(cfg.supernet, space, cfg.data, seed=cfg.seed, acc=acc)
    return TrainEvaluator(
        cfg.workers,
        cfg.ray_address,
        cfg.ray_timeout_s,
        acc.name if acc is not None else cfg.accelerator,
        cfg.gpus_per_trial,
    )


# --------------------------------------------------------------------------- batches


def _run_batch(cfg, space, table, pool, reward_fn, latency, archs, trials, cache, batch_no) -> list:
    """Evaluate one batch (new architectures in parallel, repeats from the cache)."""
    first = len(trials)
    rows, jobs = [], []
    for i, choices in enumerate(archs):
        key = choices_key(choices)
        pred = table.predict(Arch.of(space, choices), space)
        lat = latency(choices) if latency else pred
        row = {
            "trial": first + i,
            "batch": batch_no,
            "choices": key,
            "latency_ms": lat,
            "predicted_ms": pred,
            "accuracy": math.nan,
            "reward": INVALID_REWARD,
            "seconds": 0.0,
            "worker": "cache",
            "attempts": 0,
            "status": "cached",
            "error": "",
        }
        rows.append(row)
        if key in cache or any(j.choices == tuple(choices) for j in jobs):
            continue
        jobs.append(_job(cfg, space, first + i, choices))
    outcomes = pool.run(jobs, cfg.retries)
    for job in jobs:
        res, attempts, err = outcomes[job.trial]
        row = rows[job.trial - first]
        row["attempts"] = attempts
        if res is None:
            row.update(status="failed", error=err, worker="")
            logger.warning(
                f"trial {job.trial} failed after {attempts} attempt(s): {err}; "
                f"reward {INVALID_REWARD}"
            )
            continue
        row.update(
            status="ok",
            accuracy=res["accuracy"],
            seconds=res["seconds"],
            worker=res["worker"],
            reward=reward_fn(res["accuracy"], row["latency_ms"], cfg.target_ms),
        )
        cache[row["choices"]] = row
    for row in rows:
        if row["status"] == "cached":
            src = cache.get(row["choices"])
            if src is None:  # repeat of an architecture that failed in this batch
                row.update(status="failed", error="repeat of a failed trial")
            else:
                row.update(accuracy=src["accuracy"], reward=src["reward"])
    return rows


def _batch_row(batch_no, rows, trials, ctl_stats, seconds) -> dict:
    rewards = [r["reward"] for r in rows]
    best = max(r["reward"] for r in trials)
    return {
        "batch": batch_no,
        "trials": len(rows),
        "mean_reward": sum(rewards) / len(rewards),
        "max_reward": max(rewards),
        "best_so_far": best,
        "seconds": seconds,
        "baseline": ctl_stats["baseline"],
        "entropy": ctl_stats.get("entropy", math.nan),
    }


# --------------------------------------------------------------------------- main


def search(
    cfg: MnasConfig,
    table: LatencyTable | None = None,
    space: SearchSpace | None = None,
    *,
    stop_after: int | None = None,
) -> SearchResult | None:
    """Run (or resume) a MnasNet search; returns its result, as written to arch.json (None
    when stopped early after ``stop_after`` batches, which is for tests and time-boxing)."""
    out = Path(cfg.out)
    acc = _accelerator(cfg)
    table, space = table_and_space(cfg, table, space)
    _check_modes(cfg, space)
    check_target(table, space, cfg.target_ms)
    reward_fn = get_reward(cfg.reward)
    resuming = prepare_out(cfg, out, CKPT)
    out.mkdir(parents=True, exist_ok=True)
    write_config(out, cfg)
    if acc is not None:
        accelerator_of(cfg)  # auto says which
    ctl = Controller([len(c) for c in space.choices], cfg.controller(), seed=cfg.seed)
    trials, batches = _load(out, ctl) if resuming else ([], [])
    if resuming:
        logger.info(f"resuming {out} after {len(trials)}/{cfg.trials} trials")
    cache = {t["choices"]: t for t in trials if t["status"] == "ok"}
    latency = MeasuredLatency(table, space, out) if cfg.latency == "measured" else None
    pool = _evaluator(cfg, space, out, acc)
    try:
        _batches(
            cfg,
            space,
            table,
            out,
            ctl,
            pool,
            reward_fn,
            latency,
            trials,
            batches,
            cache,
            stop_after,
        )
    finally:
        pool_name = pool.name
        pool.close()
    if len(trials) < cfg.trials:
        return None
    return _finish(cfg, space, table, out, trials, batches, pool_name)


def _batches(
    cfg, space, table, out, ctl, pool, reward_fn, latency, trials, batches, cache, stop_after
) -> None:
    """Controller batches until ``cfg.trials`` (or ``stop_after`` batches): sample, evaluate,
    one PPO update, checkpoint; ``trials`` and ``batches`` grow in place."""
    ran = 0
    with progress_bar("mnasnet", cfg.trials) as bar:
        bar.update(completed=len(trials))
        for _ in range(cfg.trials):  # bounded: every batch adds at least one trial
            if len(trials) >= cfg.trials or (stop_after is not None and ran >= stop_after):
                break
            t0 = time.perf_counter()
            archs = ctl.sample(min(cfg.batch, cfg.trials - len(trials)))
            batch_no = len(batches) + 1
            rows = _run_batch(
                cfg, space, table, pool, reward_fn, latency, archs, trials, cache, batch_no
            )
            trials.extend(rows)
            stats = ctl.update(archs, [r["reward"] for r in rows])
            batches.append(_batch_row(batch_no, rows, trials, stats, time.perf_counter() - t0))
            _save(out, ctl, trials, batches)
            report.write_trials(out, trials)
            ran += 1
            best = max(trials, key=lambda t: t["reward"])
            bar.advance(
                len(rows),
                status=f"best reward {best['reward']:.4f} "
                f"(acc {best['accuracy']:.3f}, {best['latency_ms']:.2f} ms)",
            )
            b = batches[-1]
            logger.info(
                f"batch {batch_no}: trials {len(trials)}/{cfg.trials}, mean reward "
                f"{b['mean_reward']:.4f}; best so far {best['reward']:.4f} (acc "
                f"{best['accuracy']:.3f}, {best['latency_ms']:.3f} ms), "
                f"{b['seconds']:.0f} s"
            )


def _finish(cfg, space, table, out, trials, batches, pool_name) -> SearchResult:
    ok = [t for t in trials if t["status"] != "failed"]
    # the hard constraint is on the table's prediction (also with --latency measured)
    under = [t for t in ok if t.get("predicted_ms", t["latency_ms"]) <= cfg.target_ms]
    note = ""
    if under:
        best = max(under, key=lambda t: (t["reward"], -t["trial"]))
        winner = Arch.of(space, key_choices(best["choices"]), "mnasnet")
    else:
        pool_ = ok or trials
        best = max(pool_, key=lambda t: (t["reward"], -t["trial"]))
        arch = Arch.of(space, key_choices(best["choices"]))
        winner = Arch.of(space, table.repair(space, arch, cfg.target_ms).choices, "mnasnet")
        note = (
            f"no sampled architecture met the target {cfg.target_ms:g} ms; the best-reward "
            f"one (trial {best['trial']}, {best['latency_ms']:.3f} ms) was repaired under "
            f"it (untrained: accuracy unknown)"
        )
        logger.warning(note)
    seen, topk = set(), []
    for t in sorted(under, key=lambda t: (-t["reward"], t["trial"])):
        if t["choices"] not in seen and len(topk) < cfg.topk:
            seen.add(t["choices"])
            topk.append((Arch.of(space, key_choices(t["choices"])), t["reward"]))
    repaired = not under
    extra = {
        "reward": cfg.reward,
        "trial": best["trial"],
        "accuracy": None if repaired else best["accuracy"],
        "reward_value": None if repaired else best["reward"],
        "repaired": repaired,
        "met_target": not repaired,
        "note": note,
        "trials": len(trials),
        "evaluated": sum(t["status"] == "ok" for t in trials),
        "failed": sum(t["status"] == "failed" for t in trials),
        "search_seconds": sum(b["seconds"] for b in batches),
    }
    result = write_result(
        out,
        space,
        table,
        winner,
        cfg.target_ms,
        "mnasnet",
        topk or [(winner, INVALID_REWARD)],
        extra,
    )
    report.write_plots(out, trials, batches, cfg.target_ms)
    report.write_mnas_summary(
        out, cfg, space, table, result, trials, batches, topk, pool_name, note
    )
    return result


__all__ = ["search", "INVALID_REWARD"]
