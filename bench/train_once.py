"""Benchmark: train the supernet once, then search any target in minutes (evolution).

1. ``hwnas supernet train`` on fbnet-small / Fashion-MNIST with ``make run``'s budget
   (``--subset`` images, ``--epochs``), timed; kept in ``--work`` and reused on the next run.
2. Evolution on that one supernet at each ``--fracs`` × the reference's predicted latency on
   the host table, each search timed (the cost per further target).
3. The evolution winners at ``--retrain-fracs`` retrained with the search-quality benchmark's
   recipe (``--final-epochs`` on ``--final-subset`` images, full test set) over ``--seeds``,
   beside the FBNet winners and the scaled reference of ``bench/results/search_quality.json``
   at the same target and seeds (trained here when that file has no entry).

Writes bench/results/train_once.json (resumable: finished pieces are kept) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from hwnas.logs import show_on_stderr
from hwnas.data import load_dataset
from hwnas.io import atomic_write_json
from hwnas.search.evolution import EvolutionConfig, search
from hwnas.space import Arch
from hwnas.supernet.store import MANIFEST
from hwnas.supernet.train import SupernetConfig, train_supernet

sys.path.insert(0, str(Path(__file__).parent))
from search_quality import fbnet_small_host, final_accuracy  # noqa: E402  (one recipe, one set-up)

RESULTS = Path(__file__).parent / "results" / "train_once.json"
QUALITY = Path(__file__).parent / "results" / "search_quality.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/bench-train-once")
    ap.add_argument("--subset", type=int, default=16000)
    ap.add_argument("--epochs", type=int, default=7)
    ap.add_argument("--fracs", type=float, nargs="+", default=[0.5, 0.7, 0.9])
    ap.add_argument("--retrain-fracs", type=float, nargs="*", default=[0.7])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--final-epochs", type=int, default=2)
    ap.add_argument("--final-subset", type=int, default=20000)
    args = ap.parse_args(argv)
    found = fbnet_small_host()
    if found is None:
        return 2
    space, path, table, ref_ms = found
    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    res.update(table=str(path), reference_ms=ref_ms, settings=vars(args))
    work = Path(args.work)
    sn = work / "supernet"

    if not (sn / MANIFEST).exists() or "supernet" not in res:
        t0 = time.perf_counter()
        m = train_supernet(
            SupernetConfig(
                out=str(sn),
                subset=args.subset,
                epochs=args.epochs,
                resume=(sn / "supernet.pt").exists(),
            ),
            progress=False,
        )
        res["supernet"] = {
            "seconds_this_run": time.perf_counter() - t0,
            "train_seconds": m["budget"]["seconds"],
            "random_paths_mean": m["random_paths"]["mean"],
            "random_paths": m["random_paths"]["held_out_acc"],
        }
        atomic_write_json(RESULTS, res)
    print(
        f"supernet: {res['supernet']['train_seconds']:.0f} s training, random paths "
        f"{100 * res['supernet']['random_paths_mean']:.1f}% held out",
        flush=True,
    )

    res.setdefault("targets", {})
    for frac in args.fracs:
        key = f"{frac:g}"
        if key in res["targets"]:
            continue
        target = round(frac * ref_ms, 4)
        t0 = time.perf_counter()
        rec = search(
            EvolutionConfig(
                target_ms=target,
                out=str(work / f"evo-{key}"),
                supernet=str(sn),
                resume=(work / f"evo-{key}").exists(),
            ),
            table=table,
            space=space,
        )
        res["targets"][key] = {
            "target_ms": target,
            "search_seconds": time.perf_counter() - t0,
            "choices": list(rec.choices),
            "predicted_ms": rec.predicted_ms,
            "supernet_acc": rec.extra["supernet"]["winner_acc"],
            "reference_supernet_acc": rec.extra["supernet"]["scaled_reference_acc"],
            "evaluations": rec.extra["evaluations"],
        }
        atomic_write_json(RESULTS, res)

    final_splits = None
    for frac in args.retrain_fracs:
        key = f"{frac:g}"
        t = res["targets"][key]
        t.setdefault("retrained", {})
        for seed in args.seeds:
            if str(seed) in t["retrained"]:
                continue
            final_splits = final_splits or load_dataset("fashion-mnist", subset=args.final_subset)
            entry = {
                "evolution": final_accuracy(
                    space, Arch.of(space, t["choices"]), final_splits, args.final_epochs, seed
                )
            }
            t["retrained"][str(seed)] = entry
            atomic_write_json(RESULTS, res)

    # FBNet, random search and the scaled reference at the same target and seeds, trained by
    # the same recipe in the search-quality benchmark
    quality = json.loads(QUALITY.read_text()).get("runs", {}) if QUALITY.exists() else {}
    for key, t in res["targets"].items():
        for seed, e in t.get("retrained", {}).items():
            q = quality.get(f"{key}/{seed}")
            if q and q.get("target_ms") == t["target_ms"]:
                e.update(
                    {who: q[who]["test_acc"] for who in ("fbnet", "random", "reference")},
                    fbnet_search_seconds=q["search_seconds"],
                )
    print(
        f"{'target':>8} {'pred ms':>8} {'search s':>9} {'supernet':>9} {'ref (sn)':>9}  "
        "retrained (mean ± std over seeds)"
    )
    for key, t in res["targets"].items():
        line = (
            f"{key + 'x':>8} {t['predicted_ms']:8.3f} {t['search_seconds']:9.0f} "
            f"{100 * t['supernet_acc']:8.1f}% {100 * t['reference_supernet_acc']:8.1f}%  "
        )
        for who in ("evolution", "fbnet", "reference", "random"):
            vals = [e[who] for e in t.get("retrained", {}).values() if who in e]
            if vals:
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                line += f"{who} {100 * statistics.mean(vals):.2f} ± {100 * sd:.2f}  "
        print(line)
    atomic_write_json(RESULTS, res)
    return 0


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    raise SystemExit(main())
