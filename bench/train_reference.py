"""Benchmark: train fbnet-small's MobileNetV2-like reference on Fashion-MNIST; time and accuracy."""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from hwnas.logs import show_on_stderr
from hwnas.data import load_dataset
from hwnas.io import atomic_write_json
from hwnas.space import arch_complexity, build_model, get_space, reference_arch
from hwnas.train import TrainConfig, train

RESULTS = Path(__file__).parent / "results" / "train_reference.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--subset", type=int, default=None, help="training images (default: all)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    space = get_space("fbnet-small")
    arch = reference_arch(space, "mobilenetv2")
    total, _ = arch_complexity(space, arch)
    t0 = time.perf_counter()
    splits = load_dataset("fashion-mnist", resolution=space.resolution, subset=args.subset)
    load_s = time.perf_counter() - t0
    torch.manual_seed(0)
    model = build_model(space, arch)
    cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, threads=args.threads
    )
    result = train(model, splits, cfg, progress=True)
    per_epoch = [round(r["seconds"], 2) for r in result.history]

    print(f"{'epoch':>5} {'seconds':>8} {'train acc':>9} {'val acc':>8}")
    for r in result.history:
        print(f"{r['epoch']:>5} {r['seconds']:>8.1f} {r['train_acc']:>9.4f} {r['val_acc']:>8.4f}")
    print(
        f"test accuracy {result.test_acc:.4f} after {args.epochs} epochs "
        f"({sum(per_epoch) / len(per_epoch):.1f} s/epoch; {total.macs / 1e6:.2f} M MACs, "
        f"{total.params / 1e6:.3f} M params)"
    )
    atomic_write_json(
        args.out,
        {
            "bench": "train_reference",
            "space": space.name,
            "arch": "mobilenetv2",
            "macs": total.macs,
            "params": total.params,
            "epochs": args.epochs,
            "train_images": len(splits.train),
            "val_images": len(splits.val),
            "test_images": len(splits.test),
            "config": vars(args) | {"out": str(args.out)},
            "threads": torch.get_num_threads(),
            "load_seconds": round(load_s, 2),
            "seconds_per_epoch": per_epoch,
            "train_seconds": round(result.seconds, 1),
            "val_acc": result.val_acc,
            "test_acc": result.test_acc,
            "history": result.history,
            "host": platform.node(),
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    main()
