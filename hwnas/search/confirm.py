"""Confirmation: a search's last step, settled by short stand-alone training.

A supernet tells networks of one latency apart only roughly.  Over 45 networks of fbnet-small
at 0.7x the reference's latency, each retrained with the 4-epoch recipe, the supernets trained
here ranked at Kendall τ 0.38–0.49, and they all underrate the networks with many
expansion-6 blocks: the best two retrained networks sat 1.5–2.5 supernet points below the
shallow mixes of expansion 1/3 blocks the searches then picked.  One epoch of stand-alone
training ranks 18 of those networks at τ 0.70 (the supernet: 0.35–0.43 over the same 18;
docs/benchmarks.md, "Confirmation").  So the search ends by training its candidates:

* the ``leaders`` best-scored by the supernet (after re-scoring on the whole held-out split);
* the table's *capacity picks*: the exact DP (``LatencyTable.best_under``) maximising a
  per-choice capacity score under the same target (``CAPACITY_PRIORS``): the high-capacity
  networks the supernet misjudges, each ≤ T by construction;

each trained ``epochs`` from scratch on the search's training split and scored on its held-out
split (never the test set); the best wins, and within one standard error of it the most
accurate of those that spend most of the target (``rank_trained``).  Results go to ``confirm.json`` as each
finishes, so an interrupted search resumes there.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import torch

from hwnas.io import atomic_write_json
from hwnas.latency import LatencyTable
from hwnas.progress import progress_bar
from hwnas.space import Arch, SearchSpace, build_model, parse_key
from hwnas.space.blocks import IRBlock
from hwnas.train import TrainConfig, train

from .base import CHANCE_FACTOR
from .baselines import scaled_reference

logger = logging.getLogger(__name__)

CONFIRM = "confirm.json"
# name: (score per width step, scores of expansion 6/3/1, bonus of a 5x5 kernel); grouped
# convs count 0.8x.  Retrained at 0.7x on a host-ort table (4 epochs, 5 seeds): e6only 90.42%,
# macs 90.25%, width 89.39%, depth 88.06%, the scaled reference 89.31%.  On a host-litert table
# (seed 0): e6only 89.54%, macs 88.71% against the reference's 90.11%.
CAPACITY_PRIORS = {
    "macs": (2, (3, 2, 1), 0.3),
    "depth": (1, (3.5, 3.2, 3), 0.2),
    "width": (6, (3, 2, 1), 0.3),
    "e6only": (2, (3, 0.5, 0.2), 0.5),
    "e6stages": (2, (3, 0.5, 0.2), 0.5),  # e6only, every stage opened by an expansion-6 block
}
# Priors whose pick opens every stage of several layers with an expansion-6 block, as
# MobileNetV2 does (no stage left empty, none opened by a thin block).  On a host-litert
# table (compute-bound) at 0.7x the `e6only` pick skipped all of stage 2, the highest-
# resolution stage after the stem, and retrained to 89.14 ± 0.28% (seeds 0-2) against the
# scaled reference's 89.94 ± 0.17%; the same prior with stage 2 kept: 90.11 / 90.58% (seeds 0, 2).
WHOLE_STAGES = ("e6stages",)
UNWANTED = -1e6  # a choice's score that any other choice outweighs
# predicted latencies this close are one latency: a host table predicts whole networks to
# 1-3% (MAPE, held out), a phone table to no better
SAME_LATENCY = 0.05
CAPACITY = ("e6only", "e6stages", "macs")  # the picks a confirmation trains by default


def checks(cfg) -> list[tuple[bool, str]]:
    """The confirmation's settings as a search config carries them (``confirm``,
    ``confirm_epochs``, ``confirm_images``): (holds, one-line error) pairs."""
    return [
        (cfg.confirm >= 0, f"--confirm must be at least 0 (got {cfg.confirm})"),
        (
            cfg.confirm_epochs >= 1,
            f"--confirm-epochs must be at least 1 (got {cfg.confirm_epochs})",
        ),
        (
            cfg.confirm_images == 0 or cfg.confirm_images >= 2,
            f"--confirm-images must be 0 (all) or at least 2 (got {cfg.confirm_images})",
        ),
    ]


def op_capacity(op: str, prior: str) -> float | None:
    """A block's score under ``prior`` (0 for ``skip``); None for an op the priors do not
    describe (not an inverted residual)."""
    if op == "skip":
        return 0.0
    _, expansion, k5 = CAPACITY_PRIORS[prior]
    spec = parse_key(op)
    if not isinstance(spec, IRBlock) or spec.expansion not in (6, 3, 1):
        return None
    score = dict(zip((6, 3, 1), expansion))[spec.expansion]
    return score * (0.8 if spec.groups > 1 else 1.0) + (k5 if spec.kernel == 5 else 0.0)


def _expansion(op: str) -> int | None:
    return getattr(parse_key(op), "expansion", None)


def capacity_arch(
    space: SearchSpace, table: LatencyTable, target_ms: float, prior: str
) -> Arch | None:
    """The architecture under ``target_ms`` with the highest total ``prior`` score (the
    table's exact DP); None where the space has choices the priors do not describe (only the
    fbnet family's ops are whole block keys)."""
    if space.family != "fbnet":
        return None
    width_step = CAPACITY_PRIORS[prior][0]
    kept = {f"{st.name}.l0.op" for st in space.stages if st.layers > 1}
    scores = []
    for c in space.choices:
        if c.kind == "width":
            scores.append([width_step * i for i in range(len(c.options))])
        elif c.kind == "op":
            row = [op_capacity(o, prior) for o in c.options]
            if None in row:
                return None
            if prior in WHOLE_STAGES and c.name in kept:  # chosen only where nothing else fits
                row = [r if _expansion(o) == 6 else UNWANTED for o, r in zip(c.options, row)]
            scores.append(row)
        else:
            return None
    return Arch.of(space, table.best_under(space, scores, target_ms).choices, f"capacity-{prior}")


def candidates(
    space: SearchSpace,
    table: LatencyTable,
    target_ms: float,
    ranked: list[tuple],
    fitness: dict,
    leaders: int,
    priors: tuple[str, ...] = CAPACITY,
) -> list[dict]:
    """What a confirmation trains: the first ``leaders`` of ``ranked`` (choices, best first
    by the supernet's ``fitness``, which each row keeps as ``supernet_acc``), then each
    prior's capacity pick not among them (no ``supernet_acc``: the caller scores it)."""
    rows = [
        {"choices": list(a), "source": f"supernet #{i + 1}", "supernet_acc": fitness[a]}
        for i, a in enumerate(ranked[:leaders])
    ]
    for p in priors:
        a = capacity_arch(space, table, target_ms, p)
        if a is not None and all(r["choices"] != list(a.choices) for r in rows):
            rows.append({"choices": list(a.choices), "source": f"capacity {p}"})
    return rows


def settle(cfg, score, space, table, ranked, fitness: dict, splits, out) -> dict | None:
    """A search's confirmation with its settings (``cfg.confirm`` leaders of ``ranked``,
    ``cfg.confirm_epochs`` on ``cfg.confirm_images`` (0: all), ``cfg.seed``,
    ``cfg.accelerator``); None when ``cfg.confirm`` is
    0.  Candidates the supernet had not re-scored are scored first by ``score(choices)`` (the
    search's re-scoring: the whole held-out split) into ``fitness``, for the report.  The
    MobileNetV2-like reference scaled to the target is trained the same way beside them —
    not a candidate, the bar the report shows.
    Returns ``{"epochs", "images", "split", "tie_window", "candidates": winner first,
    "reference": row or None}``, and ``"note"`` when the trainings stayed near chance."""
    if not cfg.confirm:
        return None
    rows = candidates(space, table, cfg.target_ms, ranked, fitness, cfg.confirm)
    try:
        ref = scaled_reference(space, table, cfg.target_ms)
    except (KeyError, ValueError):  # the space cannot express the reference
        ref = None
    extra = [] if ref is None else [{"choices": list(ref.choices), "source": "scaled reference"}]
    for r in rows + extra:
        a = tuple(r["choices"])
        r["predicted_ms"] = table.predict(Arch.of(space, a), space)
        if "supernet_acc" not in r:  # scored as the re-scored leaders were
            r["supernet_acc"] = fitness[a] = score(a)
    logger.info(
        f"confirming {len(rows)} candidates by {cfg.confirm_epochs} epoch(s) of stand-alone "
        "training each"
        + (f" on {cfg.confirm_images:,} training images" if cfg.confirm_images else "")
        + (", and the scaled reference beside them" if extra else "")
    )
    trained = confirm(
        space,
        rows + extra,
        splits,
        out,
        cfg.confirm_epochs,
        cfg.seed,
        cfg.accelerator,
        cfg.confirm_images or None,
    )
    order, window = rank_trained(trained[: len(rows)], len(splits.val))
    settled = {
        "epochs": cfg.confirm_epochs,
        "images": min(cfg.confirm_images or len(splits.train), len(splits.train)),
        "split": "val",
        "tie_window": window,
        "candidates": [trained[i] for i in order],
        "reference": trained[len(rows)] if extra else None,
    }
    note = chance_note(settled, space.num_classes)
    if note:
        logger.warning(note)
        settled["note"] = note
    return settled


def rank_trained(rows: list[dict], n_val: int) -> tuple[list[int], float]:
    """The confirmation's order (indices into ``rows``, winner first) and its tie window.

    Candidates whose held-out accuracy is within one standard error of a difference,
    sqrt(2·p·(1 − p) / n_val) at the best accuracy p, of the best are tied: of those the ones
    that spend most of the target (within ``SAME_LATENCY`` of the largest ``predicted_ms``,
    closer than a table tells networks apart) stay, because a short training underrates
    capacity — one epoch favours the networks that learn fastest, which are the smaller ones
    (on a host-litert table at 0.7x: a supernet leader at 0.056 ms read 85.0% after one epoch
    and the `e6stages` pick at 0.068 ms 84.9%; with the 4-epoch recipe they retrain to 89.08
    and 90.26%); the most accurate of those wins.  The rest follow by accuracy."""
    accs = [r["proxy_acc"] for r in rows]
    best = max(accs)
    window = math.sqrt(2 * best * (1 - best) / n_val) if n_val else 0.0
    tied = [i for i, a in enumerate(accs) if a >= best - window]
    biggest = max(rows[i]["predicted_ms"] for i in tied)
    tied = [i for i in tied if rows[i]["predicted_ms"] >= (1 - SAME_LATENCY) * biggest]
    win = max(tied, key=lambda i: (accs[i], -i))
    rest = sorted((i for i in range(len(rows)) if i != win), key=lambda i: (-accs[i], i))
    return [win] + rest, window


def chance_note(settled: dict, num_classes: int) -> str | None:
    """A warning when every candidate's trained accuracy is near chance (under
    ``CHANCE_FACTOR`` / classes): then their order, and so the winner, is noise."""
    best = max(c["proxy_acc"] for c in settled["candidates"])
    chance = 1.0 / num_classes
    if best >= CHANCE_FACTOR * chance:
        return None
    return (
        f"the confirmation's trainings stayed near chance (best {best:.3f} held out after "
        f"{settled['epochs']} epoch(s); chance {chance:.3f}): they cannot tell the candidates "
        "apart, so the winner is a draw among them; raise --confirm-epochs or --subset"
    )


def confirm(
    space: SearchSpace,
    rows: list[dict],
    splits,
    out: Path,
    epochs: int = 1,
    seed: int = 0,
    accelerator: str = "cpu",
    images: int | None = None,
    batch_size: int = 128,
) -> list[dict]:
    """Train each network of ``rows`` stand-alone (``epochs``, ``seed``, ``batch_size``; on
    ``images`` training images, a seeded choice, or all of them) and score it on the held-out
    split; returns the rows, in their order, with ``proxy_acc`` and ``seconds``.
    ``out/confirm.json`` keeps each result as it finishes; a row already there (same choices,
    epochs, seed, images and batch size) is not trained again."""
    path = Path(out) / CONFIRM
    setting = {"epochs": epochs, "seed": seed, "images": images, "batch_size": batch_size}
    done = {}
    if path.exists():
        kept = {"batch_size": 128, **json.loads(path.read_text())}  # older files: 128
        if all(kept.get(k) == v for k, v in setting.items()):
            done = {tuple(r["choices"]): r for r in kept["candidates"] if "proxy_acc" in r}
    if images is not None and images < len(splits.train):
        pick = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(seed))
        splits = dataclasses.replace(splits, train=splits.train.subset(pick[:images].sort()[0]))
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, accelerator=accelerator)
    results = []
    with progress_bar("confirm", len(rows)) as bar:
        for row in rows:
            key = tuple(row["choices"])
            if key not in done:
                t0 = time.perf_counter()
                with torch.random.fork_rng(devices=[]):  # the initial weights: from seed
                    torch.manual_seed(seed)
                    model = build_model(space, Arch.of(space, row["choices"]))
                acc = train(model, splits, cfg, progress=False, test=False).val_acc
                done[key] = {"proxy_acc": acc, "seconds": time.perf_counter() - t0}
                logger.info(
                    f"confirm: {row['source']} {acc:.4f} held out after {epochs} epoch(s), "
                    f"{done[key]['seconds']:.0f} s"
                )
                so_far = [{"choices": list(k), **v} for k, v in done.items()]
                atomic_write_json(path, {**setting, "candidates": so_far})
            results.append(
                {**row, "proxy_acc": done[key]["proxy_acc"], "seconds": done[key]["seconds"]}
            )
            bar.advance(1)
    return results


def summary_lines(confirm: dict | None) -> list[str]:
    """A summary.md's confirmation table (a run's ``extra["confirm"]``): every candidate
    trained, best first, the winner marked."""
    if not confirm:
        return []
    lines = [
        "",
        "## Confirmation",
        "",
        f"Each candidate trained stand-alone for {confirm['epochs']} epoch(s)"
        + (f" on {confirm['images']:,} training images" if confirm.get("images") else "")
        + " and scored on the held-out split; the best is the winner (a supernet ranks "
        "networks of one latency only roughly and underrates high-capacity ones)"
        + (
            f"; within {100 * confirm['tie_window']:.2f} points of the best (one standard "
            "error), the most accurate of those spending most of the target (within "
            f"{SAME_LATENCY:.0%} of the largest latency) wins, as a short training underrates "
            "capacity."
            if confirm.get("tie_window")
            else "."
        ),
        "",
        "| # | from | predicted ms | supernet acc | trained acc |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {i + 1}{' (winner)' if i == 0 else ''} | {c['source']} | {c['predicted_ms']:.3f} "
        f"| {c['supernet_acc']:.3f} | {c['proxy_acc']:.3f} |"
        for i, c in enumerate(confirm["candidates"])
    ]
    ref = confirm.get("reference")
    if ref:
        lines += [
            f"| – | MobileNetV2-like reference scaled to the target (not a candidate) "
            f"| {ref['predicted_ms']:.3f} | {ref['supernet_acc']:.3f} | {ref['proxy_acc']:.3f} |"
        ]
    if confirm.get("note"):
        lines += ["", f"**Warning:** {confirm['note']}."]
    return lines


__all__ = [
    "CAPACITY",
    "checks",
    "CAPACITY_PRIORS",
    "SAME_LATENCY",
    "WHOLE_STAGES",
    "CONFIRM",
    "capacity_arch",
    "candidates",
    "chance_note",
    "rank_trained",
    "confirm",
    "settle",
    "summary_lines",
]
