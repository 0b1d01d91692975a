"""Benchmark: how far apart do architectures of one latency retrain, and is any of them a point
above the scaled reference?

The search-quality issue asks the 0.7x winner to retrain one point above the scaled
MobileNetV2-like reference.  Searches land within a point of it, and so did every distinct
0.7x architecture ``rescore.py`` and ``capacity_priors.py`` retrained (17 of them).  This
script measures the space itself at one target, with the one final recipe
(``search_quality.final_accuracy``: 4 epochs on all 48,000 training images):

* the scaled reference, once per ``--ref-seeds`` seed (its mean is the bar);
* the four capacity priors' DP architectures (``capacity_priors.prior_arch``);
* the winner of each ``--from-run`` search folder;
* ``--random`` architectures drawn uniformly from the space and repaired under T by the
  table's DP (as random search's draws are), kept when their predicted latency is in
  [``--band``·T, T]: equal latency, which is what a search has to tell apart (uniform draws
  land there about once in 70,000).

All but the reference and the priors (``--prior-seeds``) train with ``--seed``.  Trainings
run in ``--workers`` processes (one torch thread each) on ``--accelerator``; on a GPU in
float32 (``--amp`` for the trainer's mixed precision), so the recipe is the CPU's.  Each result is appended to the results file as
it finishes (``--resume`` skips those done); after ``--deadline-s`` no new training starts.

``rank SUPERNET``: the supernet's held-out accuracy (BatchNorm re-estimated, the whole held-out
split: what evolution's leaders are re-scored with) of every architecture retrained, and its
Kendall τ against the retrained accuracies.

Usage::

    python bench/equal_latency.py train --workers 12 --accelerator cuda --random 40
    python bench/equal_latency.py rank runs/supernet-fbnet-small-fmnist

Writes bench/results/equal_latency_<recipe>.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import json
import multiprocessing
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from capacity_priors import PRIORS, prior_arch  # noqa: E402
from search_quality import final_accuracy, recipe_tag  # noqa: E402  (the one recipe)

from hwnas.errors import HwnasError  # noqa: E402
from hwnas.io import atomic_write_json  # noqa: E402
from hwnas.latency import LatencyTable  # noqa: E402
from hwnas.logs import show_on_stderr  # noqa: E402
from hwnas.search.baselines import scaled_reference  # noqa: E402
from hwnas.space import Arch, get_space, random_arch, reference_arch  # noqa: E402
from hwnas.stats import kendall_tau  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TABLE = Path("latency_tables/host-ort_fbnet-small_r32.csv")
SPACE = "fbnet-small"


def contenders(space, table, target: float, args) -> list[dict]:
    """The trainings to run, in order: (name, choices, seed, predicted ms)."""
    ref = scaled_reference(space, table, target)
    out = [("reference", ref, s) for s in args.ref_seeds]
    out += [
        (f"prior-{p}", prior_arch(space, table, target, p), s)
        for s in args.prior_seeds or [args.seed]
        for p in PRIORS
    ]
    for run in args.from_run:
        rec = json.loads((run / "arch.json").read_text())
        out.append((f"winner-{run.name}", Arch.of(space, rec["choices"]), args.seed))
    rng, drawn, tries = random.Random(args.seed), set(), 0
    while len(drawn) < args.random and tries < 100 * args.random:
        tries += 1
        a = table.repair(space, random_arch(space, rng=rng), target)
        if args.band * target <= table.predict(a, space) <= target and a.choices not in drawn:
            drawn.add(a.choices)
            out.append((f"random-{len(drawn) - 1}", a, args.seed))
    return [
        {"name": n, "choices": list(a.choices), "seed": s, "ms": table.predict(a, space)}
        for n, a, s in out
    ]


def results_path(args) -> Path:
    """``--out``, or the recipe's results file in bench/results."""
    return args.out or RESULTS / f"equal_latency_{recipe_tag(args.epochs, None)}.json"


def key(job: dict) -> str:
    return f"{job['name']}/{job['seed']}"


# --------------------------------------------------------------------------- workers

_splits = None


def _init(amp: bool) -> None:
    """A worker: one torch thread; the trainer's GPU autocast off unless ``amp``."""
    torch.set_num_threads(1)
    if not amp:
        from hwnas import accelerator

        policy = accelerator.Accelerator.for_device.__func__

        def float32(cls, device):
            return dataclasses.replace(policy(cls, device), amp_dtype=None)

        accelerator.Accelerator.for_device = classmethod(float32)


def _train(job: dict, epochs: int, accelerator: str, deadline: float) -> dict | None:
    """Retrain one contender (None when the deadline has passed before it starts)."""
    global _splits
    if time.time() > deadline:
        return None
    from hwnas.data import load_dataset

    _splits = _splits or load_dataset("fashion-mnist")
    space = get_space(SPACE)
    t0 = time.perf_counter()
    arch = Arch.of(space, job["choices"])
    acc = final_accuracy(space, arch, _splits, epochs, job["seed"], accelerator)
    return {**job, "test_acc": acc, "seconds": time.perf_counter() - t0}


def cmd_train(args) -> int:
    if not args.table.exists():
        sys.exit(f"{args.table}: no table; run `hwnas profile --device host --space {SPACE}`")
    space = get_space(SPACE)
    table = LatencyTable.load(args.table)
    ref_ms = table.predict(reference_arch(space, "mobilenetv2"), space)
    target = args.target_frac * ref_ms
    jobs = contenders(space, table, target, args)
    out = results_path(args)
    doc = json.loads(out.read_text()) if args.resume and out.exists() else {}
    done = doc.get("entries", {})
    todo = [j for j in jobs if key(j) not in done]
    doc.update(
        table=str(args.table),
        reference_ms=ref_ms,
        target_frac=args.target_frac,
        target_ms=target,
        band=args.band,
        recipe=recipe_tag(args.epochs, None),
        accelerator=args.accelerator,
        amp=args.amp,
        entries=done,
    )
    print(
        f"target {target:.4f} ms ({args.target_frac}x {ref_ms:.4f}); {len(jobs)} trainings, "
        f"{len(todo)} to run on {args.workers} worker(s), {args.accelerator}",
        flush=True,
    )
    deadline = time.time() + args.deadline_s
    ctx = multiprocessing.get_context("spawn")
    t0 = time.perf_counter()
    with cf.ProcessPoolExecutor(args.workers, ctx, initializer=_init, initargs=(args.amp,)) as ex:
        futures = [ex.submit(_train, j, args.epochs, args.accelerator, deadline) for j in todo]
        for f in cf.as_completed(futures):
            r = f.result()
            if r is None:
                continue
            done[key(r)] = r
            atomic_write_json(out, doc)
            print(
                f"{time.perf_counter() - t0:6.0f} s  {key(r):28s} {r['ms']:.4f} ms  "
                f"{100 * r['test_acc']:.2f}%  ({r['seconds']:.0f} s)",
                flush=True,
            )
    summarise(doc)
    atomic_write_json(out, doc)
    return 0


def summarise(doc: dict) -> None:
    """Add and print the summary: the reference's mean, the others against it."""
    e = list(doc["entries"].values())
    ref = [r["test_acc"] for r in e if r["name"] == "reference"]
    others = sorted((r for r in e if r["name"] != "reference"), key=lambda r: -r["test_acc"])
    if not ref or not others:
        return
    bar = statistics.mean(ref)
    rand = [r["test_acc"] for r in others if r["name"].startswith("random-")]
    s = {
        "reference_mean": bar,
        "reference_std": statistics.stdev(ref) if len(ref) > 1 else 0.0,
        "reference_n": len(ref),
        "others_n": len(others),
        "above_reference": sum(r["test_acc"] > bar for r in others),
        "above_reference_plus_1": sum(r["test_acc"] >= bar + 0.01 for r in others),
        "best": {k: others[0][k] for k in ("name", "test_acc", "ms")},
        "random_mean": statistics.mean(rand) if rand else None,
        "random_std": statistics.stdev(rand) if len(rand) > 1 else None,
    }
    doc["summary"] = s
    print(
        f"reference {100 * bar:.2f} ± {100 * s['reference_std']:.2f}% (n={len(ref)}); "
        f"{s['above_reference']} of {len(others)} others above it, "
        f"{s['above_reference_plus_1']} a point above; best {others[0]['name']} "
        f"{100 * others[0]['test_acc']:.2f}%"
        + (f"; random {100 * s['random_mean']:.2f} ± {100 * s['random_std']:.2f}%" if rand else "")
    )


def cmd_rank(args) -> int:
    from hwnas.search.evolution.ops import full_score
    from hwnas.supernet.store import open_supernet

    out = results_path(args)
    if not out.exists():
        sys.exit(f"{out}: nothing retrained yet; run `bench/equal_latency.py train` first")
    doc = json.loads(out.read_text())
    space = get_space(SPACE)
    torch.set_num_threads(args.threads)
    net, _, splits = open_supernet(args.supernet, space, "fashion-mnist")
    truth: dict[tuple, list[float]] = {}
    for r in doc["entries"].values():
        truth.setdefault(tuple(r["choices"]), []).append(r["test_acc"])
    archs = list(truth)
    scores = [full_score(net, space, a, splits, 0) for a in archs]
    alone = [statistics.mean(truth[a]) for a in archs]
    tau = kendall_tau(scores, alone)
    doc.setdefault("rank", {})[str(args.supernet)] = {
        "n": len(archs),
        "kendall_tau": tau,
        "supernet_acc": {json.dumps(list(a)): s for a, s in zip(archs, scores)},
    }
    atomic_write_json(out, doc)
    print(f"{args.supernet}: Kendall τ {tau:.3f} over {len(archs)} architectures")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="retrain the contenders")
    t.add_argument("--table", type=Path, default=TABLE)
    t.add_argument("--target-frac", type=float, default=0.7)
    t.add_argument("--band", type=float, default=0.9, help="random draws' lowest latency / T")
    t.add_argument("--random", type=int, default=24)
    t.add_argument("--ref-seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--prior-seeds", type=int, nargs="+", help="the priors' seeds (--seed)")
    t.add_argument("--from-run", type=Path, nargs="*", default=[])
    t.add_argument("--workers", type=int, default=1)
    t.add_argument("--accelerator", default="cpu")
    t.add_argument("--amp", action="store_true", help="the trainer's GPU mixed precision")
    t.add_argument("--deadline-s", type=float, default=float("inf"))
    t.add_argument("--resume", action="store_true")
    r = sub.add_parser("rank", help="the supernet's τ against the retrained accuracies")
    r.add_argument("supernet", type=Path)
    r.add_argument("--threads", type=int, default=2)
    for p in (t, r):
        p.add_argument("--epochs", type=int, default=4)
        p.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    try:
        return cmd_train(args) if args.cmd == "train" else cmd_rank(args)
    except HwnasError as e:  # a bad table, supernet or architecture: one line
        sys.exit(str(e))


if __name__ == "__main__":
    show_on_stderr()
    sys.exit(main())
