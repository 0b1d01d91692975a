"""Benchmark: how well does a trained supernet rank architectures?  Kendall τ between the
supernet's held-out accuracy (BatchNorm re-estimated per path, the whole held-out split: what
evolution's leaders are re-scored with) and stand-alone accuracy after the search-quality
recipe (``--epochs`` on all 48,000 training images, batch 128, whole test set).

Two sets of architectures, each ranked separately:

* **spread**: the 12 architectures of ``supernet_ranking.json`` (drawn under 0.3x … 1.2x the
  reference's latency on the host table), trained here once per ``--seeds`` seed (cached in
  the results file; the training is the slow part, ~2–4 min each on one core);
* **near**: every distinct architecture ``rescore.py`` retrained at 0.7x (evolution, random
  search and FBNet winners, the scaled reference; ``rescore_4e_all.json``, seeds averaged):
  networks of equal latency, which is what a search has to tell apart.

Usage: ``python bench/supernet_ranking.py runs/sn-a runs/sn-b ...`` (trained supernet folders);
prints τ per supernet and set, writes bench/results/supernet_ranking_4e_all.json (resumable:
stand-alone accuracies are kept and reused).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from search_quality import final_accuracy  # noqa: E402  (the one recipe)

from hwnas.data import load_dataset  # noqa: E402
from hwnas.io import atomic_write_json  # noqa: E402
from hwnas.latency import LatencyTable  # noqa: E402
from hwnas.search.evolution.ops import full_score  # noqa: E402
from hwnas.space import Arch, get_space  # noqa: E402
from hwnas.stats import kendall_tau  # noqa: E402
from hwnas.supernet.store import open_supernet  # noqa: E402

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "supernet_ranking_4e_all.json"
TABLE = Path("latency_tables/host-ort_fbnet-small_r32.csv")


def spread_set() -> list[tuple]:
    return [
        tuple(c) for c in json.loads((RESULTS / "supernet_ranking.json").read_text())["choices"]
    ]


def near_set(group: str = "evo-depth-0.7") -> dict[tuple, float]:
    """Distinct architectures rescore.py retrained in ``group``, test accuracy averaged over
    their seeds."""
    accs: dict[tuple, list[float]] = {}
    for k, v in json.loads((RESULTS / "rescore_4e_all.json").read_text())["entries"].items():
        if k.startswith(group + "/"):
            accs.setdefault(tuple(v["choices"]), []).append(v["test_acc"])
    return {a: statistics.mean(v) for a, v in accs.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("supernets", nargs="*", help="trained supernet folders")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument(
        "--no-train", action="store_true", help="rank only against accuracies already stored"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    space = get_space("fbnet-small")
    table = LatencyTable.load(TABLE) if TABLE.exists() else None
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    recipe = {"epochs": args.epochs, "subset": None, "batch_size": 128}
    if res.get("recipe", recipe) != recipe:
        print(f"{OUT} holds another recipe ({res['recipe']}); move it away first")
        return 2
    res["recipe"] = recipe
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
                atomic_write_json(OUT, res)
                print(f"spread {i + 1}/12 seed {seed}: {100 * acc:.2f}%", flush=True)

    sets = {
        "spread": {
            a: statistics.mean(alone[json.dumps(list(a))].values())
            for a in spread_set()
            if json.dumps(list(a)) in alone
        },
        "near": near_set(),
    }
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
        sups[folder] = row
        atomic_write_json(OUT, res)
        print(
            f"{folder}: random paths {row['random_paths_mean']:.3f}, "
            + ", ".join(f"τ {n} {row[n]['kendall_tau']:.2f} (n={row[n]['n']})" for n in sets),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
