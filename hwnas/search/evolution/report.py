"""What an evolutionary search did: ``evolution.png``, ``summary.md``, and for several
targets the accuracy–latency front (``front.png``)."""

from __future__ import annotations

from pathlib import Path

from hwnas.io import save_figure

from ..base import write_summary
from ..confirm import summary_lines


def plot_front(out: Path, results: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    # confirmed searches: the winners' and the references' accuracy after the confirmation's
    # training (what picked the winners); otherwise their supernet accuracy
    trained = all((r.extra.get("confirm") or {}).get("reference") for r in results)
    ax.plot(
        [r.predicted_ms for r in results],
        [front_accs(r, trained)[0] for r in results],
        "o-",
        color="C3",
        label="evolution winners",
    )
    refs = [r for r in results if r.extra["supernet"]["scaled_reference"]]
    if refs:
        ax.plot(
            [r.extra["supernet"]["scaled_reference"]["predicted_ms"] for r in refs],
            [front_accs(r, trained)[1] for r in refs],
            "D--",
            color="k",
            label="MobileNetV2-like, scaled",
        )
    for r in results:
        ax.axvline(r.target_ms, color="0.7", ls=":", lw=1)
    ax.set_xlabel("predicted latency (ms; dotted: targets)")
    ax.set_ylabel(
        f"held-out accuracy after {results[0].extra['confirm']['epochs']} epoch(s) of training"
        if trained
        else "supernet accuracy (held out, BN re-estimated)"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "front.png")


def trained_accs(result) -> tuple[float | None, float | None]:
    """The held-out accuracy the confirmation's training gave a search's winner and its
    scaled reference (None where there was no confirmation, or no reference)."""
    c = result.extra.get("confirm") or {}
    winner = (c.get("candidates") or [None])[0]
    ref = c.get("reference")
    return (
        None if winner is None else winner["proxy_acc"],
        None if ref is None else ref["proxy_acc"],
    )


def front_accs(result, trained: bool) -> tuple[float | None, float | None]:
    """A target's (winner, scaled reference) accuracy on the front: after the confirmation's
    training when ``trained``, else in the supernet."""
    if trained:
        return trained_accs(result)
    s = result.extra["supernet"]
    return s["winner_acc"], s["scaled_reference_acc"]


def plot(
    out, space, table, fitness, history, target, winner, ref, ref_acc, confirmed=False
) -> None:
    """``evolution.png``: every architecture scored, winner and scaled reference marked, by
    supernet accuracy; and the generations.  A ``confirmed`` winner was picked by training,
    not by this axis, and its legend says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    pts = [(table.predict(a, space), v) for a, v in fitness.items()]
    a1.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, alpha=0.5, label="evaluated")
    a1.scatter(
        [table.predict(winner, space)],
        [fitness[winner.choices]],
        marker="*",
        s=160,
        color="C3",
        label="winner (picked by training)" if confirmed else "winner",
    )
    if ref is not None:
        a1.scatter(
            [table.predict(ref, space)],
            [ref_acc],
            marker="D",
            s=60,
            color="k",
            label="MobileNetV2-like, scaled",
        )
    a1.axvline(target, color="k", ls="--", lw=1, label=f"target {target:g} ms")
    a1.set_xlabel("predicted latency (ms)")
    a1.set_ylabel("supernet accuracy (held out, BN re-estimated)")
    a1.legend(fontsize=8)
    g = [r["generation"] for r in history]
    a2.plot(g, [r["best_acc"] for r in history], "o-", label="best so far")
    a2.plot(g, [r["mean_acc"] for r in history], "s--", label="population mean")
    a2.set_xlabel("generation")
    a2.set_ylabel("supernet accuracy")
    a2.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "evolution.png")


# what a supernet lead means (docs/benchmarks.md, "Search quality"): a winner 5 points
# ahead of the scaled reference in the supernet retrained a point below it on host-litert
SUPERNET_CAVEAT = (
    "supernet accuracy orders architectures only roughly (Kendall τ 0.4–0.5 against "
    "stand-alone training in hwnas's benchmarks; a 5-point lead over the reference has "
    "retrained to a 1-point loss): `hwnas export RUN --reference` trains both with one "
    "recipe and ships the better on validation"
)


def summary(out, cfg, space, table, result, history, topk) -> None:
    """summary.md: the settings, the winner (``result``, a SearchResult) and the top-k."""
    r, x = result, result.extra
    s = x["supernet"]
    lines = [
        f"# Evolutionary search — {out.name}",
        "",
        f"- space **{space.name}** (resolution {space.resolution}); supernet `{s['path']}` "
        f"(random paths {s['random_paths_mean']:.3f} held out)",
        f"- table `{r.table}` ({r.provenance.get('device', '?')}, "
        f"{r.provenance.get('backend', '?')})",
        f"- population {cfg.population}, {cfg.generations} generations, {cfg.parents} parents, "
        f"mutation {cfg.mutation}; {x['evaluations']} architectures evaluated in "
        f"{x['search_seconds']:.0f} s",
        "",
        "## Result",
        "",
        f"- winner: **{r.predicted_ms:.3f} ms** predicted, target {r.target_ms:g} ms, "
        f"margin {r.margin_ms:.3f} ms; supernet accuracy **{s['winner_acc']:.3f}**",
        (
            "- MobileNetV2-like reference scaled to the target: "
            f"{s['scaled_reference']['predicted_ms']:.3f} ms, supernet accuracy "
            f"{s['scaled_reference_acc']:.3f}"
            if s["scaled_reference"]
            else "- (the space cannot express the MobileNetV2-like reference)"
        ),
        f"- {SUPERNET_CAVEAT}",
        "",
        "| layer | choice |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in r.arch.to_dict(space)["values"].items()]
    lines += [
        "",
        "## Top-k under the target",
        "",
        "| # | predicted ms | supernet acc |",
        "|---|---|---|",
    ]
    lines += [
        f"| {i + 1} | {table.predict(a, space):.3f} | {v:.3f} |" for i, (a, v) in enumerate(topk)
    ]
    lines += summary_lines(x.get("confirm"))
    lines += ["", "Plot: `evolution.png`; per-generation numbers in `log.csv`."]
    write_summary(out, "\n".join(lines))


__all__ = ["SUPERNET_CAVEAT", "plot_front", "plot", "summary"]
