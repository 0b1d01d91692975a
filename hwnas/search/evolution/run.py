"""Evolutionary search on a trained supernet (Single Path One-Shot, Guo et al., ECCV 2020).

Given a supernet trained once (``hwnas supernet train``) and any latency table of the same
space, the search keeps a population of architectures under the target:

* the first generation: ``population`` distinct architectures under the target, half drawn
  uniformly (rejection sampling, ``search.baselines.random_under``), half with the
  supernet's depth-uniform sampling (``first_generation``);
* fitness: the architecture's held-out accuracy *in the supernet*, its BatchNorm statistics
  re-estimated on ``calib_batches`` training batches (``supernet.path_accuracy``), on the
  supernet's own held-out split; cached per architecture;
* each generation keeps the ``parents`` fittest seen so far and makes ``population`` new
  distinct children, half by mutation (each choice re-drawn with probability ``mutation``)
  and half by uniform crossover of two parents; a child over the target is redrawn (at most
  ``REDRAWS`` times, then repaired under it by the table's exact DP);
* at the end the ``rescore`` fittest are scored again on the whole held-out split with
  ``supernet.CALIBRATION_BATCHES`` calibration batches, and the best of that re-scoring
  wins: the generations' fitness (1,024 images) has a standard error of about 1.4 points,
  as large as the gaps between the leaders, so the maximum of many noisy scores would
  otherwise favour the luckiest draw (the winner's curse).  The scaled reference is scored
  the same way;
* with ``confirm`` (default 3), the confirmation (``search.confirm``): the ``confirm``
  re-scored leaders and the table's capacity picks are trained stand-alone for
  ``confirm_epochs`` and the best on the held-out split wins (``confirm.json``).

Every evaluated architecture and every capacity pick is under the target, so the winner is too.
The run writes what the other strategies write (``arch.json``, ``topk.json``, ``log.csv``,
``config.json``, ``summary.md``) plus ``evolution.png``; ``state.json`` after each generation
lets ``--resume`` finish with the same result as an uninterrupted run.

Paths are scored on ``cfg.accelerator`` (the supernet is moved there; ``path_accuracy``
follows it, in its autocast); the library default is the CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from pathlib import Path

from hwnas.io import atomic_write_json
from hwnas.latency import LatencyTable
from hwnas.progress import progress_bar
from hwnas.space import Arch, SearchSpace
from hwnas.supernet import SupernetError, path_accuracy
from hwnas.supernet.store import open_supernet

from . import report
from ..confirm import settle
from ..baselines import scaled_reference
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
from .config import EvolutionConfig
from .ops import first_generation, full_score, next_generation, rank, rescore_leaders
from .state import STATE, load_state, save_state

logger = logging.getLogger(__name__)


def _load(cfg: EvolutionConfig, table, space):
    """The table, the space and the supernet (on ``cfg.accelerator``), its manifest and
    splits; an absent accelerator is one line, before anything is written."""
    acc = accelerator_of(cfg, say=False)  # auto is said when a search starts (_search)
    table, space = table_and_space(cfg, table, space)
    try:
        net, manifest, splits = open_supernet(cfg.supernet, space, cfg.data)
    except SupernetError as e:
        raise SearchError(str(e)) from None
    return table, space, (net.to(acc.device), manifest, splits)


def target_dir(out: str | Path, target_ms: float) -> Path:
    """Where ``search_targets`` puts the search for one target: ``out/t<ms>ms``."""
    return Path(out) / f"t{target_ms:g}ms"


def search_targets(
    cfg: EvolutionConfig,
    targets: list[float],
    table: LatencyTable | None = None,
    space: SearchSpace | None = None,
) -> list[SearchResult]:
    """One search per target on one loaded supernet, each into ``target_dir(out, t)``; then
    the accuracy–latency front of the winners (supernet accuracy, with the scaled reference at
    each target) as ``out/front.png`` and ``out/front.json``; the results in target order."""
    table, space, loaded = _load(cfg, table, space)
    for t in targets:  # every target checked before anything is written
        check_target(table, space, t)
    out = Path(cfg.out)
    results = []
    for t in targets:
        sub = dataclasses.replace(cfg, target_ms=t, out=str(target_dir(out, t)))
        results.append(_search(sub, table, space, loaded, None))
    atomic_write_json(
        out / "front.json",
        [
            {
                "target_ms": r.target_ms,
                "predicted_ms": r.predicted_ms,
                "out": str(target_dir(out, r.target_ms)),
                "winner_acc": r.extra["supernet"]["winner_acc"],
                "reference_ms": (r.extra["supernet"]["scaled_reference"] or {}).get("predicted_ms"),
                "reference_acc": r.extra["supernet"]["scaled_reference_acc"],
                # after the confirmation's training (None without one)
                "winner_trained_acc": report.trained_accs(r)[0],
                "reference_trained_acc": report.trained_accs(r)[1],
            }
            for r in results
        ],
    )
    report.plot_front(out, results)
    return results


def search(
    cfg: EvolutionConfig,
    table: LatencyTable | None = None,
    space: SearchSpace | None = None,
    *,
    stop_after: int | None = None,
) -> SearchResult | None:
    """Run (or resume) an evolutionary search; returns its result, as written to arch.json
    (None when stopped early after ``stop_after`` generations)."""
    return _search(cfg, table, space, None, stop_after)


def _search(cfg, table, space, loaded, stop_after) -> SearchResult | None:
    """``search``, where ``loaded`` is the (supernet, manifest, splits) another target's
    search already loaded (None: load them)."""
    out = Path(cfg.out)
    if loaded is None:
        table, space, loaded = _load(cfg, table, space)
    net, manifest, splits = loaded
    check_target(table, space, cfg.target_ms)
    resuming = prepare_out(cfg, out, STATE)
    out.mkdir(parents=True, exist_ok=True)
    write_config(out, cfg)
    accelerator_of(cfg)  # auto says which, once the input is checked
    rng = random.Random(cfg.seed)
    if resuming:
        gen, population, fitness, history = load_state(out, rng)
        logger.info(f"resuming {out} after generation {gen}/{cfg.generations}")
    else:
        gen, fitness, history = 0, {}, []
        population = first_generation(space, table, cfg.target_ms, net, cfg.population, rng)
    state = (gen, population, fitness, history)
    gen = _evolve(cfg, space, table, net, splits, out, rng, state, stop_after)
    if gen < cfg.generations:
        return None
    return _finish(cfg, space, table, out, fitness, history, manifest, net, splits)


def _evolve(cfg, space, table, net, splits, out, rng, state, stop_after) -> int:
    """Generations until the last (or ``stop_after`` of them), each scored, logged and saved;
    ``state`` (generation, population, fitness, history) is updated in place; returns the
    generations done."""
    gen, population, fitness, history = state
    ran = 0
    with (
        progress_bar("evolution", cfg.generations) as gens_bar,
        progress_bar("generation", None) as bar,
    ):
        gens_bar.update(completed=gen)
        while gen < cfg.generations and (stop_after is None or ran < stop_after):
            t0 = time.perf_counter()
            bar.update(
                total=len(population),
                completed=0,
                description=f"generation {gen + 1}/{cfg.generations}",
            )
            for a in population:
                _score(cfg, net, space, splits, fitness, a)
                bar.advance(1)
            gen += 1
            ran += 1
            row = _row(gen, population, fitness, table, space, time.perf_counter() - t0)
            history.append(row)
            if gen < cfg.generations:
                population = next_generation(
                    space,
                    table,
                    cfg.target_ms,
                    fitness,
                    population,
                    cfg.population,
                    cfg.parents,
                    cfg.mutation,
                    rng,
                )
            save_state(out, gen, population, fitness, history, rng)
            write_log(out, history)
            gens_bar.advance(1, status=f"best {row['best_acc']:.3f}")
            logger.info(
                f"generation {gen}/{cfg.generations}: best {row['best_acc']:.3f} at "
                f"{row['best_ms']:.3f} ms, population mean {row['mean_acc']:.3f}, "
                f"{row['evaluated']} evaluated, {row['seconds']:.0f} s"
            )
    return gen


def _score(cfg, net, space, splits, fitness: dict, a: tuple) -> float:
    """``a``'s fitness (supernet accuracy on a few held-out batches), cached in ``fitness``."""
    if a not in fitness:
        fitness[a] = path_accuracy(
            net,
            Arch.of(space, a),
            splits,
            calib_batches=cfg.calib_batches,
            max_eval_batches=cfg.eval_batches,
            seed=cfg.seed,
        )
    return fitness[a]


def _row(gen: int, population, fitness: dict, table, space, seconds: float) -> dict:
    """A generation's log row: the best so far, the population's mean, evaluations, time."""
    best = rank(fitness, table, space)[0]
    return {
        "generation": gen,
        "best_acc": fitness[best],
        "mean_acc": sum(fitness[a] for a in population) / len(population),
        "best_ms": table.predict(best, space),
        "evaluated": len(fitness),
        "seconds": seconds,
    }


def _finish(cfg, space, table, out, fitness, history, manifest, net, splits) -> SearchResult:
    ranked = rank(fitness, table, space)
    if cfg.rescore:  # topk.json lists re-scored accuracies only
        ranked, fitness = rescore_leaders(
            net, space, table, fitness, max(cfg.rescore, cfg.topk), splits, cfg.seed
        )
    score = lambda a: full_score(net, space, a, splits, cfg.seed)  # noqa: E731
    confirmed = settle(cfg, score, space, table, ranked, fitness, splits, out)
    best = tuple(confirmed["candidates"][0]["choices"]) if confirmed else ranked[0]
    winner = Arch.of(space, best, "evolution")
    topk = [(Arch.of(space, a, "evolution"), fitness[a]) for a in ranked[: max(cfg.topk, 1)]]
    ref, ref_acc = _scaled_reference(cfg, net, space, table, splits)
    extra = {
        "supernet": {
            "path": str(cfg.supernet),
            "random_paths_mean": manifest["random_paths"]["mean"],
            "winner_acc": fitness[best],
            "scaled_reference_acc": ref_acc,
            "rescored": cfg.rescore,
            "scaled_reference": None
            if ref is None
            else {
                "choices": list(ref.choices),
                "name": ref.name,
                "predicted_ms": table.predict(ref, space),
            },
        },
        "evaluations": len(fitness),
        "search_seconds": sum(r["seconds"] for r in history),
        "confirm": confirmed,
    }
    result = write_result(out, space, table, winner, cfg.target_ms, "evolution", topk, extra)
    report.plot(
        out, space, table, fitness, history, cfg.target_ms, winner, ref, ref_acc, bool(confirmed)
    )
    report.summary(out, cfg, space, table, result, history, topk)
    logger.info(
        f"supernet (BN re-estimated, held out): winner {fitness[best]:.3f}"
        + ("" if ref is None else f", scaled reference {ref_acc:.3f}")
    )
    return result


def _scaled_reference(cfg, net, space, table, splits) -> tuple[Arch | None, float | None]:
    """The MobileNetV2-like reference scaled to the target (None where the space cannot
    express it) and its supernet accuracy, scored as the winner was."""
    try:
        ref = scaled_reference(space, table, cfg.target_ms)
    except (KeyError, ValueError):
        return None, None
    if cfg.rescore:
        return ref, full_score(net, space, ref.choices, splits, cfg.seed)
    return ref, path_accuracy(
        net,
        ref,
        splits,
        calib_batches=cfg.calib_batches,
        max_eval_batches=cfg.eval_batches,
        seed=cfg.seed,
    )


__all__ = ["search", "search_targets", "target_dir"]
