"""`hwnas` commands of hwnas.export (registered on the main app by hwnas.cli)."""

from pathlib import Path
from typing import Optional

import typer

from hwnas.accelerator import accelerator_option, workers_option


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("export")(export_command)


# Long because its signature declares the command's 18 options (typer); the body is one
# ExportConfig and one call.
def export_command(
    source: Path = typer.Argument(
        ...,
        metavar="RUN_DIR|ARCH.json",
        help="Search run directory (with arch.json) or an architecture.",
    ),
    data: str = typer.Option("fashion-mnist", "--data", help="fashion-mnist | cifar10 | folder."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Dataset folder."),
    epochs: int = typer.Option(3, "--epochs", help="Training epochs (from scratch)."),
    subset: Optional[int] = typer.Option(None, "--subset", help="Training images used."),
    formats: str = typer.Option("tflite,onnx", "--formats", help="tflite and/or onnx."),
    precision: str = typer.Option("int8,fp32", "--precision", help="int8 and/or fp32."),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        help="Export folder (default: RUN_DIR/export or the architecture's folder/export).",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted training."),
    table: Optional[Path] = typer.Option(
        None, "--table", help="Latency table (default: the one arch.json names)."
    ),
    backend: Optional[str] = typer.Option(
        None, "--backend", help="Measure on host-litert, host-ort or adb (default: the table's)."
    ),
    eval_images: Optional[int] = typer.Option(
        None, "--eval-images", help="Test images for int8 accuracy (default: all)."
    ),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="Measurement threads (default: the table's)."
    ),
    seed: int = typer.Option(0, "--seed"),
    reference: bool = typer.Option(
        False,
        "--reference",
        help="Also train the MobileNetV2-like "
        "reference scaled to the run's target with the same recipe "
        "(in parallel) and compare.",
    ),
    ship: str = typer.Option(
        "best",
        "--ship",
        help="With --reference: 'best' ships whichever of the two did better on the "
        "validation split (the test set plays no part); 'searched' always ships the "
        "search's architecture.",
    ),
    accelerator: str = accelerator_option(),
    workers: int = workers_option(),
) -> None:
    """Train an architecture, export ONNX/TFLite (fp32, int8) for Android, check parity and
    int8 accuracy, measure latency against the table's prediction, write report.md.
    Training runs on --accelerator; conversion and checks on a CPU copy of the model."""
    from hwnas.accelerator import resolve

    from .config import ExportConfig
    from .export import export_run

    accelerator = accelerator.strip().lower()
    resolve(accelerator, say=False)  # absent: one line now; auto is announced by the trainer

    cfg = ExportConfig(
        source=source,
        data=data,
        data_root=data_root,
        epochs=epochs,
        subset=subset,
        formats=formats,
        precision=precision,
        out=out,
        resume=resume,
        table=table,
        backend=backend,
        seed=seed,
        eval_images=eval_images,
        threads=threads,
        reference=reference,
        ship=ship.strip().lower(),
        accelerator=accelerator,
        workers=workers,
    )
    typer.echo(_result_lines(export_run(cfg).summary))


def _result_lines(s: dict) -> str:
    """What `hwnas export` prints: files, parity, accuracy, reference, latency and target."""
    acc, chk, lat = s["accuracy"], s["checks"], s["latency"]
    lines = [f"exported {', '.join(s['files'])} → {s['out']}"]
    for key in ("onnx_fp32", "tflite_fp32"):
        if f"{key}_max_abs_diff" in chk:
            lines.append(
                f"{key} vs PyTorch max |Δlogit| {chk[f'{key}_max_abs_diff']:.2e} "
                f"({'ok' if chk[f'{key}_ok'] else 'OVER 1e-4'})"
            )
    line = f"accuracy fp32 {100 * acc['pytorch_fp32']:.2f}%"
    if "tflite_int8" in acc:
        line += (
            f", int8 {100 * acc['tflite_int8']:.2f}% (drop "
            f"{acc['tflite_int8_drop_points']:.2f} points, agreement "
            f"{100 * chk['tflite_int8_agreement']:.2f}%)"
        )
    lines.append(line + f" on {chk['eval_images']} test images")
    if "reference" in s:
        ref = s["reference"]
        lines.append(
            f"scaled reference {ref['name']} ({ref['predicted_ms']:.3f} ms predicted), "
            f"same recipe: {100 * ref['test_acc']:.2f}% fp32 (validation "
            f"{100 * ref['val_acc']:.2f}%); searched architecture "
            f"{100 * ref['winner_test_acc']:.2f}% (validation {100 * ref['winner_val_acc']:.2f}%)"
        )
        lines.append(
            "shipped: the scaled reference (the search did not beat it on validation)"
            if s.get("shipped") == "reference"
            else "shipped: the searched architecture"
        )
    for m in lat["measured"]:
        lines.append(f"{m['file']} on {m['backend']}: {m['median_ms']:.3f} ms")
    if lat["predicted_ms"] is not None:
        verdict = {True: "holds", False: "does NOT hold", None: "unknown"}[lat["target_holds"]]
        target = lat["target_ms"] if lat["target_ms"] is not None else "—"
        lines.append(f"predicted {lat['predicted_ms']:.3f} ms; target {target} ms: {verdict}")
    return "\n".join(lines)
