"""Benchmark: MnasNet search vs random search (same trials), reward per batch, trials/hour, τ.

On Fashion-MNIST with mnasnet-small and a host latency table from latency_tables/ (or, when
none exists, a MACs-based synthetic table — labelled so in the output), at a binding target
(``--target-quantile`` of the predicted latency of random architectures, default the median):

* best-under-target validation accuracy (the proxy that ranked it) and test accuracy (the
  same proxy training, evaluated on ``--test-images`` test images) of MnasNet's winner and of
  the best-reward random architecture, both from ``--trials`` proxy-trained children on 2
  local Ray workers;
* MnasNet's mean reward per batch;
* child-trial throughput (trials/hour) on the same ``--throughput-trials`` architectures with
  1 worker (in process) and 2 local Ray workers;
* Kendall τ between proxy-training accuracy and shared-weights (supernet) accuracy on the
  random-search architectures.

Prints a table and writes bench/results/search_mnasnet.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hwnas.logs import show_on_stderr
from hwnas.data import load_dataset
from hwnas.latency import LatencyTable, synthetic_table
from hwnas.search.tables import find_table
from hwnas.search.mnasnet.evaluators import SharedEvaluator, rank_agreement
from hwnas.search.mnasnet import MnasConfig, search
from hwnas.search.mnasnet.pool import LocalPool, RayPool, local_ray_init
from hwnas.search.mnasnet.trials import ChildJob
from hwnas.search.mnasnet.rewards import get_reward
from hwnas.space import Arch, build_model, get_space, random_arch
from hwnas.train import TrainConfig, train

RESULTS = Path(__file__).parent / "results" / "search_mnasnet.json"


def _table(space):
    found = find_table(space)
    if found:
        return LatencyTable.load(found), f"host table {found}"
    return synthetic_table(space), "SYNTHETIC (MACs model; no host table in latency_tables/)"


def _jobs(space, archs, a, start=0):
    return [
        ChildJob(
            start + i,
            tuple(x.choices),
            space,
            "fashion-mnist",
            None,
            a.subset,
            a.seed,
            a.child_epochs,
            a.batch_size,
            a.lr,
            a.seed,
        )
        for i, x in enumerate(archs)
    ]


def _random_search(space, table, target, a, pool):
    rng = random.Random(a.seed + 1)
    archs = [random_arch(space, rng=rng) for _ in range(a.trials)]
    reward = get_reward(a.reward)
    t0 = time.perf_counter()
    out = pool.run(_jobs(space, archs, a), retries=1)
    wall = time.perf_counter() - t0
    rows = []
    for i, x in enumerate(archs):
        res = out[i][0]
        lat = table.predict(x, space)
        acc = res["accuracy"] if res else 0.0
        rows.append(
            {
                "choices": x.choices,
                "accuracy": acc,
                "latency_ms": lat,
                "reward": reward(acc, lat, target) if res else 0.0,
            }
        )
    under = [r for r in rows if r["latency_ms"] <= target]
    best = max(under, key=lambda r: r["reward"]) if under else None
    return best, rows, wall


def _test_acc(space, choices, a) -> tuple[float, float]:
    """The search's proxy training again (same seed), evaluated on the first test images."""
    splits = load_dataset(
        "fashion-mnist",
        resolution=space.resolution,
        in_channels=space.in_channels,
        seed=a.seed,
        subset=a.subset,
    )
    splits = splits.with_test(splits.test.subset(list(range(a.test_images))))
    model = build_model(space, Arch.of(space, choices))
    cfg = TrainConfig(
        epochs=a.child_epochs, batch_size=a.batch_size, lr=a.lr, seed=a.seed, threads=1
    )
    res = train(model, splits, cfg, progress=False)
    return float(res.test_acc), float(res.val_acc)


def _throughput(space, a, pool, n) -> float:
    rng = random.Random(a.seed + 2)
    jobs = _jobs(space, [random_arch(space, rng=rng) for _ in range(n)], a, start=1000)
    t0 = time.perf_counter()
    pool.run(jobs, retries=0)
    return 3600 * n / (time.perf_counter() - t0)


def _kendall(space, rows, a) -> dict:
    t0 = time.perf_counter()
    job = _jobs(space, [Arch.of(space, rows[0]["choices"])], a)[0]
    ev = SharedEvaluator(space, job, a.supernet_epochs)
    shared = [ev.score(r["choices"]) for r in rows]
    agree = rank_agreement([r["accuracy"] for r in rows], shared)
    return {
        **agree,
        "supernet_epochs": a.supernet_epochs,
        "shared_acc": shared,
        "train_acc": [r["accuracy"] for r in rows],
        "seconds": time.perf_counter() - t0,
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--child-epochs", type=int, default=1)
    p.add_argument("--subset", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--reward", default="soft")
    p.add_argument("--target-quantile", type=float, default=0.5)
    p.add_argument("--test-images", type=int, default=1000)
    p.add_argument("--throughput-trials", type=int, default=4)
    p.add_argument("--supernet-epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    space = get_space("mnasnet-small")
    table, table_label = _table(space)
    lo, hi = table.bounds(space)
    rng = random.Random(12345)
    sample = [table.predict(random_arch(space, rng=rng), space) for _ in range(500)]
    target = float(np.quantile(sample, a.target_quantile))
    import ray

    local_ray_init(ray, 2)
    try:
        pool = RayPool(2, None)
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            cfg = MnasConfig(
                target_ms=target,
                out=str(run),
                trials=a.trials,
                batch=a.batch,
                child_epochs=a.child_epochs,
                subset=a.subset,
                batch_size=a.batch_size,
                child_lr=a.lr,
                reward=a.reward,
                workers=2,
                seed=a.seed,
            )
            t0 = time.perf_counter()
            rec = search(cfg, table=table, space=space)
            mnas_wall = time.perf_counter() - t0
            trials = list(csv.DictReader((run / "trials.csv").open()))
        per_batch = {}
        for t in trials:
            per_batch.setdefault(int(t["batch"]), []).append(float(t["reward"]))
        rnd, rnd_rows, rnd_wall = _random_search(space, table, target, a, pool)
        tput2 = _throughput(space, a, pool, a.throughput_trials)
        tput1 = _throughput(space, a, LocalPool(), a.throughput_trials)
    finally:
        ray.shutdown()
    mnas_test, mnas_val = _test_acc(space, list(rec.choices), a)
    rnd_test, rnd_val = _test_acc(space, rnd["choices"], a) if rnd else (float("nan"),) * 2
    tau = _kendall(space, rnd_rows, a)
    result = {
        "table": table_label,
        "space": space.name,
        "target_ms": target,
        "target_quantile": a.target_quantile,
        "bounds_ms": [lo, hi],
        "budget": {
            "trials": a.trials,
            "batch": a.batch,
            "child_epochs": a.child_epochs,
            "subset": a.subset,
            "batch_size": a.batch_size,
            "lr": a.lr,
            "reward": a.reward,
            "test_images": a.test_images,
        },
        "mnasnet": {
            "val_acc": rec.extra["accuracy"],
            "val_acc_rerun": mnas_val,
            "test_acc": mnas_test,
            "latency_ms": rec.predicted_ms,
            "reward": rec.extra["reward_value"],
            "repaired": rec.extra["repaired"],
            "trials_under_target": sum(float(t["predicted_ms"]) <= target for t in trials),
            "evaluated": rec.extra["evaluated"],
            "wall_s": mnas_wall,
            "reward_per_batch": [float(np.mean(v)) for _, v in sorted(per_batch.items())],
        },
        "random": {
            "val_acc": rnd["accuracy"] if rnd else None,
            "val_acc_rerun": rnd_val,
            "test_acc": rnd_test,
            "latency_ms": rnd["latency_ms"] if rnd else None,
            "reward": rnd["reward"] if rnd else None,
            "trials_under_target": sum(r["latency_ms"] <= target for r in rnd_rows),
            "wall_s": rnd_wall,
        },
        "trials_per_hour": {"1 worker (in process)": tput1, "2 Ray workers": tput2},
        "throughput_trials": a.throughput_trials,
        "kendall_train_vs_shared": tau,
        "cpus": 2,
        "note": "2 cores shared with other jobs while measuring",
        "total_wall_s": time.perf_counter() - t_start,
    }
    _print(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _print(r: dict) -> None:
    b = r["budget"]
    print(
        f"table: {r['table']}; target {r['target_ms']:.3f} ms (quantile "
        f"{r['target_quantile']} of random archs; space {r['bounds_ms'][0]:.3f}–"
        f"{r['bounds_ms'][1]:.3f} ms); {b['trials']} trials, {b['child_epochs']} epoch(s) "
        f"on {b['subset']} images, reward {b['reward']}"
    )
    print(
        f"{'search':<10}{'val acc':>9}{'test acc':>10}{'lat ms':>9}{'reward':>9}"
        f"{'under T':>9}{'wall s':>8}"
    )
    for name in ("mnasnet", "random"):
        s = r[name]
        f = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
        print(
            f"{name:<10}{f(s['val_acc'], '.4f'):>9}{f(s['test_acc'], '.4f'):>10}"
            f"{f(s['latency_ms'], '.3f'):>9}{f(s['reward'], '.4f'):>9}"
            f"{s['trials_under_target']:>9}{s['wall_s']:>8.0f}"
        )
    print(
        "mnasnet mean reward per batch: "
        + ", ".join(f"{v:.3f}" for v in r["mnasnet"]["reward_per_batch"])
    )
    for k, v in r["trials_per_hour"].items():
        print(f"trials/hour, {k}: {v:.0f}")
    k = r["kendall_train_vs_shared"]
    print(
        f"Kendall tau, proxy training vs shared weights ({k['n']} archs, supernet "
        f"{k['supernet_epochs']} epochs, {k['seconds']:.0f} s): {k['kendall_tau']:.3f}"
    )


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    sys.exit(0 if main() else 1)
