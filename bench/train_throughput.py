"""Benchmark: training throughput (images/s) on each accelerator present, and the lazy image
folder's throughput with 0, 1 and 2 workers.

Model steps: the MobileNetV2-like reference of ``fbnet-small`` (32 px) and of ``fbnet`` (224
px), stepped by ``hwnas.train.train_step`` as the trainer steps (channels-last, the
accelerator's autocast and grad scaler, SGD Nesterov) on batches already on the device, so
that the figure is the model's, not the input pipeline's.  Folder: a generated folder of JPEGs read by ``load_dataset("folder",
lazy=True)`` at 224 px with training augmentation (random-resized crop, flip), one pass over
the training split.  Prints a table and writes ``bench/results/train_throughput.json`` (rows
keyed by host, accelerator and item; ``--merge`` keeps the rows of other hosts, so the CPU
figures of this machine and a GPU machine's sit side by side).

    python bench/train_throughput.py                      # every accelerator present
    python bench/train_throughput.py --accelerators cpu --merge
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import add_merge_option, write_rows
from torch import nn

from hwnas.accelerator import present, resolve
from hwnas.errors import HwnasError
from hwnas.space import build_model, get_space, reference_arch
from hwnas.train import nhwc, train_step

RESULTS = Path(__file__).parent / "results" / "train_throughput.json"
KEY = ("host", "accelerator", "item")
# (space, batch size) per resolution
MODELS = {32: ("fbnet-small", 128), 224: ("fbnet", 32)}
# (warm-up, timed) steps by (on the CPU, resolution): a CPU step at 224 px takes seconds
STEPS = {(True, 32): (2, 10), (True, 224): (1, 3), (False, 32): (10, 50), (False, 224): (10, 50)}


def model_row(acc_name: str, resolution: int, warmup: int, steps: int) -> dict:
    """Images/s of training steps of the reference at ``resolution`` on ``acc_name``."""
    acc = resolve(acc_name, say=False)
    space_name, batch = MODELS[resolution]
    space = get_space(space_name)
    torch.manual_seed(0)
    model = nhwc(build_model(space, reference_arch(space, "mobilenetv2")).to(acc.device))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    scaler = acc.scaler()
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(batch, space.in_channels, resolution, resolution, device=acc.device)
    y = torch.randint(0, space.num_classes, (batch,), device=acc.device)

    def step() -> None:
        train_step(model, x, y, opt, scaler, loss_fn, acc)

    def sync() -> None:
        if acc.device.type == "cuda":
            torch.cuda.synchronize(acc.device)

    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    return {
        "accelerator": acc.describe(),
        "item": f"train {space_name} mobilenetv2 {resolution}px",
        "batch": batch,
        "steps": steps,
        "seconds_per_step": median,
        "images_per_s": batch / median,
        "threads": torch.get_num_threads() if acc.device.type == "cpu" else None,
    }


def make_folder(root: Path, classes: int, per_class: int, size: int) -> None:
    """``classes`` sub-folders of ``per_class`` seeded random JPEGs of ``size`` px."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / f"c{c}" / f"{i}.jpg", quality=90)


def folder_row(root: Path, workers: int) -> dict:
    """Images/s of one augmented pass over a lazy folder's training split at 224 px."""
    from hwnas.data import load_dataset

    splits = load_dataset("folder", root, resolution=224, lazy=True, workers=workers)
    t0 = time.perf_counter()
    n = 0
    for x, _ in splits.loader("train", 32, seed=0):
        n += len(x)
    seconds = time.perf_counter() - t0
    return {
        "accelerator": "cpu (decoding)",
        "item": f"folder 224px, {workers} workers",
        "images": n,
        "seconds": seconds,
        "images_per_s": n / seconds,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accelerators", default=",".join(present()), help="comma list")
    ap.add_argument("--resolutions", default="32,224", help="comma list of 32 and/or 224")
    ap.add_argument("--workers", default="0,1,2", help="folder loader workers to time")
    ap.add_argument("--images", type=int, default=600, help="JPEGs in the generated folder")
    add_merge_option(ap)
    args = ap.parse_args(argv)
    host = f"{platform.node() or 'host'} ({os.cpu_count()} cores)"
    rows = []

    def add(row: dict) -> None:
        rows.append({"host": host, **row})
        print(f"{row['accelerator']:40} {row['item']:36} {row['images_per_s']:9.1f} images/s")

    try:
        for name in args.accelerators.split(","):
            for res in (int(r) for r in args.resolutions.split(",")):
                add(model_row(name, res, *STEPS[name == "cpu", res]))
    except HwnasError as e:  # an accelerator that is not here: its one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            make_folder(Path(tmp), 10, max(1, args.images // 10), 256)
            for w in (int(w) for w in args.workers.split(",")):
                add(folder_row(Path(tmp), w))
    if all(r["accelerator"].startswith("cpu") for r in rows):
        print("no GPU found: CUDA and MPS were not measured on this host")
    write_rows(RESULTS, rows, KEY, args.merge, torch=torch.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
