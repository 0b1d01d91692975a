"""`hwnas profile` and, from :mod:`.tables_cli`, `hwnas tables list|show|diff|validate`
(registered by hwnas.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


# Long because its signature declares the command's 20 options (typer); the body is one
# ProfileConfig and one call.
def profile_command(
    device: str = typer.Option(
        "host", "--device", help="Device preset (pixel1, galaxy-s8, host, or a preset JSON file)."
    ),
    serial: Optional[str] = typer.Option(None, "--serial", help="ADB serial or HOST:PORT."),
    benchmark_binary: Optional[Path] = typer.Option(
        None, "--benchmark-binary", help="Android benchmark_model binary to push."
    ),
    space: str = typer.Option("fbnet", "--space", help="Search space (see `hwnas spaces`)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Input size in px."),
    classes: Optional[int] = typer.Option(None, "--classes", help="Number of classes."),
    width_mult: Optional[float] = typer.Option(
        None, "--width-mult", help="Global width multiplier."
    ),
    precision: Optional[str] = typer.Option(
        None, "--precision", help="int8 | fp32 (default: the preset's)."
    ),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads (default: preset's)."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed runs before timing."),
    runs: int = typer.Option(50, "--runs", help="Timed runs per repeat."),
    repeats: int = typer.Option(3, "--repeats", help="Repeats (fresh session / invocation)."),
    backend: Optional[str] = typer.Option(
        None, "--backend", help="adb | host-ort | host-litert (default: the preset's)."
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        help="Table CSV (default: latency_tables/<device-or-backend>_<space>_r<res>.csv).",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue a table (re-running the same command does too)."
    ),
    cores: Optional[str] = typer.Option(
        None,
        "--cores",
        help="Cores to pin the measurement "
        "to, e.g. 2,3 or 4-7 (phone default: the big cores; "
        "host default: the last --threads cores); recorded "
        "in the table's provenance.",
    ),
    seed: int = typer.Option(0, "--seed", help="Block order shuffle and weights."),
    min_seconds: Optional[float] = typer.Option(
        None,
        "--min-seconds",
        help="Host backends: time each repeat at least this long (default: 0.05 s on "
        "host-ort, whose short windows came out 50% apart; 0.02 s on host-litert, as "
        "faithful there and 2.3x faster).",
    ),
    ruler: bool = typer.Option(
        True,
        "--ruler/--no-ruler",
        help="Host backends: alternate the timed runs with runs of the space's reference "
        "network and scale each repeat to the reference's time when the table began (its "
        "unit, in the provenance): the table keeps one meaning while the machine's speed "
        "drifts. A resumed table keeps how it began.",
    ),
    calibrate: int = typer.Option(
        20,
        "--calibrate",
        help="Once the table is complete, time this many whole networks (the space's "
        "references and seeded random ones) and store the calibration fitted on them, with "
        "its held-out figures, as `hwnas tables validate` does (0: the measured edges only).",
    ),
    passes: int = typer.Option(
        2,
        "--passes",
        help="Once the table is complete, time every "
        "block again in passes - 1 more shuffled passes and keep the "
        "median of the pass medians (bursts of load hit one pass).",
    ),
    edges: bool = typer.Option(
        True,
        "--edges/--no-edges",
        help="Once the table is complete, "
        "measure what a standalone block model costs beyond the block "
        "(2 stacked copies vs 1) and calibrate the table with it.",
    ),
    jobs: Optional[int] = typer.Option(
        None,
        "--jobs",
        help="Processes converting the model files before timing starts, several per "
        "converter call (default: the usable cores; 1: this process).",
    ),
) -> None:
    """Measure every distinct block of a space on a device into a latency table."""
    from .runner import ProfileConfig, profile_run

    cfg = ProfileConfig(
        device=device,
        backend=backend,
        space=space,
        resolution=resolution,
        precision=precision,
        threads=threads,
        warmup=warmup,
        runs=runs,
        repeats=repeats,
        out=out,
        resume=resume,
        serial=serial,
        benchmark_binary=benchmark_binary,
        cores=cores,
        seed=seed,
        num_classes=classes,
        width_mult=width_mult,
        edges=edges,
        passes=passes,
        min_seconds=min_seconds,
        ruler=ruler,
        calibrate=calibrate,
        jobs=jobs,
    )
    r = profile_run(cfg)
    typer.echo(
        f"{r.path}: {r.total - r.skipped - r.measured - r.analytic} of {r.total} blocks "
        f"left; this run measured {r.measured} on {r.backend} ({r.analytic} identity, "
        f"{r.skipped} already there), conversion {r.conversion_s:.0f} s, "
        f"measurement {r.measure_s:.0f} s"
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    from .tables_cli import tables_app

    app.command("profile")(profile_command)
    app.add_typer(tables_app, name="tables")
