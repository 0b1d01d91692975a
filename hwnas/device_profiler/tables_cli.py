"""`hwnas tables list|show|diff|validate`: the latency tables in a folder, one table's
sidecar, two tables side by side, and a table against whole networks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from hwnas.errors import HwnasError

tables_app = typer.Typer(
    help="Latency tables: list, show, validate against whole networks.", no_args_is_help=True
)


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def _table_files(folder: Path) -> list[Path]:
    from hwnas.latency import sidecar_path

    return sorted(p for p in folder.glob("*.csv") if sidecar_path(p).exists())


@tables_app.command("list")
def tables_list(
    folder: Path = typer.Argument(Path("latency_tables"), help="Folder of tables."),
) -> None:
    """The tables in a folder: space, device, backend, precision, rows, calibrated."""
    from rich.table import Table

    from hwnas.latency import LatencyTable

    files = _table_files(folder)
    if not files:
        typer.echo(f"no latency tables in {folder}/ (make one with `hwnas profile`)")
        return
    t = Table(
        "table",
        "space",
        "res",
        "device",
        "backend",
        "precision",
        "threads",
        "rows",
        "complete",
        "calibrated",
        "±10% held out",
        "date",
    )
    for p in files:
        try:
            tab = LatencyTable.load(p)
        except HwnasError as e:
            t.add_row(p.name, f"[red]unreadable: {e}[/red]", *[""] * 10)
            continue
        prov, s = tab.provenance, tab.meta["space"]
        t.add_row(
            p.name,
            s["name"],
            str(s.get("params", {}).get("resolution", "")),
            _device(prov),
            str(prov.get("backend", "")),
            str(prov.get("precision", "")),
            _threads(prov),
            str(len(tab.frame)),
            _complete(tab),
            "yes" if _calibrated(tab) else "no",
            _fidelity(tab),
            str(prov.get("date", ""))[:19],
        )
    _console().print(t)


def _threads(prov: dict) -> str:
    """Threads, and the cores they were pinned to where the table records them."""
    from .cores import core_list

    threads, cores = str(prov.get("threads", "")), prov.get("cores")
    if not cores or not isinstance(cores, list):
        return threads
    try:
        return f"{threads} (core{'s' if len(cores) > 1 else ''} {core_list(int(c) for c in cores)})"
    except (TypeError, ValueError):
        return threads


def _fidelity(tab) -> str:
    v = tab.fidelity
    if v is None:
        return "not validated"
    text = f"{100 * v['within_10pct']:.0f}% of {v['held_out']}"
    return text if tab.fidelity_note() is None else f"[red]{text}[/red]"


def _device(prov: dict) -> str:
    d = prov.get("device", "")
    if isinstance(d, dict):
        return f"{d.get('model', '')} ({d.get('soc', '')})"
    return f"host: {prov.get('host_cpu', '')}" if d == "host" else str(d)


def _complete(tab) -> str:
    try:
        want = set(tab.space().all_keys())
    except HwnasError:
        return "?"
    have = set(tab.keys())
    return "yes" if want <= have else f"{len(want & have)}/{len(want)}"


def _calibrated(tab) -> bool:
    from hwnas.latency import IDENTITY_CALIBRATION

    cal = tab.calibration
    return any(cal.get(k) != v for k, v in IDENTITY_CALIBRATION.items())


@tables_app.command("show")
def tables_show(
    table: Path = typer.Argument(..., help="Table CSV."),
    top: int = typer.Option(10, "--top", help="Slowest blocks to list."),
) -> None:
    """Provenance, counts, calibration and the slowest blocks of a table."""
    from rich.table import Table

    from hwnas.latency import LatencyTable

    tab = LatencyTable.load(table)
    out = _console()
    s = tab.meta["space"]
    out.print(f"[bold]{table}[/bold]: space {s['name']} v{s.get('version')} {s.get('params')}")
    for k, v in tab.provenance.items():
        out.print(f"  {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    f = tab.frame
    out.print(
        f"rows {len(f)} (complete: {_complete(tab)}), identity rows "
        f"{int(f['analytic'].astype(bool).sum())}, total of medians "
        f"{f['median_us'].sum() / 1000:.3f} ms"
    )
    out.print(f"calibration: {json.dumps(tab.calibration)}")
    t = Table("block", "H", "W", "Cin", "Cout", "stride", "median µs", "p10", "p90", "std")
    for r in f.sort_values("median_us", ascending=False).head(top).itertuples(index=False):
        t.add_row(
            r.block,
            str(r.H),
            str(r.W),
            str(r.Cin),
            str(r.Cout),
            str(r.stride),
            f"{r.median_us:.1f}",
            f"{r.p10_us:.1f}",
            f"{r.p90_us:.1f}",
            f"{r.std_us:.1f}",
        )
    out.print(t)


@tables_app.command("diff")
def tables_diff(
    a: Path = typer.Argument(..., help="Table CSV (the baseline)."),
    b: Path = typer.Argument(..., help="Table CSV of the same space (ratios are B/A)."),
    json_out: Optional[Path] = typer.Option(
        None, "--json", help="Also write the figures as JSON to this file."
    ),
) -> None:
    """How two tables of one space differ: per-block ratio B/A overall and per op type,
    the reference network on each, and the provenance that differs."""
    from rich.table import Table

    from hwnas.io import atomic_write_json

    from .diff import diff_tables, differing, load_pair, short

    ta, tb = load_pair(a, b)
    d = diff_tables(ta, tb)
    if json_out is not None:  # before printing: an unwritable path is the one error line
        from hwnas.io import OutputError
        from hwnas.latency import sidecar_path

        mine = {p.resolve() for t in (a, b) for p in (t, sidecar_path(t))}
        if json_out.resolve() in mine:
            raise OutputError(
                json_out, "it is one of the tables being compared; choose another --json path"
            )
        atomic_write_json(json_out, d)
    out = _console()
    s = d["space"]
    out.print(f"[bold]A[/bold] {a} ({d['dates']['a'] or 'undated'})")
    out.print(f"[bold]B[/bold] {b} ({d['dates']['b'] or 'undated'})")
    out.print(f"space {s['name']} v{s.get('version')} {s.get('params')}")
    out.print(_diff_overall(d))
    if d["per_type"]:
        t = Table("block", "n", "median B/A", "min", "max")
        for name, v in d["per_type"].items():
            t.add_row(name, str(v["n"]), f"{v['median']:.3f}", f"{v['min']:.3f}", f"{v['max']:.3f}")
        out.print(t)
    if d["provenance_differs"]:
        t = Table("differs", "A", "B")
        for f in d["provenance_differs"]:
            va, vb = differing(f["a"], f["b"])
            t.add_row(f["field"], short(va), short(vb))
        out.print(t)
    else:
        out.print(
            "provenance: the same (backend, runtime, threads, cores, recipe, calibration, ...)"
        )
    if json_out is not None:
        out.print(f"figures: {json_out}")


def _diff_overall(d: dict):
    """``tables diff``'s first table: rows, the ratio B/A and the reference network."""
    from rich.table import Table

    rows, r = d["rows"], d["ratio"]
    t = Table("overall", "value")
    t.add_row("rows A / B / both", f"{rows['a']} / {rows['b']} / {rows['both']}")
    t.add_row("only in A / only in B", f"{rows['only_a']} / {rows['only_b']}")
    t.add_row(
        "identity in both / zero in one", f"{rows['identity_in_both']} / {rows['zero_in_one']}"
    )
    if r["n"]:
        t.add_row(f"ratio B/A, median of {r['n']} blocks", f"{r['median']:.3f}")
        t.add_row("ratio B/A, p10 – p90", f"{r['p10']:.3f} – {r['p90']:.3f}")
        t.add_row("ratio B/A, min – max", f"{r['min']:.3f} – {r['max']:.3f}")
    else:
        t.add_row("ratio B/A", "no block measured in both")
    ref = d["reference"]
    if "a_ms" in ref and "b_ms" in ref:
        ratio = f"{ref['ratio']:.3f}" if ref["ratio"] is not None else "—"
        raw = f"{ref['raw_ratio']:.3f}" if ref["raw_ratio"] is not None else "—"
        t.add_row(
            f"{ref['name']}: predicted A → B (ms)",
            f"{ref['a_ms']:.4f} → {ref['b_ms']:.4f} (×{ratio})",
        )
        t.add_row(
            f"{ref['name']}: Σ blocks A → B (ms)",
            f"{ref['a_raw_ms']:.4f} → {ref['b_raw_ms']:.4f} (×{raw})",
        )
    else:
        t.add_row(ref["name"], f"not predicted: {ref['error']}")
    return t


# ~65 lines: most of them the signature's option declarations (typer).
@tables_app.command("validate")
def tables_validate(
    table: Path = typer.Argument(..., help="Table CSV."),
    samples: int = typer.Option(30, "--samples", help="Random architectures (plus references)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    seed: int = typer.Option(0, "--seed"),
    fit_fraction: float = typer.Option(
        0.5,
        "--fit-fraction",
        help="Share of networks the calibration is fitted on; the rest is held out.",
    ),
    plot: Optional[Path] = typer.Option(
        None, "--plot", help="Scatter PNG (default: beside the table)."
    ),
    save: bool = typer.Option(True, "--save/--no-save", help="Store the calibration."),
    rounds: int = typer.Option(
        3,
        "--rounds",
        help="Shuffled rounds over all networks; a "
        "network's latency is the median of its round medians.",
    ),
    serial: Optional[str] = typer.Option(None, "--serial", help="adb tables: the phone."),
    benchmark_binary: Optional[Path] = typer.Option(None, "--benchmark-binary"),
    threads: Optional[int] = typer.Option(
        None,
        "--threads",
        help="Threads (default: the "
        "table's; another count is refused: its blocks "
        "were timed with the table's).",
    ),
    cores: Optional[str] = typer.Option(
        None,
        "--cores",
        help="Cores to pin, e.g. 1 or 2,3 "
        "(default: the table's; on the host, where this "
        "machine lacks them, the last --threads cores).",
    ),
    jobs: Optional[int] = typer.Option(
        None, "--jobs", help="Processes converting the networks first (default: the cores)."
    ),
    op_profile: bool = typer.Option(
        True,
        "--op-profile/--no-op-profile",
        help="Also profile each network per operator (host-ort, adb) and report its "
        "blocks' times inside it beside the table's (<table>.in_network.csv).",
    ),
) -> None:
    """Predicted vs measured whole networks; fits and stores a calibration."""
    from hwnas.io import atomic_write_json

    from .validate import ValidateConfig, validate

    cfg = ValidateConfig(
        table=table,
        samples=samples,
        seed=seed,
        fit_fraction=fit_fraction,
        plot=plot,
        save=save,
        serial=serial,
        benchmark_binary=benchmark_binary,
        rounds=rounds,
        threads=threads,
        cores=cores,
        jobs=jobs,
        op_profile=op_profile,
    )
    report = validate(cfg)
    atomic_write_json(table.with_name(table.stem + ".validate.json"), report)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_report(report)


def _print_report(r: dict) -> None:
    from rich.table import Table

    t = Table("networks", "n", "MAPE %", "RMSE ms", "±5%", "±10%", "Kendall τ")
    for label, key in (
        ("all, Σ blocks", "all_raw"),
        ("held out, Σ blocks", "held_out_raw"),
        ("held out, measured edges", "held_out_edges"),
        ("held out, calibrated", "held_out_calibrated"),
    ):
        m = r.get(key, {})
        if not m.get("n"):
            continue
        t.add_row(
            label,
            str(m["n"]),
            f"{m['mape_pct']:.1f}",
            f"{m['rmse_ms']:.3f}",
            f"{100 * m['within_5pct']:.0f}%",
            f"{100 * m['within_10pct']:.0f}%",
            f"{m['kendall_tau']:.3f}",
        )
    out = _console()
    out.print(t)
    c = r["calibration"]
    out.print(
        f"calibration ({c['model']}, {c['fitted_on']} networks): scale {c['scale']:.4f}, "
        f"offset {c['offset_ms']:.4f} ms, per type {c['per_type']}"
    )
    if r.get("in_network"):
        from .opprofile import in_network_line

        out.print(_in_network_table(r["in_network"]))
        out.print(in_network_line(r["in_network"]))
    out.print(f"scatter plot: {r['plot']}")


def _in_network_table(ins: dict):
    from rich.table import Table

    t = Table("op type", "blocks", "Σ table ms", "Σ inside networks ms", "inside / table")
    for typ, d in ins["per_type"].items():
        ratio = "-" if d["ratio"] is None else f"{d['ratio']:.2f}"
        t.add_row(typ, str(d["blocks"]), f"{d['table_ms']:.3f}", f"{d['in_network_ms']:.3f}", ratio)
    return t
