"""FBNet differentiable search on a supernet whose single paths are the exported networks.

Schedule (FBNet, Sec. 4.1): the training split (80%) trains the supernet weights, the
validation split (20%) trains θ.  Warm-up epochs train weights only, on sampled paths
(``sampling``: depth-uniform per stage by default, ``supernet.train.depth_path``);
afterwards each epoch interleaves one pass over both splits (a θ step after every ~4 weight
steps) and the weight steps follow paths sampled from θ.  Weights: SGD (lr cosine from
``w_lr``, momentum 0.9, wd 1e-4); θ: Adam (lr 0.01, wd 5e-4).  Gumbel temperature
τ = τ0 · e^(−0.045 · epoch).  The θ loss is ``fbnet_loss.theta_loss``.

Weight steps use ``FBNetSupernet.forward_anchored`` (stage-first layers run the anchor, and
the sampled candidate learns the anchor's output), so the supernet trains on all 22 layers.
From a trained supernet (``supernet``, ``hwnas supernet train``) the weights stay as trained
and θ alone learns, one θ step per batch of the supernet's own held-out split, on which the
candidates are scored too (as evolution scores them); ``tune_weights`` trains the weights as
well, on the schedule above.  Continuing to train them cost the supernet: after 4 soft epochs
on 2,000 images its random paths fell from 67.5% to 58.9% held out, and the winners retrained
0.55 points below the scaled reference (3 seeds, 0.7x).

θ steps run the sampled path itself: ``hard`` (GDAS) straight-through one-hot samples, or
``soft`` (FBNet) — every candidate of a layer, weighted, at sampled widths.

At the end ``select`` draws distinct architectures under T from θ (the exact DP
``LatencyTable.best_under`` on perturbed log softmax(θ)) and scores them in the supernet,
BatchNorm re-estimated; ``refine`` then evolves them on the supernet for a few generations
(mutation and crossover under T, as ``search.evolution``); the ``RESCORE`` best are scored
again on the whole θ split and the best of those wins (``select=0``: the highest-θ
architecture under T); with ``confirm`` (default 3) those leaders and the table's capacity
picks are then trained stand-alone for ``confirm_epochs`` and the best on the held-out split
wins (``search.confirm``).  Measured at 0.7x over 3 seeds, the
refinement lifted the retrained winners from 75.20 to 77.69% (θ's candidates are
skip-heavy).  Every candidate meets the target.  The winner and a few random paths are then
evaluated on the θ split, so the run says what the supernet learnt.

Everything trains and scores on ``cfg.accelerator`` (``steps``, ``state``); the library
default is the CPU, where the results are those of the code before accelerators.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from hwnas.data import load_for_space
from hwnas.latency import LatencyTable
from hwnas.progress import progress_bar
from hwnas.space import Arch, SearchSpace
from hwnas.supernet import SupernetError

from . import report
from ..confirm import settle
from ..evolution.ops import full_score
from ..tables import check_target, table_and_space
from ..base import (
    SearchError,
    SearchResult,
    accelerator_of,
    prepare_out,
    write_config,
    write_log,
    write_result,
)
from .config import FBNetConfig
from .select import choose, supernet_accuracy, supernet_note
from .state import CKPT, load, new_state, save
from .steps import argmax_arch, epoch_line, run_epoch, skip_share

logger = logging.getLogger(__name__)

SKIP_WARN_SHARE = 0.5


def search(
    cfg: FBNetConfig,
    table: LatencyTable | None = None,
    space: SearchSpace | None = None,
    *,
    stop_after: int | None = None,
) -> SearchResult | None:
    """Run (or resume) an FBNet search; returns its result, as written to arch.json (None
    when stopped early after ``stop_after`` epochs, which is for tests and time-boxing)."""
    out = Path(cfg.out)
    accelerator_of(cfg, say=False)  # an absent one: one line, before anything is written
    table, space = table_and_space(cfg, table, space)
    check_target(table, space, cfg.target_ms)
    start = splits = None
    if cfg.supernet:  # checked (space and data) before anything is written, and read once
        from hwnas.supernet.store import open_supernet

        try:
            net, _, splits = open_supernet(cfg.supernet, space, cfg.data)
        except SupernetError as e:
            raise SearchError(str(e)) from None
        start = net.state_dict()
    resuming = prepare_out(cfg, out, CKPT)
    out.mkdir(parents=True, exist_ok=True)
    write_config(out, cfg)
    acc = accelerator_of(cfg)  # auto says which, once the input is checked
    if splits is None:  # from scratch: cfg.subset by seed (a supernet's: its own split)
        splits = load_for_space(cfg.data, cfg.data_root, space, cfg.seed, cfg.subset)
    if len(splits.val) == 0:
        raise SearchError("the θ split is empty: use a larger --subset")
    state = new_state(space, cfg, start, acc)
    if cfg.frozen:  # θ's gradient only: no weight gradients to compute
        state.net.requires_grad_(False)
    if resuming:
        load(state, out)
        logger.info(f"resuming {out} after epoch {state.epoch}/{cfg.epochs}")
    ran = 0
    with progress_bar("search", cfg.epochs) as epochs_bar, progress_bar("epoch", None) as bar:
        epochs_bar.update(completed=state.epoch)
        while state.epoch < cfg.epochs and (stop_after is None or ran < stop_after):
            t0 = time.perf_counter()
            row = run_epoch(state, cfg, space, table, splits, bar)
            row["seconds"] = time.perf_counter() - t0
            state.history.append({"row": row, "theta": [t.detach().tolist() for t in state.theta]})
            state.epoch += 1
            ran += 1
            save(state, out)
            write_log(out, [h["row"] for h in state.history])
            if row["phase"] == "search" and row["skip_share"] > SKIP_WARN_SHARE:
                logger.warning(
                    f"epoch {row['epoch']}: θ skips {row['skip_share']:.0%} of the layers "
                    "(P(skip) > 1/2 there: collapse?)"
                )
            epochs_bar.advance(
                1, status=f"E[lat] {row['expected_lat_ms']:.2f} ms, val acc {row['val_acc']:.3f}"
            )
            logger.info(epoch_line(row, cfg.epochs))
    if state.epoch < cfg.epochs:
        return None
    return _finish(cfg, space, table, state, out, splits)


def _finish(cfg, space, table, state, out, splits) -> SearchResult:
    am = argmax_arch(space, state.theta)
    winner, topk, by_theta = choose(state.net, space, table, state.theta, cfg, splits)
    confirmed = None
    if cfg.select:  # the leaders by supernet accuracy, trained stand-alone with capacity picks
        fitness = {a.choices: v for a, v in topk}
        ranked = [a.choices for a, _ in topk]
        score = lambda a: full_score(state.net, space, a, splits, cfg.seed)  # noqa: E731
        confirmed = settle(cfg, score, space, table, ranked, fitness, splits, out)
        if confirmed:
            winner = Arch.of(space, confirmed["candidates"][0]["choices"], "fbnet")
    rows = [h["row"] for h in state.history]
    seen = supernet_accuracy(state.net, space, winner, splits, cfg.seed)
    extra = {
        "mode": cfg.mode,
        "argmax": {"choices": list(am.choices), "predicted_ms": table.predict(am, space)},
        "repaired": am.choices != by_theta.choices,
        "selected_by": (
            "supernet accuracy"
            + (f", {cfg.refine} generations of evolution from θ's candidates" if cfg.refine else "")
            + (f", confirmed by {cfg.confirm_epochs} epoch(s) of training" if confirmed else "")
            if cfg.select
            else "θ"
        ),
        "theta_winner": {
            "choices": list(by_theta.choices),
            "predicted_ms": table.predict(by_theta, space),
        },
        "search_seconds": sum(r["seconds"] for r in rows),
        "skip_share": skip_share(space, winner),
        "supernet": seen,
        "supernet_note": supernet_note(space, seen),
        "confirm": confirmed,
    }
    result = write_result(out, space, table, winner, cfg.target_ms, "fbnet", topk, extra)
    report.write_plots(out, space, state.history, cfg.target_ms)
    report.write_fbnet_summary(out, cfg, space, table, result, rows, topk)
    logger.info(
        f"supernet (BN re-estimated, θ split): winner {seen['winner_acc']:.3f}, "
        f"{len(seen['random_acc'])} random paths mean {seen['random_mean']:.3f} "
        f"(min {min(seen['random_acc']):.3f}, max {max(seen['random_acc']):.3f})"
    )
    if extra["skip_share"] > SKIP_WARN_SHARE:
        logger.warning(f"the winner is {extra['skip_share']:.0%} skip ops")
    if result.supernet_note:
        logger.warning(result.supernet_note)
    return result


__all__ = ["search"]
