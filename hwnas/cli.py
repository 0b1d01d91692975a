"""The `hwnas` command line: parse options, call the library, print; bad input is one line."""

from __future__ import annotations

import errno
import json
import math
import os
import sys
from pathlib import Path
from typing import Optional

import typer
import typer.main
from typer import TyperException

from hwnas.accelerator import accelerator_option, workers_option
from hwnas.errors import HwnasError

try:  # typer >= 0.29 carries its own click
    from typer._click.exceptions import NoArgsIsHelpError
except ImportError:  # pragma: no cover
    from click.exceptions import NoArgsIsHelpError

app = typer.Typer(
    help="Hardware-aware NAS for mobile CNNs: spaces, architectures, training, "
    "profiling, search, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
spaces_app = typer.Typer(help="Search spaces: list them, or show one.", no_args_is_help=False)
arch_app = typer.Typer(
    help="Architectures: references, random samples, per-layer tables.", no_args_is_help=True
)
app.add_typer(spaces_app, name="spaces")
app.add_typer(arch_app, name="arch")

RESOLUTION = typer.Option(None, "--resolution", help="Input size in px (default: the space's).")
WIDTH_MULT = typer.Option(
    None, "--width-mult", help="Global width multiplier (default: the space's)."
)
CLASSES = typer.Option(None, "--classes", help="Number of classes (default: the space's).")


def console():
    from rich.console import Console

    width = None if sys.stdout.isatty() else 160  # rich assumes 80 columns when piped
    return Console(width=width, highlight=False)


def load_space(name: str, resolution=None, width_mult=None, classes=None):
    from hwnas.space import get_space

    try:
        return get_space(name, resolution=resolution, width_mult=width_mult, num_classes=classes)
    except KeyError as e:
        raise HwnasError(e.args[0]) from None


def fmt_size(n: int) -> str:
    return str(n) if n < 10**6 else f"{n:.3g}".replace("e+", "e")


def shape_str(shape) -> str:
    return "x".join(map(str, shape))


# --------------------------------------------------------------------------- spaces


@spaces_app.callback(invoke_without_command=True)
def spaces(ctx: typer.Context) -> None:
    """List the search spaces: family, input, choice points, size (number of architectures)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from hwnas.space import SPACES

    table = Table("space", "family", "input", "choice points", "size", "description")
    for name in SPACES:
        s = load_space(name)
        table.add_row(
            name,
            s.family,
            f"{s.resolution}x{s.resolution}x{s.in_channels}",
            str(len(s.choices)),
            fmt_size(s.size),
            s.description,
        )
    console().print(table)


@spaces_app.command("show")
def spaces_show(
    space: str = typer.Argument(..., help="Space name (see `hwnas spaces`)."),
    resolution: Optional[int] = RESOLUTION,
    width_mult: Optional[float] = WIDTH_MULT,
    classes: Optional[int] = CLASSES,
) -> None:
    """Stages, layers, choice points (with their options) and input size of one space."""
    from rich.table import Table

    from hwnas.space import reference_names

    s = load_space(space, resolution, width_mult, classes)
    out = console()
    stem = s.layers([0] * len(s.choices))[0]
    out.print(f"[bold]{s.name}[/bold] (family {s.family}, version {s.version}): {s.description}")
    out.print(
        f"input {s.resolution}x{s.resolution}x{s.in_channels}, {s.num_classes} classes, "
        f"stem {stem.spec.key()} → {stem.cout} ch stride {s.stem_stride}, "
        f"head 1x1 → {s.head_channels * s.width_mult:g} (rounded to 8), pool, fc"
    )
    out.print(
        f"{len(s.choices)} choice points, {fmt_size(s.size)} architectures; references: "
        f"{', '.join(reference_names(s))}"
    )
    stages = Table(
        "stage", "base channels", "width options", "layers", "first stride", title="stages"
    )
    for st in s.stages:
        layers = (
            str(st.layers) if s.family == "fbnet" else "/".join(map(str, s.stage_layer_counts(st)))
        )
        stages.add_row(
            st.name,
            str(st.channels),
            " ".join(map(str, s.stage_widths(st))),
            layers,
            str(st.stride),
        )
    out.print(stages)
    choices = Table("#", "choice point", "kind", "options", title="choice points (in order)")
    for i, c in enumerate(s.choices):
        choices.add_row(str(i), c.name, c.kind, " ".join(str(o) for o in c.options))
    out.print(choices)


# --------------------------------------------------------------------------- arch


@arch_app.command("ref")
def arch_ref(
    space: str = typer.Argument(..., help="Space name."),
    name: str = typer.Argument(..., help="mobilenetv2, fbnet-a/b/c, mnasnet-a1/b1."),
    output: Path = typer.Option(..., "-o", "--output", help="Architecture JSON to write."),
    resolution: Optional[int] = RESOLUTION,
    width_mult: Optional[float] = WIDTH_MULT,
    classes: Optional[int] = CLASSES,
) -> None:
    """Write a reference architecture of a space."""
    from hwnas.space import reference_arch

    s = load_space(space, resolution, width_mult, classes)
    try:
        arch = reference_arch(s, name)
    except KeyError as e:
        raise HwnasError(e.args[0]) from None
    arch.save(output)
    typer.echo(f"{name} ({s.name}) → {output}")


@arch_app.command("sample")
def arch_sample(
    space: str = typer.Argument(..., help="Space name."),
    seed: int = typer.Option(0, "--seed"),
    output: Path = typer.Option(..., "-o", "--output"),
    resolution: Optional[int] = RESOLUTION,
    width_mult: Optional[float] = WIDTH_MULT,
    classes: Optional[int] = CLASSES,
) -> None:
    """Write a uniformly random architecture of a space."""
    from hwnas.space import random_arch

    s = load_space(space, resolution, width_mult, classes)
    random_arch(s, seed).save(output)
    typer.echo(f"random architecture of {s.name} (seed {seed}) → {output}")


@arch_app.command("show")
def arch_show(
    path: Path = typer.Argument(..., help="Architecture JSON (or a run folder)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead."),
    table: Optional[Path] = typer.Option(
        None, "--table", help="Latency table CSV: adds per-layer and predicted latency."
    ),
) -> None:
    """Per-layer table of an architecture: block, shapes, stride, MACs, params (and latency)."""
    from hwnas.space import Arch, arch_complexity

    arch = Arch.load(path)
    space = arch.get_space()
    total, rows = arch_complexity(space, arch)
    lat = None
    if table is not None:
        from hwnas.latency import LatencyTable

        lut = LatencyTable.load(table)
        lut.check_space(space)
        lat = ([lut.lookup(info.key) for info, _ in rows], lut.predict(arch, space))
    layers = [
        {
            "name": info.name,
            "block": info.spec.key(),
            "in_shape": list(info.in_shape),
            "cout": info.cout,
            "stride": info.stride,
            "macs": c.macs,
            "params": c.params,
        }
        for info, c in rows
    ]
    if lat is not None:
        for layer, ms in zip(layers, lat[0]):
            layer["latency_ms"] = ms
    if as_json:
        doc = {
            "arch": arch.to_dict(space),
            "layers": layers,
            "total": {"macs": total.macs, "params": total.params},
        }
        if lat is not None:
            doc["total"].update(latency_ms_sum=sum(lat[0]), predicted_ms=lat[1])
        typer.echo(json.dumps(doc, indent=2))
        return
    from rich.table import Table

    cols = ["#", "layer", "block", "in (HxWxC)", "cout", "stride", "MACs", "params"]
    t = Table(*cols + (["ms"] if lat else []), title=f"{arch.name or path} — space {space.name}")
    for i, layer in enumerate(layers):
        row = [
            str(i),
            layer["name"],
            layer["block"],
            shape_str(layer["in_shape"]),
            str(layer["cout"]),
            str(layer["stride"]),
            f"{layer['macs']:,}",
            f"{layer['params']:,}",
        ]
        t.add_row(*row + ([f"{layer['latency_ms']:.3f}"] if lat else []))
    t.add_row(
        "",
        "total",
        "",
        "",
        "",
        "",
        f"{total.macs:,}",
        f"{total.params:,}",
        *([f"{sum(lat[0]):.3f}"] if lat else []),
        style="bold",
    )
    out = console()
    out.print(t)
    out.print(f"{total.macs / 1e6:.2f} M MACs, {total.params / 1e6:.3f} M params")
    if lat is not None:
        out.print(f"predicted latency (calibrated): {lat[1]:.3f} ms")


# --------------------------------------------------------------------------- train


@app.command("train")
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
    label_smoothing: float = typer.Option(0.0, "--label-smoothing"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads."),
    accelerator: str = accelerator_option(),
    workers: int = workers_option(),
) -> None:
    """Train an architecture; writes checkpoint.pt, log.csv, model.pt, result.json in --out."""
    from hwnas.accelerator import resolve
    from hwnas.data import load_dataset
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
        label_smoothing=label_smoothing,
        seed=seed,
        threads=threads,
        accelerator=accelerator,
    )
    check_out_dir(out)
    arch = Arch.load(arch_path)
    space = arch.get_space()
    splits = load_dataset(
        data,
        data_root,
        resolution=space.resolution,
        in_channels=space.in_channels,
        seed=seed,
        subset=subset,
        workers=workers,
    )
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


# --------------------------------------------------------------------------- main


def _register_areas() -> None:
    from hwnas.device_profiler.adb.cli import register as register_adb
    from hwnas.device_profiler.cli import register as register_profiler
    from hwnas.export.cli import register as register_export
    from hwnas.search.cli import register as register_search
    from hwnas.supernet.cli import register as register_supernet

    for register in (
        register_profiler,
        register_adb,
        register_search,
        register_supernet,
        register_export,
    ):
        register(app)


_register_areas()


def _finite(ctx, param, value):
    """Every float option: a finite number (``inf``, ``nan`` and ``1e308`` are refused)."""
    if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= 1e15):
        raise typer.BadParameter(
            f"{value!r} is not a finite number of sensible size", ctx=ctx, param=param
        )
    return value


def _chain(inner):
    if inner is None:
        return _finite
    return lambda ctx, param, value: inner(ctx, param, _finite(ctx, param, value))


def _finite_floats(cmd) -> object:
    """Check every float option of ``cmd`` and its subcommands with :func:`_finite`."""
    for param in cmd.params:
        desc = getattr(param, "type_descriptor", None)
        ann = getattr(desc, "annotation", None)
        if ann is float or float in getattr(ann, "__args__", ()):
            param.callback = _chain(param.callback)
    for sub in getattr(cmd, "commands", {}).values():
        _finite_floats(sub)
    return cmd


_WRITE_ERRNOS = {
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EACCES,
    errno.EPERM,
}


def _one_line(message) -> str:
    return f"error: {' '.join(str(message).split())}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input → ``error: <message>`` on stderr, exit status 2.

    The one place that turns failures into that line: hwnas's own errors, usage errors
    (unknown option values, missing arguments), and an ``OSError`` on an output (read-only,
    no space, a file where a folder must be) — as ``cannot write PATH: reason``.  Folders
    created for the outputs of a failed command are removed again when still empty."""
    from hwnas.io import OutputError, remove_created_dirs

    command = _finite_floats(typer.main.get_command(app))
    code = 0
    try:
        code = command.main(args=argv, prog_name="hwnas", standalone_mode=False) or 0
        if not isinstance(code, int):
            code = 0
    except NoArgsIsHelpError as e:
        e.show()
        code = 2
    except (HwnasError, KeyError, ValueError, OSError, TyperException) as e:
        remove_created_dirs()
        if os.environ.get("HWNAS_DEBUG"):
            raise
        if isinstance(e, TyperException):
            message = e.format_message() if hasattr(e, "format_message") else e
        elif isinstance(e, KeyError) and e.args:
            message = e.args[0]
        elif isinstance(e, OSError) and not isinstance(e, OutputError):
            what = e.filename if e.filename is not None else "an output"
            if e.errno in _WRITE_ERRNOS:
                message = OutputError(what, e)
            else:
                message = f"{what}: {e.strerror or e}"
        else:
            message = e
        print(_one_line(message), file=sys.stderr)
        code = 2
    except typer.Abort:
        remove_created_dirs()
        print("error: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
