"""MnasNet search outputs: trials.csv, pareto.png, rewards.png and summary.md."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from hwnas.io import atomic_write_text, save_figure
from hwnas.space import choices_key

from ..base import write_summary

TRIAL_COLUMNS = (
    "trial",
    "batch",
    "choices",
    "accuracy",
    "latency_ms",
    "predicted_ms",
    "reward",
    "seconds",
    "worker",
    "attempts",
    "status",
    "error",
)


def write_trials(out: Path, trials: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, TRIAL_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for t in trials:
        w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in t.items()})
    atomic_write_text(out / "trials.csv", buf.getvalue())


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of (latency, accuracy) points no other point beats on both (lower, higher)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def write_plots(out: Path, trials: list[dict], batches: list[dict], target_ms: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [t for t in trials if t["status"] != "failed"]
    pts = [(t["latency_ms"], t["accuracy"]) for t in ok]
    fig, ax = plt.subplots(figsize=(6, 4))
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, alpha=0.5, label="trials")
        front = sorted((pts[i] for i in pareto_front(pts)), key=lambda p: p[0])
        ax.plot(
            [p[0] for p in front], [p[1] for p in front], "o-", color="C3", label="Pareto front"
        )
    ax.axvline(target_ms, color="k", ls="--", lw=1, label=f"target {target_ms:g} ms")
    ax.set_xlabel("latency (ms; table prediction unless --latency measured)")
    ax.set_ylabel("validation accuracy (proxy)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "pareto.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [b["batch"] for b in batches]
    ax.plot(xs, [b["mean_reward"] for b in batches], "o-", label="mean reward")
    ax.plot(xs, [b["max_reward"] for b in batches], "s--", label="max reward")
    ax.plot(xs, [b["baseline"] for b in batches], ":", label="baseline")
    ax.set_xlabel("batch (controller update)")
    ax.set_ylabel("reward")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "rewards.png")


def _fmt(v, spec=".4f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def write_mnas_summary(
    out: Path,
    cfg,
    space,
    table,
    result,
    trials: list[dict],
    batches: list[dict],
    topk: list,
    pool_name: str,
    note: str,
) -> None:
    """summary.md: the settings, the winner (``result``, a SearchResult), the top trials and
    the reward per batch."""
    x = result.extra
    failed = sum(t["status"] == "failed" for t in trials)
    cached = sum(t["status"] == "cached" for t in trials)
    wall = sum(b["seconds"] for b in batches)
    prov = table.provenance
    lines = [
        f"# MnasNet search — {space.name}",
        "",
        f"- target: **{cfg.target_ms:g} ms** on {prov.get('device', '?')} / "
        f"{prov.get('backend', '?')} (table: {result.table})",
        f"- reward: `{cfg.reward}`; {len(trials)} trials in {len(batches)} batches of "
        f"{cfg.batch}; {cached} cached repeats, {failed} failed",
        f"- children: {cfg.child_epochs} epoch(s) on {cfg.subset or 'all'} images "
        f"(val accuracy); runner: {pool_name}",
        f"- wall time: {wall:.0f} s ({3600 * len(trials) / max(wall, 1e-9):.0f} trials/hour)",
        "",
        "## Winner",
        "",
        f"- trial {x.get('trial')}, predicted **{result.predicted_ms:.3f} ms** "
        f"(margin {result.margin_ms:.3f} ms), val accuracy {_fmt(x.get('accuracy'))}, "
        f"reward {_fmt(x.get('reward_value'))}",
    ]
    if note:
        lines += [f"- **{note}**"]
    lines += [
        "",
        "## Top under target",
        "",
        "| # | trial score (reward) | latency ms | choices |",
        "|---|---|---|---|",
    ]
    for i, (a, s) in enumerate(topk, 1):
        lines.append(
            f"| {i} | {_fmt(s)} | {table.predict(a, space):.3f} | {choices_key(a.choices)} |"
        )
    lines += _batch_lines(batches)
    lines += ["", "Files: trials.csv, pareto.png, rewards.png, arch.json, topk.json."]
    write_summary(out, "\n".join(lines))


def _batch_lines(batches: list[dict]) -> list[str]:
    lines = [
        "",
        "## Reward per batch",
        "",
        "| batch | mean | max | best so far |",
        "|---|---|---|---|",
    ]
    return lines + [
        f"| {b['batch']} | {b['mean_reward']:.4f} | {b['max_reward']:.4f} | "
        f"{b['best_so_far']:.4f} |"
        for b in batches
    ]


__all__ = ["write_trials", "write_plots", "write_mnas_summary", "pareto_front", "TRIAL_COLUMNS"]
