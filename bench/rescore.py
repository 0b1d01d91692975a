"""Benchmark: do the search-quality verdicts hold under a longer final recipe?

``search_quality.py`` retrains every contender with a short recipe (2 epochs on 20,000 images),
where Fashion-MNIST accuracy of *any* architecture between 0.1 and 0.36 ms lands in
76–79% and one seed's noise (±1–2.8 points) is as large as the differences asked for.  This
script takes the architectures those benchmarks already found at one target — the FBNet
winners (select only, and with the evolutionary refinement), random search's winners, the
scaled reference, and evolution's winner on the once-trained supernet — and retrains each with
one longer recipe (``--epochs`` on ``--subset`` training images, ``None`` = all 48,000), over
``--seeds``.  Architectures found per search seed are trained once with that seed; the single
reference and evolution architectures are trained with every seed.

Resumable (one entry per architecture and seed); prints mean ± std per method and writes
bench/results/rescore_<epochs>e_<subset>[_wu<warm-up epochs>].json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from search_quality import final_accuracy, recipe_tag  # noqa: E402  (the one recipe)

from hwnas.logs import show_on_stderr
from hwnas.data import load_dataset  # noqa: E402
from hwnas.io import atomic_write_json  # noqa: E402
from hwnas.space import Arch, get_space  # noqa: E402
from hwnas.train import TrainConfig  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def contenders(frac: str, seeds: list[int]) -> list[tuple[str, int, list[int]]]:
    """(method, seed, choices) for every architecture the benchmarks stored at ``frac``."""
    out = []
    sq = json.loads((RESULTS / "search_quality.json").read_text())["runs"]
    for s in seeds:
        run = sq.get(f"{frac}/{s}")
        if run:
            out += [
                ("fbnet-select", s, run["fbnet"]["choices"]),
                ("random", s, run["random"]["choices"]),
                ("reference", s, run["reference"]["choices"]),
            ]
    target = next((r["target_ms"] for k, r in sq.items() if k.startswith(f"{frac}/")), None)
    refine = RESULTS / "fbnet_refine.json"
    for v in (json.loads(refine.read_text()) if refine.exists() else {}).values():
        if v["seed"] in seeds and v["target_ms"] == target:
            out.append(("fbnet+refine", v["seed"], v["choices"]))
    once = RESULTS / "train_once.json"
    if once.exists():
        t = json.loads(once.read_text())["targets"].get(frac)
        if t:
            out += [("evolution", s, t["choices"]) for s in seeds]
    return out


def from_runs(runs: list[Path], seeds: list[int]) -> list[tuple[str, int, list[int]]]:
    """One folder: ``from_run``.  Several (one search per seed at one target): each winner
    trained once with its own search seed, the scaled reference with every seed."""
    if len(runs) == 1:
        return from_run(runs[0], seeds)
    out = []
    for run in runs:
        rec = json.loads((run / "arch.json").read_text())
        seed = json.loads((run / "config.json").read_text())["seed"]
        out.append((rec.get("strategy", "winner"), seed, rec["choices"]))
    return out + [t for t in from_run(runs[0], seeds) if t[0] == "reference"]


def from_run(run: Path, seeds: list[int]) -> list[tuple[str, int, list[int]]]:
    """A finished search folder's winner and the scaled reference it was compared with, each
    trained with every seed."""
    rec = json.loads((run / "arch.json").read_text())
    ref = (rec.get("supernet") or {}).get("scaled_reference")
    if ref is None:  # FBNet's record names none: the same member of the family, from its table
        from hwnas.latency import LatencyTable
        from hwnas.search.baselines import scaled_reference

        space = get_space("fbnet-small")
        ref = {
            "choices": list(
                scaled_reference(space, LatencyTable.load(rec["table"]), rec["target_ms"]).choices
            )
        }
    out = [(rec.get("strategy", "winner"), s, rec["choices"]) for s in seeds]
    return out + [("reference", s, ref["choices"]) for s in seeds]


def from_results(recipe: str, groups: list[str], seeds: list[int]) -> list[tuple]:
    """(group, method, seed, choices) of every entry of ``rescore_<recipe>.json`` in
    ``groups`` with a seed in ``seeds``."""
    path = RESULTS / f"rescore_{recipe}.json"
    if not path.exists():
        sys.exit(f"{path}: no such results file")
    out = []
    for k, v in json.loads(path.read_text())["entries"].items():
        group, method, seed = k.split("/")
        if group in groups and int(seed) in seeds:
            out.append((group, method, int(seed), v["choices"]))
    return out


def recipe(epochs: int, subset: int | None) -> dict:
    """The retrain recipe as stored in ``rescore_<recipe>.json``."""
    warmup = TrainConfig(epochs=epochs).warmup_epochs
    return {"epochs": epochs, "subset": subset, "batch_size": 128, "warmup_epochs": warmup}


def add_entry(out: Path, key: str, choices, acc: float, how: dict) -> dict:
    """Store one retrain under ``key`` in ``out`` and return the file's content.  The file is
    re-read first: another process (``rescore.py``, ``capacity_priors.py``) may have added
    entries meanwhile, and they are kept."""
    done = json.loads(out.read_text()) if out.exists() else {"entries": {}}
    done["recipe"] = how
    done["entries"][key] = {"choices": list(choices), "test_acc": acc}
    atomic_write_json(out, done)
    return done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frac", default="0.7")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--subset", type=int, default=None)
    ap.add_argument("--only", nargs="*", help="methods to train (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--from-run",
        type=Path,
        nargs="+",
        help="retrain this search folder's "
        "winner and its scaled reference instead (entries keyed by the folder "
        "name); several folders (one search per seed): each winner with its seed",
    )
    ap.add_argument(
        "--group",
        help="with --from-run: the entries' key (default: the first folder's name); with "
        "--from-results: the groups to retrain (comma-separated)",
    )
    ap.add_argument(
        "--from-results",
        metavar="RECIPE",
        help="retrain the architectures another recipe's results file "
        "(rescore_RECIPE.json, e.g. 4e_all) holds under --group, with the same keys "
        "(method and seed), so that two recipes compare entry by entry",
    )
    ap.add_argument(
        "--arch",
        type=Path,
        nargs="+",
        help="retrain these architecture files (`hwnas arch ref ... -o`, a run's arch.json) "
        "with every seed, keyed <--group>/<file stem>/<seed> (e.g. the space's ceiling)",
    )
    args = ap.parse_args(argv)
    if args.arch and not args.group:
        ap.error("--arch needs --group (the entries' key)")
    if args.from_results and not args.group:
        ap.error("--from-results needs --group (the groups to retrain, comma-separated)")
    torch.set_num_threads(args.threads)
    space = get_space("fbnet-small")
    out = RESULTS / f"rescore_{recipe_tag(args.epochs, args.subset)}.json"
    done = json.loads(out.read_text()) if out.exists() else {"entries": {}}
    done["recipe"] = recipe(args.epochs, args.subset)
    if args.from_run:
        args.frac = args.group or args.from_run[0].name
    if args.arch:
        todo = [
            (args.group, f.stem, s, json.loads(f.read_text())["choices"])
            for f in args.arch
            for s in args.seeds
        ]
    elif args.from_results:
        todo = from_results(args.from_results, args.group.split(","), args.seeds)
    elif args.from_run:
        todo = [(args.frac, *t) for t in from_runs(args.from_run, args.seeds)]
    else:
        todo = [(args.frac, *t) for t in contenders(args.frac, args.seeds)]
    splits = load_dataset("fashion-mnist", subset=args.subset)
    for group, method, seed, choices in todo:
        if args.only and method not in args.only:
            continue
        k = f"{group}/{method}/{seed}"  # group: the run folder's name with --from-run
        if k in done["entries"]:
            continue
        acc = final_accuracy(space, Arch.of(space, choices), splits, args.epochs, seed)
        done = add_entry(out, k, choices, acc, done["recipe"])
        print(f"{k}: {100 * acc:.2f}%", flush=True)
    # re-read: another process may have stored entries since this one's last add_entry
    done = json.loads(out.read_text()) if out.exists() else done
    for group in sorted({t[0] for t in todo}):
        summary: dict[str, list[float]] = {}
        for k, v in done["entries"].items():
            if k.startswith(f"{group}/"):
                summary.setdefault(k.split("/")[1], []).append(100 * v["test_acc"])
        where = group if args.from_run or args.from_results or args.arch else f"{group}x"
        print(f"\n{where}, recipe {out.stem.removeprefix('rescore_')}:")
        for m, accs in sorted(summary.items()):
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            print(f"  {m:>14}  n={len(accs)}  {statistics.mean(accs):6.2f} ± {sd:4.2f}")
        done.pop("summary", None)
        done.setdefault("summaries", {})[group] = {
            m: {
                "n": len(a),
                "mean": statistics.mean(a),
                "std": statistics.stdev(a) if len(a) > 1 else 0.0,
            }
            for m, a in summary.items()
        }
    atomic_write_json(out, done)
    return 0


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    sys.exit(main())
