"""Benchmark: does the confirmation's short training rank networks of one latency as the final
recipe does, and better than the supernets?

``bench/equal_latency.py`` retrained 45 networks of fbnet-small at one target with the
4-epoch recipe (the scaled reference and the capacity priors over several seeds) and ranked
them with several supernets (``rank``).  This script trains a spread of them with the
searches' confirmation (``hwnas.search.confirm.confirm``: ``--epochs`` from scratch, seeded,
scored on the held-out split) and prints Kendall τ against the 4-epoch accuracy (the mean
over seeds where there are several) — the confirmation's and each supernet's, over the same
networks.

The networks: the scaled reference, the four capacity priors' picks, and every ``--every``-th
random draw in order of retrained accuracy (a spread from the best to the worst).  The
trainings are kept in ``runs/bench-confirm-fidelity/confirm.json`` (resumable).

Usage: ``python bench/confirm_fidelity.py [--epochs 1] [--every 3] [--threads 2] [--images N]``
Writes bench/results/confirm_fidelity.json (``confirm_fidelity_N.json`` with ``--images``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from hwnas.data import load_dataset
from hwnas.io import atomic_write_json
from hwnas.logs import show_on_stderr
from hwnas.search.confirm import confirm
from hwnas.space import get_space
from hwnas.stats import kendall_tau

RESULTS = Path(__file__).parent / "results"
STUDY = RESULTS / "equal_latency_4e_all_wu0.3.json"
WORK = Path("runs/bench-confirm-fidelity")


def networks(study: dict, every: int) -> list[dict]:
    """The reference, the priors and every ``every``-th random draw by retrained accuracy,
    each with its mean 4-epoch accuracy (``truth``) and its number of retrains."""
    by_name: dict[str, dict] = {}
    for e in study["entries"].values():
        row = by_name.setdefault(
            e["name"], {"name": e["name"], "choices": e["choices"], "accs": []}
        )
        row["accs"].append(e["test_acc"])
    rows = [
        {**r, "truth": statistics.mean(r["accs"]), "retrains": len(r["accs"])}
        for r in by_name.values()
    ]
    fixed = [r for r in rows if not r["name"].startswith("random-")]
    randoms = sorted(
        (r for r in rows if r["name"].startswith("random-")), key=lambda r: -r["truth"]
    )
    return [{k: v for k, v in r.items() if k != "accs"} for r in fixed + randoms[::every]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--every", type=int, default=3, help="every n-th random draw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (2 on an idle machine)")
    ap.add_argument(
        "--images", type=int, default=None, help="training images per network (default: all)"
    )
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args(argv)
    show_on_stderr()
    torch.set_num_threads(args.threads)
    if not STUDY.exists():
        sys.exit(f"{STUDY}: no equal-latency study; run bench/equal_latency.py train first")
    study = json.loads(STUDY.read_text())
    rows = networks(study, args.every)
    space = get_space("fbnet-small")
    tag = "".join(
        f"_{k}{v}"
        for k, v in (("", args.images), ("b", args.batch_size), ("s", args.seed))
        if v is not None and (k, v) not in (("b", 128), ("s", 0))
    )
    work = WORK.with_name(WORK.name + tag.replace("_", "-"))
    work.mkdir(parents=True, exist_ok=True)
    trained = confirm(
        space,
        [{"choices": r["choices"], "source": r["name"]} for r in rows],
        load_dataset("fashion-mnist", seed=args.seed),
        work,
        args.epochs,
        args.seed,
        images=args.images,
        batch_size=args.batch_size,
    )
    proxy = {tuple(t["choices"]): t["proxy_acc"] for t in trained}
    truth = [r["truth"] for r in rows]
    taus = {"confirmation": kendall_tau([proxy[tuple(r["choices"])] for r in rows], truth)}
    for supernet, ranked in study.get("rank", {}).items():
        scores = ranked["supernet_acc"]
        taus[supernet] = kendall_tau([scores[str(r["choices"])] for r in rows], truth)
    for r in rows:
        r["proxy_acc"] = proxy[tuple(r["choices"])]
        print(
            f"{r['name']:14s} {args.epochs}-epoch {100 * r['proxy_acc']:.2f}%   "
            f"4-epoch {100 * r['truth']:.2f}% ({r['retrains']} retrains)"
        )
    for who, tau in taus.items():
        print(f"Kendall τ against the 4-epoch recipe, {len(rows)} networks: {who} {tau:.3f}")
    name = "confirm_fidelity" + tag
    atomic_write_json(
        RESULTS / f"{name}.json",
        {
            "study": STUDY.name,
            "table": study["table"],
            "target_ms": study["target_ms"],
            "epochs": args.epochs,
            "images": args.images,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "threads": torch.get_num_threads(),
            "networks": rows,
            "kendall_tau": taus,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
