"""`hwnas spaces [show]` and `hwnas arch ref|sample|show`: the search spaces and their
architectures (registered by hwnas.cli)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from hwnas.errors import HwnasError

spaces_app = typer.Typer(help="Search spaces: list them, or show one.", no_args_is_help=False)
arch_app = typer.Typer(
    help="Architectures: references, random samples, per-layer tables.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
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
    out = console()
    out.print(_layer_table(layers, total, lat, f"{arch.name or path} — space {space.name}"))
    out.print(f"{total.macs / 1e6:.2f} M MACs, {total.params / 1e6:.3f} M params")
    if lat is not None:
        out.print(f"predicted latency (calibrated): {lat[1]:.3f} ms")


def _layer_table(layers: list[dict], total, lat, title: str):
    """``arch show``'s rich table: one row a layer (with its latency where ``lat``), the total."""
    from rich.table import Table

    cols = ["#", "layer", "block", "in (HxWxC)", "cout", "stride", "MACs", "params"]
    t = Table(*cols + (["ms"] if lat else []), title=title)
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
    return t
