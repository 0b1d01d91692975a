"""Probe: does a short fine-tune from the supernet's weights rank architectures better than
the supernet's own accuracy (BatchNorm re-estimated)?

Every architecture of ``supernet_ranking.py``'s two sets (12 spread over 0.3x-1.2x the
reference's latency, 11 retrained at 0.7x; 23 in all, stand-alone accuracy from that script's
results) is copied out of a trained supernet (``FBNetSupernet.extract``) and trained on on
the supernet's own training split (SGD Nesterov, momentum 0.9, constant ``--lr``, batch 128,
augmented), its held-out accuracy read on the first 4,096 held-out images after each of
``--steps``.  Prints Kendall τ against the stand-alone accuracies per step count, beside the
supernet's τ over the same architectures; ``--scratch``: the same steps from a fresh
initialisation instead (is there anything in the inherited weights?).

Usage: ``python bench/finetune_ranking.py runs/supernet-fbnet-small-fmnist [--part 0 --parts 2]``
(run the parts in parallel, one per core); resumable; writes
bench/results/finetune_ranking.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from supernet_ranking import RESULTS, near_set, spread_set, spread_truth  # noqa: E402

from hwnas.io import atomic_write_json  # noqa: E402
from hwnas.space import Arch, build_model, get_space  # noqa: E402
from hwnas.stats import kendall_tau  # noqa: E402
from hwnas.supernet.store import open_supernet  # noqa: E402
from hwnas.train import TrainConfig, evaluate, make_optimizer, nhwc  # noqa: E402

OUT = RESULTS / "finetune_ranking.json"
RECIPE = "4e_all_wu0.3"
NEAR = ["evo-depth-0.7", "evo-s14-0.7", "fb-all4-0.7"]


def truth() -> dict[tuple, float]:
    res = json.loads((RESULTS / f"supernet_ranking_{RECIPE}.json").read_text())
    return {**spread_truth(res["standalone"]), **near_set(RECIPE, NEAR)}


def held_out_accuracy(model: nn.Module, batches) -> float:
    accuracy = evaluate(model, batches)[1]  # the trainer's evaluation (eval mode)
    model.train()
    return accuracy


def tune(model: nn.Module, splits, steps: list[int], lr: float, val) -> dict[int, float]:
    """Train ``model`` for max(steps) steps; held-out accuracy after each of ``steps``."""
    opt = make_optimizer(model, TrainConfig(lr=lr))
    loss_fn = nn.CrossEntropyLoss()
    got, step = {}, 0
    for epoch in itertools.count():
        for x, y in splits.loader("train", 128, shuffle=True, augment=True, seed=1000 + epoch):
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step in steps:
                got[step] = held_out_accuracy(model, val)
            if step >= max(steps):
                return got


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("supernet")
    ap.add_argument("--steps", type=int, nargs="+", default=[25, 75, 150, 300])
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--scratch", action="store_true")
    ap.add_argument("--part", type=int, default=0)
    ap.add_argument("--parts", type=int, default=1)
    ap.add_argument(
        "--name", help="the supernet's key in supernet_ranking's results (default: the folder)"
    )
    args = ap.parse_args(argv)
    name = args.name or args.supernet
    torch.set_num_threads(1)
    space = get_space("fbnet-small")
    acc = truth()
    mode = f"{'scratch' if args.scratch else 'finetune'}_lr{args.lr}"
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    rows = res.setdefault(name, {}).setdefault(mode, {})
    net, _, splits = open_supernet(args.supernet, space, "fashion-mnist")
    val = list(itertools.islice(splits.loader("val", 256, shuffle=False, augment=False), 16))
    for a in sorted(acc)[args.part :: args.parts]:
        key = json.dumps(list(a))
        if key in rows:
            continue
        t0 = time.perf_counter()
        arch = Arch.of(space, list(a))
        if args.scratch:
            torch.manual_seed(0)
            model = build_model(space, arch)
        else:
            model = net.extract(arch)
        got = tune(nhwc(model.train()), splits, args.steps, args.lr, val)
        rows[key] = {"standalone": acc[a], "tuned": got, "seconds": time.perf_counter() - t0}
        res = json.loads(OUT.read_text()) if OUT.exists() else {}  # another part's rows
        res.setdefault(name, {}).setdefault(mode, {}).update({key: rows[key]})
        atomic_write_json(OUT, res)
        print(f"{acc[a]:.4f} {got}", flush=True)
    summarise(json.loads(OUT.read_text())[name][mode], name)
    return 0


def summarise(rows: dict, supernet: str) -> None:
    ranking = json.loads((RESULTS / f"supernet_ranking_{RECIPE}.json").read_text())
    sup = {}
    for row in ranking["supernets"].get(supernet, {}).values():
        if isinstance(row, dict) and "choices" in row:
            sup.update({json.dumps(c): s for c, s in zip(row["choices"], row["supernet_acc"])})
    sets = {
        "spread": [json.dumps(list(a)) for a in spread_set()],
        "near": [json.dumps(list(a)) for a in near_set(RECIPE, NEAR)],
    }
    sets["all"] = list(dict.fromkeys(sets["spread"] + sets["near"]))
    for name, keys in sets.items():
        keys = [k for k in keys if k in rows]
        alone = [rows[k]["standalone"] for k in keys]
        line = f"{name} (n={len(keys)}):"
        if keys and all(k in sup for k in keys):
            line += f" supernet τ {kendall_tau([sup[k] for k in keys], alone):.2f};"
        steps = sorted({int(s) for k in keys for s in rows[k]["tuned"]})
        for s in steps:
            tuned = [rows[k]["tuned"][str(s)] for k in keys]
            line += f" {s} steps τ {kendall_tau(tuned, alone):.2f}"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
