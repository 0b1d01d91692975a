"""Benchmark: does MnasNet's controller learn when a trained supernet scores its children?

For each seed: a MnasNet search (``--evaluator supernet``) of ``--trials`` children on
fbnet-small at ``--frac`` × the reference's predicted latency on the host table, and random
search with the same number of evaluations — architectures drawn uniformly from the space
(the controller's starting distribution), scored by the same supernet evaluator and the same
reward.  Both keep the best-reward architecture under the target.

Reports per seed: the controller's mean reward over the first and the last 20% of trials
(learning means last > first), and both winners' supernet accuracy and reward.  Writes
bench/results/mnasnet_supernet.json and mnasnet_supernet.png (reward per trial, moving
average, both methods); resumable per seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from pathlib import Path

from hwnas.logs import show_on_stderr
from hwnas.io import atomic_write_json, save_figure
from hwnas.search.mnasnet.evaluators import SupernetEvaluator
from hwnas.search.mnasnet import MnasConfig, search
from hwnas.search.mnasnet.rewards import get_reward
from hwnas.space import random_arch

sys.path.insert(0, str(Path(__file__).parent))
from search_quality import fbnet_small_host  # noqa: E402  (one set-up)

RESULTS = Path(__file__).parent / "results" / "mnasnet_supernet.json"
PLOT = RESULTS.with_suffix(".png")


def fifth_means(rewards: list[float]) -> tuple[float, float]:
    """Mean reward of the first and of the last 20% of trials."""
    n = max(1, len(rewards) // 5)
    return statistics.mean(rewards[:n]), statistics.mean(rewards[-n:])


def random_search(space, table, evaluator, reward_fn, target: float, n: int, seed: int):
    rng, rows = random.Random(seed), []
    for _ in range(n):
        a = random_arch(space, rng=rng)
        ms = table.predict(a, space)
        acc = evaluator.score(a.choices)
        rows.append(
            {
                "choices": list(a.choices),
                "accuracy": acc,
                "latency_ms": ms,
                "reward": reward_fn(acc, ms, target),
            }
        )
    return rows


def best_under(rows: list[dict], target: float) -> dict | None:
    under = [r for r in rows if r["latency_ms"] <= target]
    return max(under, key=lambda r: r["reward"]) if under else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--supernet",
        default="runs/bench-train-once/supernet",
        help="a trained supernet folder (bench/train_once.py makes this one)",
    )
    ap.add_argument("--frac", type=float, default=0.7)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--trials", type=int, default=160)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reward", default="hard")
    ap.add_argument("--work", default="runs/bench-mnasnet-supernet")
    args = ap.parse_args(argv)
    found = fbnet_small_host()
    if found is None:
        return 2
    space, path, table, ref_ms = found
    if not (Path(args.supernet) / "supernet.pt").exists():
        print(
            f"no supernet in {args.supernet}: run bench/train_once.py (or `hwnas supernet "
            f"train --space fbnet-small --out {args.supernet}`) first",
            file=sys.stderr,
        )
        return 2
    target = round(args.frac * ref_ms, 4)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(table=str(path), reference_ms=ref_ms, target_ms=target, settings=vars(args))
    runs = results.setdefault("runs", {})
    reward_fn = get_reward(args.reward)
    for seed in args.seeds:
        k = f"{args.frac:g}/{seed}"
        if k in runs:
            continue
        out = Path(args.work) / f"mnasnet-{k.replace('/', '-')}"
        t0 = time.perf_counter()
        rec = search(
            MnasConfig(
                space="fbnet-small",
                evaluator="supernet",
                supernet=args.supernet,
                reward=args.reward,
                trials=args.trials,
                batch=args.batch,
                target_ms=target,
                seed=seed,
                out=str(out),
                resume=(out / "ckpt.pt").exists(),
            ),
            table=table,
            space=space,
        )
        mnas_s = time.perf_counter() - t0
        with open(out / "trials.csv") as f:
            trials = [r for r in csv.DictReader(f) if r["status"] != "failed"]
        rewards = [float(r["reward"]) for r in trials]
        evaluated = sum(r["status"] == "ok" for r in trials)  # distinct children scored
        first, last = fifth_means(rewards)
        evaluator = SupernetEvaluator(args.supernet, space, "fashion-mnist", seed=seed)
        t0 = time.perf_counter()
        rand = random_search(space, table, evaluator, reward_fn, target, evaluated, seed)
        rand_s = time.perf_counter() - t0
        rbest = best_under(rand, target)
        runs[k] = {
            "mnasnet": {
                "rewards": rewards,
                "first_fifth": first,
                "last_fifth": last,
                "winner_acc": rec.extra["accuracy"],
                "winner_reward": rec.extra["reward_value"],
                "winner_ms": rec.predicted_ms,
                "choices": list(rec.choices),
                "under_target_share": sum(float(r["predicted_ms"]) <= target for r in trials)
                / len(trials),
                "evaluated": evaluated,
                "seconds": mnas_s,
            },
            "random": {
                "rewards": [r["reward"] for r in rand],
                "winner_acc": rbest and rbest["accuracy"],
                "winner_reward": rbest and rbest["reward"],
                "winner_ms": rbest and rbest["latency_ms"],
                "choices": rbest and rbest["choices"],
                "under_target_share": sum(r["latency_ms"] <= target for r in rand) / len(rand),
                "seconds": rand_s,
            },
        }
        atomic_write_json(RESULTS, results)
        m, r = runs[k]["mnasnet"], runs[k]["random"]
        print(
            f"{k}: mnasnet reward first 20% {first:.4f} → last 20% {last:.4f}; winner "
            f"{_winner(m)} vs random {_winner(r)} ({evaluated} evaluations each)",
            flush=True,
        )
    summarise(results)
    atomic_write_json(RESULTS, results)
    plot(results)
    return 0


def _winner(m: dict) -> str:
    if m["winner_acc"] is None:
        return "none under the target"
    return f"acc {m['winner_acc']:.3f} @ {m['winner_ms']:.3f} ms"


def summarise(results: dict) -> None:
    runs = results["runs"].values()
    learnt = sum(r["mnasnet"]["last_fifth"] > r["mnasnet"]["first_fifth"] for r in runs)
    beat = sum(
        r["mnasnet"]["winner_acc"] is not None
        and r["mnasnet"]["winner_acc"] >= (r["random"]["winner_acc"] or 0)
        for r in runs
    )
    neither = sum(
        r["mnasnet"]["winner_acc"] is None and r["random"]["winner_acc"] is None for r in runs
    )
    acc = lambda m: [100 * (r[m]["winner_acc"] or 0) for r in runs]  # noqa: E731
    results["summary"] = {
        "seeds": len(runs),
        "reward_rose": learnt,
        "mnasnet_ge_random": beat,
        "neither_under_target": neither,
        "mnasnet_acc_mean": statistics.mean(acc("mnasnet")) if runs else None,
        "random_acc_mean": statistics.mean(acc("random")) if runs else None,
    }
    s = results["summary"]
    print(
        f"\nMnasNet + supernet at {results['target_ms']:g} ms: reward rose in "
        f"{learnt}/{len(runs)} seeds; winner under the target and ≥ random in "
        f"{beat}/{len(runs)} (neither found one under it in {neither}); mean supernet "
        f"accuracy of the winners {s['mnasnet_acc_mean']:.2f}% vs random "
        f"{s['random_acc_mean']:.2f}% (0 where none)"
    )


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (k, r) in enumerate(sorted(results["runs"].items())):
        for m, ls in (("mnasnet", "-"), ("random", ":")):
            rw = r[m]["rewards"]
            w = max(1, len(rw) // 10)
            avg = [statistics.mean(rw[max(0, j - w + 1) : j + 1]) for j in range(len(rw))]
            ax.plot(avg, ls, color=f"C{i}", label=f"{m} seed {k.split('/')[1]}")
    ax.set_xlabel("trial")
    ax.set_ylabel("reward (moving average)")
    ax.set_title(f"MnasNet controller vs random sampling, target {results['target_ms']:g} ms")
    ax.legend(fontsize=7)
    save_figure(fig, PLOT, tight=True)


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    sys.exit(main())
