"""Benchmark: what evolution from θ's candidates (``FBNetConfig.refine``) buys over selection
alone, on finished FBNet searches.

For each FBNet run folder given (``ckpt.pt``: supernet weights and θ; ``config.json``: target
and seed), on the search's own data split: ``select`` (16 candidates from θ, scored in the
supernet), then ``refine`` (``--generations`` of evolution from them); the refined winner is
retrained with the search-quality benchmark's recipe (``--final-epochs`` on
``--final-subset`` images, the run's seed) and tested on the whole test set.  Results go to
bench/results/fbnet_refine.json, one entry per run folder (compare with search_quality.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from hwnas.logs import show_on_stderr
from hwnas.data import load_dataset
from hwnas.io import atomic_write_json
from hwnas.search.fbnet import refine, select
from hwnas.supernet import FBNetSupernet

sys.path.insert(0, str(Path(__file__).parent))
from search_quality import fbnet_small_host, final_accuracy  # noqa: E402  (one recipe, one set-up)

RESULTS = Path(__file__).parent / "results" / "fbnet_refine.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="FBNet run folders (ckpt.pt, config.json)")
    ap.add_argument("--generations", type=int, default=6)
    ap.add_argument("--final-epochs", type=int, default=2)
    ap.add_argument("--final-subset", type=int, default=20000)
    args = ap.parse_args(argv)
    found = fbnet_small_host()
    if found is None:
        return 2
    space, _, table, _ = found
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for run in map(Path, args.runs):
        cfg = json.loads((run / "config.json").read_text())
        key = f"{cfg['target_ms']:g}/{cfg['seed']}"
        if key in results:
            continue
        blob = torch.load(run / "ckpt.pt", weights_only=True)
        net = FBNetSupernet(space)
        net.load_state_dict(blob["net"])
        splits = load_dataset(cfg["data"], cfg["data_root"], seed=cfg["seed"], subset=cfg["subset"])
        t0 = time.perf_counter()
        scored = select(net, space, table, blob["theta"], cfg["target_ms"], splits, 16, cfg["seed"])
        refined = refine(
            net, space, table, cfg["target_ms"], splits, scored, args.generations, cfg["seed"]
        )
        seconds = time.perf_counter() - t0
        final = load_dataset("fashion-mnist", subset=args.final_subset)
        w = refined[0][0]
        results[key] = {
            "target_ms": cfg["target_ms"],
            "seed": cfg["seed"],
            "select_best_acc": scored[0][1],
            "refine_best_acc": refined[0][1],
            "evaluated": len(refined),
            "seconds": seconds,
            "choices": list(w.choices),
            "predicted_ms": table.predict(w, space),
            "test_acc": final_accuracy(space, w, final, args.final_epochs, cfg["seed"]),
        }
        if RESULTS.exists():  # keep what a parallel run wrote meanwhile
            results = {**json.loads(RESULTS.read_text()), **results}
        atomic_write_json(RESULTS, results)
    for key, r in sorted(results.items()):
        print(
            f"{key}: supernet {100 * r['select_best_acc']:.1f}% → "
            f"{100 * r['refine_best_acc']:.1f}% ({r['evaluated']} scored, {r['seconds']:.0f} s), retrained "
            f"{100 * r['test_acc']:.2f}% @ {r['predicted_ms']:.3f} ms"
        )
    return 0


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    raise SystemExit(main())
