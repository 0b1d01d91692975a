"""The export's ``report.md`` and ``export.png``, and copies of the search's plots."""

from __future__ import annotations

import shutil
from pathlib import Path

from hwnas.io import atomic_write_text, save_figure


def copy_search_plots(run_dir: Path, dest: Path) -> list[str]:
    """Copy the search run's PNGs (θ heatmap, Pareto, ...) into ``dest``; their names."""
    pngs = sorted(Path(run_dir).glob("*.png"))
    if pngs:
        dest.mkdir(parents=True, exist_ok=True)
    for p in pngs:
        shutil.copyfile(p, dest / p.name)
    return [p.name for p in pngs]


def write_plot(path: Path, summary: dict) -> None:
    """Accuracy (PyTorch fp32 vs int8 files) and latency (predicted vs measured, target)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = summary["accuracy"]
    lat = summary["latency"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [k for k in ("pytorch_fp32", "tflite_int8", "onnx_int8") if k in acc]
    vals = [100 * acc[k] for k in names]
    ax1.bar(names, vals, color=["tab:blue", "tab:orange", "tab:green"][: len(names)])
    for i, v in enumerate(vals):
        ax1.text(i, v, f"{v:.2f}", ha="center", va="bottom")
    ax1.set_ylim(max(0.0, min(vals) - 10), 100)
    ax1.set_ylabel(f"test accuracy, % ({summary['checks']['eval_images']} images)")
    ax1.set_title("accuracy")
    labels, ms, colors = [], [], []
    if lat.get("predicted_ms") is not None:
        labels.append("predicted\n(table)")
        ms.append(lat["predicted_ms"])
        colors.append("tab:gray")
    for m in lat["measured"]:
        labels.append(f"{m['file']}\n{m['backend']}")
        ms.append(m["median_ms"])
        colors.append("tab:purple" if m["file"] == lat.get("primary") else "tab:cyan")
    ax2.bar(labels, ms, color=colors)
    target = lat.get("target_ms")
    top = max(ms + ([target] if target is not None else []), default=1.0)
    for i, v in enumerate(ms):  # inside the bar: a value at the target would cross its line
        ax2.text(i, v / 2, f"{v:.3f}", ha="center", va="center", color="white")
    if target is not None:
        ax2.axhline(target, color="tab:red", ls="--", label=f"target {target:g} ms")
        ax2.legend(loc="upper right")
    ax2.set_ylim(0, 1.3 * top)  # room above the bars and the line for the legend
    ax2.set_ylabel("latency, ms (median)")
    ax2.set_title("predicted vs measured latency")
    ax2.tick_params(axis="x", labelsize=8)
    if summary.get("shipped") == "reference":
        fig.suptitle(f"shipped: the scaled reference ({summary['arch'].get('name')})")
    fig.tight_layout()
    save_figure(fig, path)


def _f(v, fmt="{:.4f}") -> str:
    return "—" if v is None else fmt.format(v)


def report_markdown(s: dict) -> str:
    lines = _files(s) + _checks(s) + _reference(s) + _latency(s) + _search(s)
    lines += ["", f"Export took {s['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def _files(s: dict) -> list[str]:
    """The title, what was exported and trained, and the files."""
    tr, arch = s["train"], s["arch"]
    subset = "" if tr["subset"] is None else f" (subset of {tr['subset']} images)"
    lines = [
        f"# Export of {arch.get('name') or 'architecture'} ({arch['space']})",
        "",
        f"Source `{s['source']}`; {s['macs'] / 1e6:.2f} M MACs (≈ "
        f"{2 * s['macs'] / 1e6:.1f} M FLOPs), {s['params'] / 1e6:.3f} M params; trained "
        f"{tr['epochs']} epochs on {tr['data']}{subset} → test accuracy "
        f"{_f(tr['test_acc'])}.",
        "",
        "## Files",
        "",
        "| file | format | precision | size (KiB) | conversion (s) |",
        "|---|---|---|---:|---:|",
    ]
    for name, f in s["files"].items():
        lines.append(
            f"| `{name}` | {f['format']} | {f['precision']} | {f['bytes'] / 1024:.1f} | "
            f"{f['seconds']:.1f} |"
        )
    trainings = (
        "`reference/` (the shipped network's checkpoint and log), `train/` (the searched one's)"
        if s.get("shipped") == "reference"
        else "`train/` (checkpoint, log)"
    )
    return lines + [
        "",
        "Also: `model.json` (input/output description for apps), `labels.txt`, "
        f"`summary.json`, `export.png`, {trainings}.",
    ]


def _checks(s: dict) -> list[str]:
    """Parity of the fp32 files, accuracy of the int8 ones."""
    acc, chk = s["accuracy"], s["checks"]
    lines = [
        "",
        "## Checks",
        "",
        f"Parity on {chk['parity_images']} real test images (tolerance "
        f"{chk['tolerance']:g} max abs logit difference vs PyTorch):",
        "",
    ]
    for key, label in (
        ("onnx_fp32", "ONNX fp32 (ONNX Runtime)"),
        ("tflite_fp32", "TFLite fp32 (LiteRT)"),
    ):
        if f"{key}_max_abs_diff" in chk:
            ok = "pass" if chk[f"{key}_ok"] else "FAIL"
            lines.append(f"- {label}: {chk[f'{key}_max_abs_diff']:.2e} — {ok}")
    lines += [
        "",
        f"Accuracy on {chk['eval_set']} (int8 calibrated on {chk['calib_images']} "
        "real training images):",
        "",
        "| model | accuracy | drop (points) | top-1 agreement with fp32 |",
        "|---|---:|---:|---:|",
        f"| PyTorch fp32 | {100 * acc['pytorch_fp32']:.2f}% | — | — |",
    ]
    for key, label in (("tflite_int8", "TFLite int8"), ("onnx_int8", "ONNX int8 (QDQ)")):
        if key in acc:
            lines.append(
                f"| {label} | {100 * acc[key]:.2f}% | {acc[f'{key}_drop_points']:+.2f} "
                f"| {100 * chk[f'{key}_agreement']:.2f}% |"
            )
    drop = acc.get("tflite_int8_drop_points")
    if drop is not None:
        lines += ["", f"int8 accuracy drop goal ≤ 1 point: {'met' if drop <= 1 else 'NOT met'}."]
    return lines


def _reference(s: dict) -> list[str]:
    """The scaled reference beside the searched architecture (with --reference), and which
    of the two the export shipped."""
    ref = s.get("reference")
    if not ref:
        return []
    won, lost = ref["winner_test_acc"], ref["test_acc"]
    lines = [
        "",
        "## Against the hand-designed baseline",
        "",
        f"The MobileNetV2-like reference scaled to the same target ({ref['name']}, "
        f"predicted {ref['predicted_ms']:.3f} ms), trained with the same recipe: "
        f"**{100 * lost:.2f}%** fp32 on the whole test set; the searched architecture "
        f"{100 * won:.2f}% on the same images — "
        f"{'at least as good' if won >= lost else 'WORSE'} ({100 * (won - lost):+.2f} points).",
        "",
    ]
    if s.get("shipped") == "reference":
        # the test set plays no part in the choice; say so when it disagrees with validation
        split = (
            f" The test set puts the searched architecture ahead ({100 * (won - lost):+.2f} "
            "points): one training seed moves either by about half a point, so the two splits "
            "can disagree; the choice is validation's."
            if won > lost
            else ""
        )
        return lines + [
            f"**Shipped: the scaled reference.** On the validation split it reached "
            f"{100 * ref['val_acc']:.2f}% against the searched architecture's "
            f"{100 * ref['winner_val_acc']:.2f}%, so the files, the figures above and "
            "`model.json` are the reference's: on validation the search did not beat the "
            f"hand-designed baseline at this target.{split} `hwnas export --ship searched` "
            "exports the search's architecture instead.",
        ]
    return lines + [
        f"Shipped: the searched architecture (validation {100 * ref['winner_val_acc']:.2f}% "
        f"against the reference's {100 * ref['val_acc']:.2f}%).",
    ]


def _latency(s: dict) -> list[str]:
    """Predicted vs measured latency, and whether the target holds."""
    lat = s["latency"]
    lines = [
        "",
        "## Latency: predicted vs measured",
        "",
        f"Table: device {lat.get('table_device') or '?'}, backend "
        f"{lat.get('table_backend') or '?'}, precision {lat.get('table_precision') or '?'}"
        f" (`{s.get('table') or 'none'}`). Predicted {_f(lat['predicted_ms'], '{:.3f}')} ms; "
        f"target {_f(lat['target_ms'], '{:g}')} ms.",
        "",
        "| file | backend | device | threads | median (ms) | p10–p90 (ms) |",
        "|---|---|---|---:|---:|---|",
    ]
    for m in lat["measured"]:
        star = " (primary)" if m["file"] == lat.get("primary") else ""
        lines.append(
            f"| `{m['file']}`{star} | {m['backend']} | {m['device']} | {m['threads']} | "
            f"{m['median_ms']:.3f} | {m['p10_ms']:.3f}–{m['p90_ms']:.3f} |"
        )
    holds = lat.get("target_holds")
    verdict = (
        "unknown (no target or no measurement on the table's backend)"
        if holds is None
        else "holds"
        if holds
        else "does NOT hold"
    )
    if lat.get("measured_ms") is not None and lat.get("predicted_ms") is not None:
        err = 100 * (lat["measured_ms"] / lat["predicted_ms"] - 1)
        lines += [
            "",
            f"Measured on the table's backend: {lat['measured_ms']:.3f} ms, "
            f"{err:+.1f}% vs predicted.",
        ]
    return lines + ["", f"Target: {verdict}.", "", "![accuracy and latency](export.png)"]


def _search(s: dict) -> list[str]:
    """The search's plots and warning, where the source was a search run."""
    if not (s.get("search_plots") or s.get("search_note")):
        return []
    lines = ["", "## Search", ""]
    if s.get("search_note"):
        lines += [f"**Warning from the search:** {s['search_note']}.", ""]
    return lines + [f"![{p}](search/{p})" for p in s.get("search_plots", [])]


def write_report(folder: Path, summary: dict) -> None:
    write_plot(folder / "export.png", summary)
    atomic_write_text(folder / "report.md", report_markdown(summary))


__all__ = ["copy_search_plots", "write_plot", "report_markdown", "write_report"]
