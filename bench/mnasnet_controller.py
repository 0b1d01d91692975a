"""Benchmark: does MnasNet's controller learn on a trained supernet (reward vs random sampling)?

For each seed: the project's MnasNet search (``search(MnasConfig(evaluator="supernet"))``) of
``--trials`` children in batches of ``--batch`` on fbnet-small, target ``--target-frac`` × the
MobileNetV2-like reference's predicted latency on ``--table``; then random sampling with the
same number of samples — architectures drawn uniformly from the space (the controller's
starting distribution), scored by the same supernet evaluator (``SupernetEvaluator``, same
seed) and rewarded by the same function (``rewards.get_reward``, ACC·(LAT/T)^w).

The controller's per-batch rows (mean and max reward, baseline, policy entropy) are read
from the search's checkpoint, not recomputed.  Reports per seed: the mean reward per batch
over the first and the last quarter of batches (for both methods: random sampling's
difference is the noise floor), and the best reward with its architecture's supernet
accuracy and predicted latency (and MnasNet's winner under the target, if any).  Writes
bench/results/mnasnet_controller.json and mnasnet_controller.png (mean reward per batch vs
batch, one line per seed; random sampling's running mean dashed).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from hwnas.io import save_figure
from hwnas.latency import LatencyTable
from hwnas.logs import show_on_stderr
from hwnas.search.mnasnet import MnasConfig, search
from hwnas.search.mnasnet.evaluators import SupernetEvaluator
from hwnas.search.mnasnet.rewards import get_reward
from hwnas.search.mnasnet.run import CKPT
from hwnas.space import get_space, key_choices, reference_arch

sys.path.insert(0, str(Path(__file__).parent))
from _results import add_merge_option, write_rows  # noqa: E402
from mnasnet_supernet import random_search  # noqa: E402  (the one uniform sampler + scorer)

RESULTS = Path(__file__).parent / "results" / "mnasnet_controller.json"
PLOT = RESULTS.with_suffix(".png")
SPACE = "fbnet-small"
DATA = "fashion-mnist"


def quarter_means(values: list[float]) -> tuple[float, float]:
    """Mean of the first and of the last quarter of ``values`` (at least one each)."""
    n = max(1, len(values) // 4)
    return statistics.mean(values[:n]), statistics.mean(values[-n:])


def in_batches(values: list[float], size: int) -> list[float]:
    """Mean of each consecutive group of ``size`` values (the last may be shorter)."""
    return [statistics.mean(values[i : i + size]) for i in range(0, len(values), size)]


def running_mean(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values, 1):
        total += v
        out.append(total / i)
    return out


def best_row(rows: list[dict], target: float) -> dict:
    """The best-reward row: its reward, supernet accuracy, predicted latency and choices."""
    b = max(rows, key=lambda r: r["reward"])
    return {
        "reward": b["reward"],
        "accuracy": b["accuracy"],
        "predicted_ms": b["predicted_ms"],
        "under_target": b["predicted_ms"] <= target,
        "choices": list(b["choices"]),
    }


def run_mnasnet(args, seed: int, space, table, target: float, work: Path) -> dict:
    """One MnasNet search; its trials and per-batch rows as the search recorded them."""
    out = work / f"mnasnet-s{seed}"
    cfg = MnasConfig(
        space=SPACE,
        data=DATA,
        evaluator="supernet",
        supernet=args.supernet,
        reward=args.reward,
        trials=args.trials,
        batch=args.batch,
        entropy=args.entropy,
        target_ms=target,
        seed=seed,
        out=str(out),
    )
    t0 = time.perf_counter()
    rec = search(cfg, table=table, space=space)
    seconds = time.perf_counter() - t0
    blob = torch.load(out / CKPT, weights_only=True)
    trials = [t for t in json.loads(blob["trials"]) if t["status"] != "failed"]
    batches = json.loads(blob["batches"])
    for t in trials:
        t["choices"] = key_choices(t["choices"])
    means = [b["mean_reward"] for b in batches]
    first, last = quarter_means(means)
    return {
        "batch_mean_reward": means,
        "batch_max_reward": [b["max_reward"] for b in batches],
        "batch_baseline": [b["baseline"] for b in batches],
        "batch_entropy": [b["entropy"] for b in batches],
        "first_quarter": first,
        "last_quarter": last,
        "best": best_row(trials, target),
        "winner_under_target": None
        if rec.extra["repaired"]
        else {
            "reward": rec.extra["reward_value"],
            "accuracy": rec.extra["accuracy"],
            "predicted_ms": rec.predicted_ms,
            "choices": list(rec.choices),
        },
        "under_target_share": sum(t["predicted_ms"] <= target for t in trials) / len(trials),
        "mean_predicted_ms_last_quarter": statistics.mean(
            t["predicted_ms"] for t in trials[-max(1, len(trials) // 4) :]
        ),
        "distinct_evaluated": rec.extra["evaluated"],
        "failed": rec.extra["failed"],
        "seconds": seconds,
    }


def run_random(args, seed: int, space, table, target: float, n: int) -> dict:
    """``n`` uniform architectures, same evaluator and reward as the search, in batches."""
    evaluator = SupernetEvaluator(args.supernet, space, DATA, seed=seed)
    t0 = time.perf_counter()
    rows = random_search(space, table, evaluator, get_reward(args.reward), target, n, seed)
    seconds = time.perf_counter() - t0
    for r in rows:
        r["predicted_ms"] = r["latency_ms"]  # the table's prediction, as the search's
    means = in_batches([r["reward"] for r in rows], args.batch)
    first, last = quarter_means(means)
    return {
        "batch_mean_reward": means,
        "running_mean_reward": running_mean(means),
        "first_quarter": first,
        "last_quarter": last,
        "best": best_row(rows, target),
        "under_target_share": sum(r["predicted_ms"] <= target for r in rows) / len(rows),
        "mean_predicted_ms": statistics.mean(r["predicted_ms"] for r in rows),
        "distinct_evaluated": len({tuple(r["choices"]) for r in rows}),
        "seconds": seconds,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--supernet", default="runs/sn-all4", help="a trained supernet folder")
    ap.add_argument("--table", default="latency_tables/host-ort_fbnet-small_r32.csv")
    ap.add_argument("--target-frac", type=float, default=0.7, help="× the reference's ms")
    ap.add_argument("--trials", type=int, default=80, help="children per search (and random)")
    ap.add_argument(
        "--batch", type=int, default=MnasConfig.batch, help="architectures per controller update"
    )
    ap.add_argument("--reward", default=MnasConfig.reward, help="soft | hard | abs")
    ap.add_argument(
        "--entropy", type=float, default=MnasConfig.entropy, help="the controller's entropy bonus"
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=RESULTS, help="results JSON (plot beside it)")
    ap.add_argument("--work", help="where the searches write (default: a temporary folder)")
    add_merge_option(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    space = get_space(SPACE)
    if not (Path(args.supernet) / "manifest.json").exists():
        print(
            f"no finished supernet in {args.supernet} (no manifest.json): `hwnas supernet "
            f"train --space {SPACE} --out {args.supernet}` first",
            file=sys.stderr,
        )
        return 2
    if not Path(args.table).exists():
        print(f"no table {args.table}: `hwnas profile --device host --space {SPACE}`")
        return 2
    table = LatencyTable.load(args.table)
    ref_ms = table.predict(reference_arch(space, "mobilenetv2"), space)
    target = round(args.target_frac * ref_ms, 4)
    work = Path(args.work or tempfile.mkdtemp(prefix="hwnas-bench-"))
    print(f"target {target:g} ms = {args.target_frac:g} × reference {ref_ms:.4f} ms; work {work}")
    manifest = json.loads((Path(args.supernet) / "manifest.json").read_text())
    rows = []
    extra = dict(
        table=args.table,
        reference_ms=ref_ms,
        target_ms=target,
        supernet=args.supernet,
        supernet_random_paths=manifest.get("random_paths", {}).get("mean"),
        max_entropy=sum(math.log(len(c)) for c in space.choices),
        settings={k: v for k, v in vars(args).items() if k not in ("merge", "work", "out")},
    )
    t_all = time.perf_counter()
    for seed in args.seeds:
        m = run_mnasnet(args, seed, space, table, target, work)
        r = run_random(args, seed, space, table, target, args.trials)
        rows.append({"seed": seed, "mnasnet": m, "random": r})
        print(_line(seed, m, r), flush=True)
        extra["wall_seconds"] = time.perf_counter() - t_all
        write_rows(args.out, rows, ("seed",), args.merge, **extra)  # after each seed
    stored = json.loads(args.out.read_text())
    stored["summary"] = summarise(stored["rows"])
    write_rows(
        args.out, stored["rows"], ("seed",), False, **{**extra, "summary": stored["summary"]}
    )
    plot(stored, args.out.with_suffix(".png"))
    return 0


def _best(b: dict) -> str:
    return (
        f"{b['reward']:.4f} (acc {b['accuracy']:.3f}, {b['predicted_ms']:.3f} ms"
        f"{'' if b['under_target'] else ', over T'})"
    )


def _line(seed: int, m: dict, r: dict) -> str:
    return (
        f"seed {seed}: mean reward per batch, first → last quarter: MnasNet "
        f"{m['first_quarter']:.4f} → {m['last_quarter']:.4f}, random {r['first_quarter']:.4f} "
        f"→ {r['last_quarter']:.4f}; best reward MnasNet {_best(m['best'])}, random "
        f"{_best(r['best'])}; entropy {m['batch_entropy'][0]:.1f} → "
        f"{m['batch_entropy'][-1]:.1f}; {m['seconds']:.0f} s + {r['seconds']:.0f} s"
    )


def summarise(rows: list[dict]) -> dict:
    mean = lambda xs: statistics.mean(xs) if xs else None  # noqa: E731
    rise = [r["mnasnet"]["last_quarter"] - r["mnasnet"]["first_quarter"] for r in rows]
    noise = [r["random"]["last_quarter"] - r["random"]["first_quarter"] for r in rows]
    s = {
        "seeds": len(rows),
        "reward_rose": sum(d > 0 for d in rise),
        "mean_rise": mean(rise),
        "random_mean_change": mean(noise),
        "mnasnet_last_quarter_above_random_mean": sum(
            r["mnasnet"]["last_quarter"] > statistics.mean(r["random"]["batch_mean_reward"])
            for r in rows
        ),
        "mnasnet_best_ge_random": sum(
            r["mnasnet"]["best"]["reward"] >= r["random"]["best"]["reward"] for r in rows
        ),
        "mnasnet_best_acc_mean": mean([r["mnasnet"]["best"]["accuracy"] for r in rows]),
        "random_best_acc_mean": mean([r["random"]["best"]["accuracy"] for r in rows]),
    }
    print(
        f"\nreward rose (last vs first quarter of batches) in {s['reward_rose']}/{len(rows)} "
        f"seeds, by {s['mean_rise']:+.4f} on average (random sampling: "
        f"{s['random_mean_change']:+.4f}); MnasNet's last quarter above random's mean in "
        f"{s['mnasnet_last_quarter_above_random_mean']}/{len(rows)}; best reward ≥ random's "
        f"in {s['mnasnet_best_ge_random']}/{len(rows)}; best-reward accuracy "
        f"{s['mnasnet_best_acc_mean']:.3f} vs {s['random_best_acc_mean']:.3f} (mean)"
    )
    return s


def plot(results: dict, path: Path = PLOT) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, row in enumerate(sorted(results["rows"], key=lambda r: r["seed"])):
        m, r = row["mnasnet"]["batch_mean_reward"], row["random"]["running_mean_reward"]
        ax.plot(range(1, len(m) + 1), m, "-", color=f"C{i}", label=f"MnasNet seed {row['seed']}")
        ax.plot(
            range(1, len(r) + 1),
            r,
            "--",
            color=f"C{i}",
            label=f"random seed {row['seed']} (running mean)",
        )
    s = results["settings"]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"controller batch ({s['batch']} architectures each)")
    ax.set_ylabel(f"mean reward per batch ({s['reward']})")
    ax.set_title(
        f"MnasNet controller on supernet vs random sampling, target {results['target_ms']:g} ms",
        fontsize=10,
    )
    ax.legend(fontsize=7)
    save_figure(fig, path, tight=True)


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    sys.exit(main())
