"""What an FBNet search did: log.csv, θ heatmaps and latency plots (PNG), summary.md."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hwnas.io import save_figure

from ..base import write_summary
from ..confirm import summary_lines


def _probs(theta: list[list[float]]) -> list[np.ndarray]:
    out = []
    for t in theta:
        a = np.asarray(t, float)
        e = np.exp(a - a.max())
        out.append(e / e.sum())
    return out


def _op_matrix(space, theta) -> tuple[np.ndarray, list[str]]:
    p = _probs(theta)
    rows = [(c.name, p[i]) for i, c in enumerate(space.choices) if c.kind == "op"]
    return np.stack([r for _, r in rows]), [n.removesuffix(".op") for n, _ in rows]


def _width_matrix(space, theta) -> tuple[np.ndarray, list[str], int]:
    p = _probs(theta)
    idx = [i for i, c in enumerate(space.choices) if c.kind == "width"]
    k = max(len(space.choices[i]) for i in idx)
    m = np.full((len(idx), k), np.nan)
    for r, i in enumerate(idx):
        m[r, : len(p[i])] = p[i]
    return m, [space.choices[i].name for i in idx], k


def _vmax(*mats: np.ndarray) -> float:
    """The top of the colour scale: the largest probability shown (at least 0.2)."""
    return max(0.2, max(float(np.nanmax(m)) for m in mats))


def write_plots(out: Path, space, history: list[dict], target_ms: float) -> None:
    """theta_heatmap.png (final), theta_evolution.png (small multiples), latency.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _theta_heatmap(plt, out, space, history[-1]["theta"])
    _theta_evolution(plt, out, space, history)
    _latency_plot(plt, out, history, target_ms)


def _theta_heatmap(plt, out: Path, space, final) -> None:
    ops, names = _op_matrix(space, final)
    widths, wnames, k = _width_matrix(space, final)
    fig, (a1, a2) = plt.subplots(
        1,
        2,
        figsize=(11, 0.3 * len(names) + 2),
        gridspec_kw={"width_ratios": [len(space.ops), k + 1]},
    )
    # the colour scale ends at the largest probability shown: after a short search θ is
    # near uniform (1/9 per op), and on a fixed 0..1 scale every cell looks the same
    im = a1.imshow(ops, aspect="auto", cmap="viridis", vmin=0, vmax=_vmax(ops))
    a1.set_xticks(range(len(space.ops)), space.ops, rotation=60, ha="right", fontsize=8)
    a1.set_yticks(range(len(names)), names, fontsize=7)
    a1.set_title("op probabilities softmax(θ)")
    fig.colorbar(im, ax=a1, label="probability", pad=0.01)
    im = a2.imshow(widths, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    a2.set_xticks(range(k), [f"w{j}" for j in range(k)], fontsize=8)
    a2.set_yticks(range(len(wnames)), wnames, fontsize=7)
    a2.set_title("stage width (narrow → wide)")
    fig.colorbar(im, ax=a2, label="probability")
    save_figure(fig, out / "theta_heatmap.png", tight=True)


def _theta_evolution(plt, out: Path, space, history: list[dict]) -> None:
    names = _op_matrix(space, history[-1]["theta"])[1]
    n = len(history)
    picks = sorted({round(j * (n - 1) / 5) for j in range(6)}) if n > 1 else [0]
    cols = min(3, len(picks))
    rws = math.ceil(len(picks) / cols)
    fig, axes = plt.subplots(
        rws, cols, figsize=(4 * cols, 0.22 * len(names) * rws + 1.5), squeeze=False
    )
    mats = [_op_matrix(space, history[e]["theta"])[0] for e in picks]
    top = _vmax(*mats)
    for ax, e, m in zip(axes.flat, picks, mats):
        im = ax.imshow(m, aspect="auto", cmap="viridis", vmin=0, vmax=top)
        ax.set_title(f"epoch {e + 1}", fontsize=9)
        ax.set_xticks(
            range(len(space.ops)),
            [o.replace("ir_", "") for o in space.ops],
            rotation=90,
            fontsize=6,
        )
        ax.set_yticks([])
    for ax in list(axes.flat)[len(picks) :]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), label="probability", shrink=0.6)
    fig.suptitle("op probabilities over the search (rows: layers in network order)")
    save_figure(fig, out / "theta_evolution.png", tight=True)


def _latency_plot(plt, out: Path, history: list[dict], target_ms: float) -> None:
    ep = [h["row"]["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(ep, [h["row"]["expected_lat_ms"] for h in history], "o-", label="E[latency] softmax(θ)")
    ax.plot(ep, [h["row"]["argmax_lat_ms"] for h in history], "s--", label="θ's pick (depth first)")
    ax.axhline(target_ms, color="red", lw=1, label=f"target {target_ms:g} ms")
    ax.set_xlabel("epoch")
    ax.set_xticks(ep)  # whole epochs only
    ax.set_ylabel("predicted latency (ms)")
    ax.legend(fontsize=8)
    save_figure(fig, out / "latency.png", tight=True)


def write_fbnet_summary(out: Path, cfg, space, table, result, rows: list[dict], topk) -> None:
    """summary.md: the settings, the winner (``result``, a SearchResult) and the top-k."""
    x = result.extra
    lines = _result_lines(out, cfg, space, result, rows)
    seen = x.get("supernet")
    if seen:
        lines.append(
            f"- the supernet's own accuracy (θ split, BatchNorm re-estimated per path): "
            f"winner **{seen['winner_acc']:.3f}**, {len(seen['random_acc'])} uniformly "
            f"random paths {seen['random_mean']:.3f} on average "
            f"({min(seen['random_acc']):.3f}–{max(seen['random_acc']):.3f})"
        )
    if result.supernet_note:
        lines += ["", f"**Warning:** {result.supernet_note}."]
    lines += [
        "",
        "| layer | choice |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in result.arch.to_dict(space)["values"].items()]
    lines += _topk_lines(space, table, topk, x.get("selected_by", "θ") != "θ")
    lines += summary_lines(x.get("confirm"))
    lines += [
        "",
        "Plots: `theta_heatmap.png`, `theta_evolution.png`, `latency.png`; "
        "per-epoch numbers in `log.csv`.",
    ]
    write_summary(out, "\n".join(lines))


def _result_lines(out: Path, cfg, space, r, rows: list[dict]) -> list[str]:
    x, last = r.extra, rows[-1]
    return [
        f"# FBNet search — {out.name}",
        "",
        f"- space **{space.name}** (resolution {space.resolution}), mode **{cfg.mode}**, "
        f"{cfg.epochs} epochs ({cfg.warmup_epochs} warm-up), subset {cfg.subset}, "
        f"batch {cfg.batch_size}, seed {cfg.seed}",
        f"- table `{r.table}` ({r.provenance.get('device', '?')}, "
        f"{r.provenance.get('backend', '?')})",
        f"- θ loss: CE·{cfg.alpha}·log(LAT µs)^{cfg.beta} + {cfg.target_weight}·"
        f"{cfg.target_term}(LAT/T)",
        f"- search time {x['search_seconds']:.0f} s "
        f"({x['search_seconds'] / max(1, len(rows)):.1f} s/epoch)",
        "",
        "## Result",
        "",
        f"- winner: **{r.predicted_ms:.3f} ms** predicted, target {r.target_ms:g} ms, "
        f"margin {r.margin_ms:.3f} ms",
        f"- θ's pick (each layer's depth first): {x['argmax']['predicted_ms']:.3f} ms → "
        + ("repaired under the target by the exact DP" if x["repaired"] else "already fits"),
        f"- winner selected by {x.get('selected_by', 'θ')}; θ alone would give "
        f"{x['theta_winner']['predicted_ms']:.3f} ms"
        if "theta_winner" in x
        else "- winner selected by θ",
        f"- skip share in the winner: {x['skip_share']:.0%}",
        f"- last epoch: train acc {last['train_acc']:.3f}, θ-split acc {last['val_acc']:.3f}, "
        f"τ {last['tau']:.3f}, E[latency] {last['expected_lat_ms']:.3f} ms",
    ]


def _topk_lines(space, table, topk, by_net: bool) -> list[str]:
    label = "supernet acc (BN re-estimated)" if by_net else "θ score (depth first)"
    lines = [
        "",
        "## Top-k under the target",
        "",
        (
            "Candidates drawn from θ, ranked by their accuracy in the supernet; the first is "
            "the winner."
            if by_net
            else "Ranked by θ's layer-by-layer score (`depth_first`)."
        ),
        "",
        f"| # | predicted ms | {label} |",
        "|---|---|---|",
    ]
    return lines + [
        f"| {i + 1} | {table.predict(a, space):.3f} | {s:.3f} |" for i, (a, s) in enumerate(topk)
    ]


__all__ = ["write_plots", "write_fbnet_summary"]
