"""Benchmark: what makes the FBNet supernet learn on all 22 layers of fbnet-small.

Each variant trains a fresh supernet on uniformly sampled paths (every op and width) of
Fashion-MNIST (``--subset`` images, batch 64, SGD nesterov lr 0.1 cosine, grad-norm 5,
one thread) for ``--steps`` steps, then reports the held-out accuracy of ``--paths``
uniformly random paths with BatchNorm re-estimated per path (``supernet.path_accuracy``):

* ``uniform-independent`` — plain uniform sampling, each stage-first candidate its own master,
  default init (the supernet that stayed at chance);
* ``uniform-shared`` — every ``ir`` candidate of a layer shares one master;
* ``uniform-shared-identity`` — and residual blocks start as the identity;
* ``anchored-independent`` — stage-first layers anchored + distilled, independent masters;
* ``anchored`` — all three: what ``hwnas search`` trains.

Resumable: finished variants are kept in bench/results/supernet_training.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from hwnas.logs import show_on_stderr
from hwnas.data import load_dataset
from hwnas.io import atomic_write_json
from hwnas.space import get_space
from hwnas.supernet import FBNetSupernet, path_accuracy
from hwnas.supernet.train import uniform_path
from hwnas.train import cosine_lr

RESULTS = Path(__file__).parent / "results" / "supernet_training.json"
VARIANTS = {  # anchored, share_stage_first, identity_init
    "uniform-independent": (False, False, False),
    "uniform-shared": (False, True, False),
    "uniform-shared-identity": (False, True, True),
    "anchored-independent": (True, False, False),
    "anchored": (True, True, True),
}


def run(name: str, steps: int, subset: int, paths: int, seed: int) -> dict:
    anchored, share, identity = VARIANTS[name]
    torch.manual_seed(seed)
    space = get_space("fbnet-small")
    splits = load_dataset(
        "fashion-mnist",
        resolution=space.resolution,
        in_channels=space.in_channels,
        seed=seed,
        subset=subset,
    )
    net = FBNetSupernet(space, share_stage_first=share, identity_init=identity)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
    gen = torch.Generator().manual_seed(seed)
    step, t0, curve, correct, seen = 0, time.perf_counter(), [], 0, 0
    while step < steps:
        for x, y in splits.loader("train", 64, seed=seed * 1000 + step):
            if step >= steps:
                break
            for g in opt.param_groups:
                g["lr"] = cosine_lr(0.1, step, steps)
            arch = uniform_path(space, gen)
            net.train()
            if anchored:  # students join the path, rising to 0.5 over the first 40%
                logits, mse = net.forward_anchored(
                    x, arch, 0.5 * min(1.0, step / (0.4 * steps)), gen
                )
            else:
                logits, mse = net(x, arch), 0.0
            loss = F.cross_entropy(logits, y) + mse
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            correct += int((logits.detach().argmax(1) == y).sum())
            seen += len(y)
            step += 1
            if step % 50 == 0:
                curve.append(correct / seen)
                correct = seen = 0
    rng = torch.Generator().manual_seed(99)
    accs = [
        path_accuracy(net, uniform_path(space, rng), splits, max_eval_batches=4)
        for _ in range(paths)
    ]
    return {
        "random_paths": accs,
        "mean": sum(accs) / len(accs),
        "train_acc_per_50": curve,
        "seconds": time.perf_counter() - t0,
        "steps": steps,
        "subset": subset,
        "seed": seed,
        "load_avg": list(__import__("os").getloadavg()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--subset", type=int, default=10000)
    ap.add_argument("--paths", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.variants:
        key = f"{name}/{args.steps}"
        if key not in results:
            results[key] = run(name, args.steps, args.subset, args.paths, args.seed)
            if RESULTS.exists():  # keep what a parallel run wrote meanwhile
                results = {**json.loads(RESULTS.read_text()), **results}
            atomic_write_json(RESULTS, results)
        r = results[key]
        print(
            f"{key:32s} random paths {100 * r['mean']:5.1f}%  "
            f"({', '.join(f'{100 * a:.1f}' for a in r['random_paths'])})  "
            f"{r['seconds']:.0f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    raise SystemExit(main())
