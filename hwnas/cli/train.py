"""`hwnas train`: train one architecture (registered by hwnas.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hwnas.accelerator import accelerator_option, workers_option
from hwnas.errors import HwnasError


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


# --------------------------------------------------------------------------- train


# ~60 lines: most of them the signature's option declarations (typer).
def train_command(
    arch_path: Path = typer.Argument(..., metavar="ARCH.json", help="Architecture to train."),
    data: str = typer.Option("fashion-mnist", "--data", help="fashion-mnist | cifar10 | folder."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Dataset folder."),
    epochs: int = typer.Option(3, "--epochs"),
    out: Path = typer.Option(..., "--out", help="Run folder, e.g. runs/NAME."),
    resume: bool = typer.Option(False, "--resume", help="Continue from --out's checkpoint."),
    subset: Optional[int] = typer.Option(None, "--subset", help="Training images used."),
    batch_size: int = typer.Option(128, "--batch-size"),
    lr: float = typer.Option(0.1, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    schedule: str = typer.Option("cosine", "--schedule", help="cosine | onecycle."),
    warmup_epochs: float = typer.Option(
        0.3, "--warmup-epochs", help="Linear LR warm-up over the first N epochs (0: none)."
    ),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads."),
    accelerator: str = accelerator_option(),
    workers: int = workers_option(),
) -> None:
    """Train an architecture; writes checkpoint.pt, log.csv, model.pt, result.json in --out."""
    from hwnas.accelerator import resolve
    from hwnas.data import load_for_space
    from hwnas.io import check_out_dir, make_dirs, output_lock
    from hwnas.space import Arch, build_model
    from hwnas.train import TrainConfig, train

    accelerator = accelerator.strip().lower()
    resolve(accelerator, say=False)  # absent: one line now, not after loading data
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        schedule=schedule,
        warmup_epochs=warmup_epochs,
        label_smoothing=label_smoothing,
        seed=seed,
        threads=threads,
        accelerator=accelerator,
    )
    check_out_dir(out)
    arch = Arch.load(arch_path)
    space = arch.get_space()
    splits = load_for_space(data, data_root, space, seed, subset, workers)
    if len(splits.classes) != space.num_classes:
        raise HwnasError(
            f"{arch_path}: the architecture has {space.num_classes} classes, "
            f"{data} has {len(splits.classes)}; make it with --classes "
            f"{len(splits.classes)}"
        )
    with output_lock(check_out_dir(out)):
        make_dirs(out)
        arch.save(out / "arch.json")
        result = train(build_model(space, arch), splits, cfg, out, resume=resume)
    typer.echo(
        f"test accuracy {result.test_acc:.4f} (val {result.val_acc:.4f}) after "
        f"{len(result.history)} epochs, {result.seconds:.0f} s training → {out}"
    )
