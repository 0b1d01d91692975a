"""Benchmark: FBNet search (soft vs hard wall time) and its winner vs random and MobileNetV2.

On Fashion-MNIST with fbnet-small and a host latency table (or, when none exists in
latency_tables/, a MACs-based synthetic table — labelled so in the output), at a target of
``--target-frac`` (0.6) × the MobileNetV2-like reference's predicted latency:

* search wall time per epoch, soft and hard, same data and batch;
* test accuracy after ``--epochs`` of training (same recipe for all) of
  (1) the FBNet winners, (2) the best of random architectures under the target, picked
  by a 1-epoch proxy on the search data with the same wall-clock compute as the hard search,
  (3) the MobileNetV2-like reference at the widest stage widths that meet the target;
  over ``--seeds``, each with its predicted latency.

Prints a table and writes bench/results/search_fbnet.json.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.logs import show_on_stderr
from hwnas.latency import LatencyTable, synthetic_table
from hwnas.search.baselines import random_under
from hwnas.search.tables import find_table
from hwnas.search.fbnet import FBNetConfig, search
from hwnas.space import Arch, build_model, get_space, reference_arch

RESULTS = Path(__file__).parent / "results" / "search_fbnet.json"
WIDTHS = (1.25, 1.1, 1.0, 0.9, 0.8, 0.75, 0.7, 0.6, 0.5, 0.4)


def fit(
    space, arch, splits, epochs: int, seed: int, batch_size: int = 128, lr: float = 0.1
) -> torch.nn.Module:
    """The same plain recipe for every contender: SGD momentum 0.9, cosine lr, wd 4e-5."""
    torch.manual_seed(seed)
    model = build_model(space, arch)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5, nesterov=True)
    steps = epochs * math.ceil(len(splits.train) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    for e in range(epochs):
        model.train()
        for x, y in splits.loader("train", batch_size, seed=seed * 100 + e):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
    return model


@torch.no_grad()
def accuracy(model, loader) -> float:
    model.eval()
    right = total = 0
    for x, y in loader:
        right += int((model(x).argmax(1) == y).sum())
        total += len(y)
    return right / max(1, total)


def pick_table(space):
    path = find_table(space, "latency_tables")
    if path is not None:
        t = LatencyTable.load(path)
        return t, f"{path} ({t.provenance.get('device', '?')}, {t.provenance.get('backend', '?')})"
    return synthetic_table(space), "SYNTHETIC (MACs-based model, no host table in latency_tables/)"


def scaled_reference(space, table, target):
    for w in WIDTHS:
        a = reference_arch(space, "mobilenetv2", width=w)
        if table.predict(a, space) <= target:
            return Arch.of(space, a.choices, f"mobilenetv2 x{w}"), w
    a = table.repair(space, reference_arch(space, "mobilenetv2", width=WIDTHS[-1]), target)
    return Arch.of(space, a.choices, f"mobilenetv2 x{WIDTHS[-1]} repaired"), WIDTHS[-1]


def best_random(space, table, target, proxy_splits, budget_s: float, seed: int, max_n: int):
    """Random architectures under the target, 1 proxy epoch each, until the budget is spent."""
    rng = random.Random(seed)
    scored, t0 = [], time.perf_counter()
    while len(scored) < max_n and (len(scored) < 2 or time.perf_counter() - t0 < budget_s):
        a = random_under(space, table, target, rng)
        m = fit(space, a, proxy_splits, 1, seed)
        scored.append((accuracy(m, proxy_splits.loader("val", 256)), a))
    acc, arch = max(scored, key=lambda s: s[0])
    return Arch.of(space, arch.choices, "best-of-random"), len(scored), time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--target-frac", type=float, default=0.6)
    ap.add_argument("--search-subset", type=int, default=1000)
    ap.add_argument("--search-epochs", type=int, default=3)
    ap.add_argument("--soft-epochs", type=int, default=2)
    ap.add_argument("--train-subset", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=3, help="training epochs of every contender")
    ap.add_argument("--max-random", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from hwnas.data import load_dataset

    space = get_space("fbnet-small")
    table, table_label = pick_table(space)
    ref = reference_arch(space, "mobilenetv2")
    target = args.target_frac * table.predict(ref, space)
    lo, hi = table.bounds(space)
    print(
        f"table: {table_label}\ntarget {target:.3f} ms = {args.target_frac} x mobilenetv2 "
        f"({table.predict(ref, space):.3f} ms); space bounds {lo:.3f}..{hi:.3f} ms",
        file=sys.stderr,
    )
    result = {
        "table": table_label,
        "target_ms": target,
        "space": space.name,
        "mobilenetv2_ms": table.predict(ref, space),
        "args": vars(args),
        "search": {},
        "contenders": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench_fbnet_"))
    winners = {}
    for mode, seeds, epochs in (
        ("soft", args.seeds[:1], args.soft_epochs),
        ("hard", args.seeds, args.search_epochs),
    ):
        for s in seeds:
            cfg = FBNetConfig(
                target_ms=target,
                out=str(tmp / f"{mode}{s}"),
                mode=mode,
                epochs=epochs,
                warmup_epochs=1,
                subset=args.search_subset,
                batch_size=args.batch_size,
                seed=s,
            )
            t0 = time.perf_counter()
            rec = search(cfg, table=table, space=space)
            wall = time.perf_counter() - t0
            log = (tmp / f"{mode}{s}" / "log.csv").read_text().splitlines()
            result["search"][f"{mode}-seed{s}"] = {
                "wall_s": wall,
                "epochs": epochs,
                "s_per_epoch": rec.extra["search_seconds"] / epochs,
                "predicted_ms": rec.predicted_ms,
                "repaired": rec.extra["repaired"],
                "skip_share": rec.extra["skip_share"],
                "last_log": log[-1],
                "log_header": log[0],
            }
            winners[(mode, s)] = (Arch.of(space, list(rec.choices), f"fbnet-{mode}"), wall)
            print(
                f"search {mode} seed {s}: {wall:.0f} s, winner {rec.predicted_ms:.3f} ms",
                file=sys.stderr,
            )
    mnv2, w = scaled_reference(space, table, target)
    rows = []
    for s in args.seeds:
        splits = load_dataset(
            "fashion-mnist", resolution=space.resolution, seed=s, subset=args.train_subset
        )
        proxy = load_dataset(
            "fashion-mnist", resolution=space.resolution, seed=s, subset=args.search_subset
        )
        hard_arch, hard_wall = winners[("hard", s)]
        rnd, n_rnd, rnd_wall = best_random(
            space, table, target, proxy, hard_wall, s, args.max_random
        )
        contenders = [hard_arch, rnd, mnv2]
        if ("soft", s) in winners:
            contenders.insert(1, winners[("soft", s)][0])
        for arch in contenders:
            t0 = time.perf_counter()
            model = fit(space, arch, splits, args.epochs, s)
            acc = accuracy(model, splits.loader("test", 512))
            row = {
                "seed": s,
                "name": arch.name,
                "test_acc": acc,
                "predicted_ms": table.predict(arch, space),
                "train_s": time.perf_counter() - t0,
                "params": sum(p.numel() for p in model.parameters()),
            }
            if arch.name == "best-of-random":
                row.update(random_archs=n_rnd, random_wall_s=rnd_wall)
            rows.append(row)
            print(
                f"seed {s} {arch.name:>24}: acc {acc:.4f} at {row['predicted_ms']:.3f} ms",
                file=sys.stderr,
            )
    result["contenders"] = rows
    result["mobilenetv2_width"] = w
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    _print_table(result)
    return 0


def _print_table(result) -> None:
    print(f"\ntable: {result['table']}\ntarget {result['target_ms']:.3f} ms\n")
    print("| search | wall s | s/epoch | winner ms |\n|---|---|---|---|")
    for k, v in result["search"].items():
        print(f"| {k} | {v['wall_s']:.0f} | {v['s_per_epoch']:.1f} | {v['predicted_ms']:.3f} |")
    names = list(dict.fromkeys(r["name"] for r in result["contenders"]))
    print("\n| contender | test acc (mean over seeds) | per seed | predicted ms | params |")
    print("|---|---|---|---|---|")
    for n in names:
        rs = [r for r in result["contenders"] if r["name"] == n]
        accs = [r["test_acc"] for r in rs]
        print(
            f"| {n} | {np.mean(accs):.4f} | {' '.join(f'{a:.4f}' for a in accs)} | "
            f"{' '.join('%.2f' % r['predicted_ms'] for r in rs)} | "
            f"{' '.join(str(r['params']) for r in rs)} |"
        )


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    sys.exit(main())
