"""Benchmark: how well does a trained supernet rank architectures?  Kendall τ between the
supernet's held-out accuracy (BatchNorm re-estimated per path, the whole held-out split: what
evolution's leaders are re-scored with) and stand-alone accuracy after the search-quality
recipe (``--epochs`` on all 48,000 training images, batch 128, whole test set; the trainer's
default LR warm-up, named in the results file: ``4e_all`` was the recipe without it).

Two sets of architectures, each ranked separately:

* **spread**: the 12 architectures of ``supernet_ranking.json`` (drawn under 0.3x … 1.2x the
  reference's latency on the host table), trained here once per ``--seeds`` seed (cached in
  the results file; the training is the slow part, ~2–4 min each on one core) and ranked by
  their mean over the seeds trained (0, 1 and 2 since 2026-12-05: one seed's 4-epoch run
  sometimes starts badly, 4–6 points below the others);
* **near**: every distinct architecture ``rescore.py`` retrained at 0.7x (evolution, random
  search and FBNet winners, the scaled reference; the ``--near`` groups of the same recipe's
  ``rescore_<recipe>.json``, seeds averaged):
  networks of equal latency, which is what a search has to tell apart.

Beside every supernet's τ it prints what ranks each set without one (the table's predicted
latency, the MACs) and how alike two training seeds rank the spread set.

Usage: ``python bench/supernet_ranking.py runs/sn-a runs/sn-b ...`` (trained supernet folders);
prints τ per supernet and set, writes bench/results/supernet_ranking_<recipe>.json (resumable:
stand-alone accuracies are kept and reused).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from search_quality import final_accuracy, recipe_tag  # noqa: E402  (the one recipe)

from hwnas.data import load_dataset  # noqa: E402
from hwnas.io import atomic_write_json  # noqa: E402
from hwnas.latency import LatencyTable  # noqa: E402
from hwnas.search.evolution.ops import full_score  # noqa: E402
from hwnas.space import Arch, arch_complexity, get_space  # noqa: E402
from hwnas.stats import kendall_tau  # noqa: E402
from hwnas.supernet.store import open_supernet  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TABLE = Path("latency_tables/host-ort_fbnet-small_r32.csv")


def spread_set() -> list[tuple]:
    return [
        tuple(c) for c in json.loads((RESULTS / "supernet_ranking.json").read_text())["choices"]
    ]


def spread_truth(alone: dict) -> dict[tuple, float]:
    """The spread set's architectures that have stand-alone accuracies in ``alone`` (the
    results file's "standalone": choices JSON -> {seed: accuracy}), averaged over seeds."""
    return {
        a: statistics.mean(alone[json.dumps(list(a))].values())
        for a in spread_set()
        if json.dumps(list(a)) in alone
    }


def near_set(tag: str, groups: list[str]) -> dict[tuple, float]:
    """Distinct architectures rescore.py retrained (recipe ``tag``) in ``groups``, test
    accuracy averaged over their seeds."""
    accs: dict[tuple, list[float]] = {}
    path = RESULTS / f"rescore_{tag}.json"
    entries = json.loads(path.read_text())["entries"] if path.exists() else {}
    for k, v in entries.items():
        if k.split("/")[0] in groups:
            accs.setdefault(tuple(v["choices"]), []).append(v["test_acc"])
    return {a: statistics.mean(v) for a, v in accs.items()}


def baselines(sets: dict, space, table, alone: dict) -> dict:
    """What ranks each set without a supernet: the table's predicted latency and the MACs
    (capacity alone), and how far one training seed ranks like another (the mean τ over
    pairs of seeds, spread set only): the floor a supernet must beat and the ceiling the
    stand-alone side allows."""
    out = {}
    for name, truth in sets.items():
        archs = list(truth)
        if len(archs) < 2:
            continue
        acc = [truth[a] for a in archs]
        macs = [arch_complexity(space, Arch.of(space, list(a)))[0].macs for a in archs]
        seeds = sorted(set.intersection(*(set(alone.get(json.dumps(list(a)), {})) for a in archs)))
        pairs = [
            kendall_tau(*([alone[json.dumps(list(a))][s] for a in archs] for s in pair))
            for pair in itertools.combinations(seeds, 2)
        ]
        out[name] = {
            "n": len(archs),
            "latency": round(
                kendall_tau([table.predict(Arch.of(space, list(a)), space) for a in archs], acc), 3
            )
            if table
            else None,
            "macs": kendall_tau(macs, acc),
            "seeds": seeds,
            "seed_vs_seed": round(statistics.mean(pairs), 3) if pairs else None,
        }
    return out


def pooled(row: dict) -> dict:
    """Both sets as one (each distinct architecture once): a τ over ~23 architectures, whose
    spread under no ranking (sd ≈ 0.15) is below that of either set alone (≈ 0.22)."""
    seen: dict[tuple, tuple[float, float]] = {}
    for name in ("spread", "near"):
        r = row.get(name)
        for c, sup, alone in zip(r["choices"], r["supernet_acc"], r["standalone_acc"]) if r else ():
            seen.setdefault(tuple(c), (sup, alone))
    sup, alone = [v[0] for v in seen.values()], [v[1] for v in seen.values()]
    return {"n": len(seen), "kendall_tau": kendall_tau(sup, alone)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("supernets", nargs="*", help="trained supernet folders")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument(
        "--near",
        nargs="+",
        default=["evo-depth-0.7"],
        help="rescore.py groups (same recipe) whose architectures form the near set",
    )
    ap.add_argument(
        "--no-train", action="store_true", help="rank only against accuracies already stored"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    space = get_space("fbnet-small")
    table = LatencyTable.load(TABLE) if TABLE.exists() else None
    tag = recipe_tag(args.epochs, None)
    out = RESULTS / f"supernet_ranking_{tag}.json"
    res = json.loads(out.read_text()) if out.exists() else {}
    res["recipe"] = tag
    alone = res.setdefault("standalone", {})  # "choices json" -> {seed: acc}

    if not args.no_train:
        splits = None
        for i, a in enumerate(spread_set()):
            for seed in args.seeds:
                k = json.dumps(list(a))
                if str(seed) in alone.get(k, {}):
                    continue
                splits = splits or load_dataset("fashion-mnist", subset=None)
                acc = final_accuracy(space, Arch.of(space, list(a)), splits, args.epochs, seed)
                alone.setdefault(k, {})[str(seed)] = acc
                atomic_write_json(out, res)
                print(f"spread {i + 1}/12 seed {seed}: {100 * acc:.2f}%", flush=True)

    sets = {
        "spread": spread_truth(alone),
        "near": near_set(tag, args.near),
    }
    res["baselines"] = baselines(sets, space, table, alone)
    atomic_write_json(out, res)
    for name, row in res["baselines"].items():
        print(
            f"{name} ({row['n']}): without a supernet, predicted latency τ {row['latency']}, "
            f"MACs τ {row['macs']:.2f}; one seed against another τ {row['seed_vs_seed']}",
            flush=True,
        )
    sups = res.setdefault("supernets", {})
    for folder in args.supernets:
        net, manifest, splits = open_supernet(folder, space, "fashion-mnist")
        row = {
            "random_paths_mean": manifest["random_paths"]["mean"],
            "budget": manifest["budget"],
        }
        for name, truth in sets.items():
            archs = list(truth)
            sup = [full_score(net, space, a, splits, seed=0) for a in archs]
            row[name] = {
                "n": len(archs),
                "kendall_tau": kendall_tau(sup, [truth[a] for a in archs]),
                "supernet_acc": sup,
                "standalone_acc": [truth[a] for a in archs],
                "predicted_ms": [table.predict(Arch.of(space, list(a)), space) for a in archs]
                if table
                else None,
                "choices": [list(a) for a in archs],
            }
        row["all"] = pooled(row)
        sups[folder] = row
        atomic_write_json(out, res)
        print(
            f"{folder}: random paths {row['random_paths_mean']:.3f}, "
            + ", ".join(
                f"τ {n} {row[n]['kendall_tau']:.2f} (n={row[n]['n']})" for n in (*sets, "all")
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
