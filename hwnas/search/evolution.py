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
  the same way.

Every evaluated architecture is under the target, so the winner (the fittest seen) is too.
The run writes what the other strategies write (``arch.json``, ``topk.json``, ``log.csv``,
``config.json``, ``summary.md``) plus ``evolution.png``; ``state.json`` after each generation
lets ``--resume`` finish with the same result as an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from hwnas.io import atomic_write_json, save_figure
from hwnas.latency import LatencyTable
from hwnas.progress import progress_bar
from hwnas.space import Arch, SearchSpace
from hwnas.supernet import CALIBRATION_BATCHES, SupernetError, path_accuracy
from hwnas.supernet.train import depth_path, open_supernet

from .baselines import random_under, scaled_reference
from .common import (
    SearchConfig,
    SearchError,
    check_target,
    prepare_out,
    resolve_table,
    write_config,
    write_result,
    write_summary,
)
from .fbnet_report import write_log

STATE = "state.json"
REDRAWS = 50
PARENTS = 6  # parents kept per generation by default (fewer when the population is smaller)


@dataclass(frozen=True)
class EvolutionConfig(SearchConfig):
    supernet: str = ""
    population: int = 16
    generations: int = 6
    parents: int | None = None  # None: min(6, population)
    mutation: float = 0.1
    calib_batches: int = 10  # of 64 training images, per architecture
    eval_batches: int = 4  # of 256 held-out images, per architecture
    rescore: int = 8  # the fittest re-scored on the whole held-out split at the end

    def __post_init__(self):
        if self.parents is None:
            object.__setattr__(self, "parents", min(PARENTS, self.population))
        super().__post_init__()

    def checks(self) -> list[tuple[bool, str]]:
        return [
            (
                bool(self.supernet),
                "--strategy evolution needs --supernet DIR (a folder written "
                "by `hwnas supernet train`)",
            ),
            (self.population >= 2, f"--population must be at least 2 (got {self.population})"),
            (self.generations >= 1, f"--generations must be at least 1 (got {self.generations})"),
            (
                1 <= self.parents <= self.population,
                f"--parents must be in 1..population (got {self.parents})",
            ),
            (0 < self.mutation <= 1, f"mutation must be in (0, 1] (got {self.mutation})"),
            (
                self.calib_batches >= 1 and self.eval_batches >= 1,
                "calib_batches and eval_batches must be at least 1",
            ),
            (self.rescore >= 0, f"rescore must be >= 0 (got {self.rescore})"),
        ]


def mutate(space: SearchSpace, choices: tuple, prob: float, rng: random.Random) -> tuple:
    """Each choice re-drawn with probability ``prob`` (at least one always changes)."""
    out = list(choices)
    movable = [i for i, c in enumerate(space.choices) if len(c) > 1]
    forced = rng.choice(movable) if movable else None
    for i in movable:
        if i == forced or rng.random() < prob:
            out[i] = rng.choice([k for k in range(len(space.choices[i])) if k != out[i]])
    return tuple(out)


def crossover(a: tuple, b: tuple, rng: random.Random) -> tuple:
    """Uniform crossover: each choice from either parent."""
    return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))


def rank(fitness: dict, table, space) -> list[tuple]:
    """Architectures by fitness, best first (ties: the faster first)."""
    return sorted(fitness, key=lambda a: (-fitness[a], table.predict(a, space)))


def next_generation(
    space,
    table,
    target,
    fitness: dict,
    population: list,
    size: int,
    parents: int,
    mutation: float,
    rng: random.Random,
) -> list[tuple]:
    """``size`` new distinct children under the target from the ``parents`` fittest seen."""
    best = rank(fitness, table, space)[:parents]
    seen = set(fitness) | set(population)
    children: list[tuple] = []
    while len(children) < size:
        c = _child(space, table, target, best, mutation, rng, seen | set(children))
        if c not in children:
            children.append(c)
    return children


def _child(space, table, target, parents, mutation, rng, seen) -> tuple:
    """A new child under the target, by mutation or crossover of ``parents``."""
    for _ in range(REDRAWS):
        if rng.random() < 0.5 or len(parents) < 2:
            c = mutate(space, rng.choice(parents), mutation, rng)
        else:
            a, b = rng.sample(parents, 2)
            c = crossover(a, b, rng)
        if c not in seen and table.predict(c, space) <= target:
            return c
    return tuple(table.repair(space, list(c), target).choices)


def first_generation(space, table, target, net, size: int, rng: random.Random) -> list[tuple]:
    """``size`` distinct architectures under the target: every other one drawn uniformly
    (``random_under``), the rest with the supernet's depth-uniform sampling
    (``supernet.train.depth_path``, by rejection, repaired after ``REDRAWS`` misses), so
    the first generation holds shallow-and-wide members as well as deep-and-narrow ones."""
    gen = torch.Generator().manual_seed(rng.getrandbits(31))
    population: list[tuple] = []
    while len(population) < size:
        if len(population) % 2 == 0:
            drawn = random_under(space, table, target, rng)
        else:
            drawn = random_under(
                space, table, target, rng, REDRAWS, draw=lambda: depth_path(net, gen)
            )
        a = tuple(drawn.choices)
        if a not in population:
            population.append(a)
    return population


def _load(cfg: EvolutionConfig, table, space):
    if table is None or space is None:
        table, space = resolve_table(
            cfg.space, cfg.table, cfg.tables_dir, resolution=cfg.resolution
        )
    try:
        return table, space, open_supernet(cfg.supernet, space, cfg.data)
    except SupernetError as e:
        raise SearchError(str(e)) from None


def search_targets(
    cfg: EvolutionConfig,
    targets: list[float],
    table: LatencyTable | None = None,
    space: SearchSpace | None = None,
) -> list[dict]:
    """One search per target on one loaded supernet, each into ``out/t<ms>ms``; then the
    accuracy–latency front of the winners (supernet accuracy, with the scaled reference at
    each target) as ``out/front.png`` and ``out/front.json``."""
    import dataclasses

    table, space, loaded = _load(cfg, table, space)
    for t in targets:  # every target checked before anything is written
        check_target(table, space, t)
    out = Path(cfg.out)
    recs = []
    for t in targets:
        sub = dataclasses.replace(cfg, target_ms=t, out=str(out / f"t{t:g}ms"))
        rec = search(sub, table, space, loaded=loaded)
        recs.append({**rec, "out": sub.out})
    atomic_write_json(
        out / "front.json",
        [
            {
                "target_ms": r["target_ms"],
                "predicted_ms": r["predicted_ms"],
                "out": r["out"],
                "winner_acc": r["supernet"]["winner_acc"],
                "reference_ms": (r["supernet"]["scaled_reference"] or {}).get("predicted_ms"),
                "reference_acc": r["supernet"]["scaled_reference_acc"],
            }
            for r in recs
        ],
    )
    _plot_front(out, recs)
    return recs


def _plot_front(out: Path, recs: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(
        [r["predicted_ms"] for r in recs],
        [r["supernet"]["winner_acc"] for r in recs],
        "o-",
        color="C3",
        label="evolution winners",
    )
    refs = [r for r in recs if r["supernet"]["scaled_reference"]]
    if refs:
        ax.plot(
            [r["supernet"]["scaled_reference"]["predicted_ms"] for r in refs],
            [r["supernet"]["scaled_reference_acc"] for r in refs],
            "D--",
            color="k",
            label="MobileNetV2-like, scaled",
        )
    for r in recs:
        ax.axvline(r["target_ms"], color="0.7", ls=":", lw=1)
    ax.set_xlabel("predicted latency (ms; dotted: targets)")
    ax.set_ylabel("supernet accuracy (held out, BN re-estimated)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "front.png")


def search(
    cfg: EvolutionConfig,
    table: LatencyTable | None = None,
    space: SearchSpace | None = None,
    stop_after_generations: int | None = None,
    loaded=None,
) -> dict | None:
    """Run (or resume) an evolutionary search; returns the arch.json record (None when
    stopped early by ``stop_after_generations``).  ``loaded``: the (supernet, manifest,
    splits) another target's search already loaded."""
    out = Path(cfg.out)
    if loaded is None:
        table, space, loaded = _load(cfg, table, space)
    net, manifest, splits = loaded
    check_target(table, space, cfg.target_ms)
    resuming = prepare_out(cfg, out, STATE)
    out.mkdir(parents=True, exist_ok=True)
    write_config(out, cfg)
    rng = random.Random(cfg.seed)
    fitness: dict[tuple, float] = {}
    history: list[dict] = []
    population: list[tuple] = []
    gen = 0
    if resuming:
        gen, population, fitness, history = _load_state(out, rng)
        print(f"resuming {out} after generation {gen}/{cfg.generations}", file=sys.stderr)
    else:
        population = first_generation(space, table, cfg.target_ms, net, cfg.population, rng)

    def score(a: tuple) -> float:
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

    ran = 0
    with (
        progress_bar("evolution", cfg.generations) as gens_bar,
        progress_bar("generation", None) as bar,
    ):
        gens_bar.update(completed=gen)
        while gen < cfg.generations and (
            stop_after_generations is None or ran < stop_after_generations
        ):
            t0 = time.perf_counter()
            bar.update(
                total=len(population),
                completed=0,
                description=f"generation {gen + 1}/{cfg.generations}",
            )
            for a in population:
                score(a)
                bar.advance(1)
            ranked = rank(fitness, table, space)
            best = ranked[0]
            gen += 1
            ran += 1
            row = {
                "generation": gen,
                "best_acc": fitness[best],
                "mean_acc": sum(fitness[a] for a in population) / len(population),
                "best_ms": table.predict(best, space),
                "evaluated": len(fitness),
                "seconds": time.perf_counter() - t0,
            }
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
            _save_state(out, gen, population, fitness, history, rng)
            write_log(out, history)
            gens_bar.advance(1, status=f"best {row['best_acc']:.3f}")
            print(
                f"generation {gen}/{cfg.generations}: best {row['best_acc']:.3f} at "
                f"{row['best_ms']:.3f} ms, population mean {row['mean_acc']:.3f}, "
                f"{row['evaluated']} evaluated, {row['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    if gen < cfg.generations:
        return None
    return _finish(cfg, space, table, out, fitness, history, manifest, net, splits)


def _save_state(out, gen, population, fitness, history, rng) -> None:
    state = rng.getstate()
    atomic_write_json(
        out / STATE,
        {
            "generation": gen,
            "population": [list(a) for a in population],
            "fitness": [[list(a), v] for a, v in fitness.items()],
            "history": history,
            "rng": [state[0], list(state[1]), state[2]],
        },
    )


def _load_state(out: Path, rng: random.Random):
    try:
        s = json.loads((out / STATE).read_text())
        rng.setstate((s["rng"][0], tuple(s["rng"][1]), s["rng"][2]))
        return (
            int(s["generation"]),
            [tuple(a) for a in s["population"]],
            {tuple(a): float(v) for a, v in s["fitness"]},
            s["history"],
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        raise SearchError(
            f"{out / STATE}: unreadable search state; delete it to start over"
        ) from None


def _full_score(net, space, a, splits, seed: int) -> float:
    """Held-out accuracy on the whole held-out split, BN re-estimated on the default batches."""
    return path_accuracy(
        net, Arch.of(space, a), splits, calib_batches=CALIBRATION_BATCHES, seed=seed
    )


def rescore_leaders(
    net, space, table, fitness: dict, n: int, splits, seed: int
) -> tuple[list[tuple], dict]:
    """The ``n`` fittest of ``fitness`` scored again on the whole held-out split (the
    generations' few batches make the maximum a lucky draw: the winner's curse); returns
    every architecture ranked (the re-scored first) and the fitness with those scores."""
    ranked = rank(fitness, table, space)
    full = {a: _full_score(net, space, a, splits, seed) for a in ranked[:n]}
    return rank(full, table, space) + ranked[n:], {**fitness, **full}


def _finish(cfg, space, table, out, fitness, history, manifest, net, splits) -> dict:
    ranked = rank(fitness, table, space)
    if cfg.rescore:  # topk.json lists re-scored accuracies only
        ranked, fitness = rescore_leaders(
            net, space, table, fitness, max(cfg.rescore, cfg.topk), splits, cfg.seed
        )
    winner = Arch.of(space, ranked[0], "evolution")
    topk = [(Arch.of(space, a, "evolution"), fitness[a]) for a in ranked[: max(cfg.topk, 1)]]
    try:  # the MobileNetV2-like reference, where the space can express it
        ref = scaled_reference(space, table, cfg.target_ms)
    except (KeyError, ValueError):
        ref = None
    ref_acc = (
        None
        if ref is None
        else (
            _full_score(net, space, ref.choices, splits, cfg.seed)
            if cfg.rescore
            else path_accuracy(
                net,
                ref,
                splits,
                calib_batches=cfg.calib_batches,
                max_eval_batches=cfg.eval_batches,
                seed=cfg.seed,
            )
        )
    )
    extra = {
        "strategy": "evolution",
        "supernet": {
            "path": str(cfg.supernet),
            "random_paths_mean": manifest["random_paths"]["mean"],
            "winner_acc": fitness[ranked[0]],
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
    }
    rec = write_result(out, space, table, winner, cfg.target_ms, topk, extra)
    _plot(out, space, table, fitness, history, cfg.target_ms, winner, ref, ref_acc)
    _summary(out, cfg, space, table, rec, history, topk)
    print(
        f"supernet (BN re-estimated, held out): winner {fitness[ranked[0]]:.3f}"
        + ("" if ref is None else f", scaled reference {ref_acc:.3f}"),
        file=sys.stderr,
    )
    return rec


def _plot(out, space, table, fitness, history, target, winner, ref, ref_acc) -> None:
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
        label="winner",
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


def _summary(out, cfg, space, table, rec, history, topk) -> None:
    s = rec["supernet"]
    lines = [
        f"# Evolutionary search — {out.name}",
        "",
        f"- space **{space.name}** (resolution {space.resolution}); supernet `{s['path']}` "
        f"(random paths {s['random_paths_mean']:.3f} held out)",
        f"- table `{rec['table']}` ({rec['provenance'].get('device', '?')}, "
        f"{rec['provenance'].get('backend', '?')})",
        f"- population {cfg.population}, {cfg.generations} generations, {cfg.parents} parents, "
        f"mutation {cfg.mutation}; {rec['evaluations']} architectures evaluated in "
        f"{rec['search_seconds']:.0f} s",
        "",
        "## Result",
        "",
        f"- winner: **{rec['predicted_ms']:.3f} ms** predicted, target {rec['target_ms']:g} ms, "
        f"margin {rec['margin_ms']:.3f} ms; supernet accuracy **{s['winner_acc']:.3f}**",
        (
            "- MobileNetV2-like reference scaled to the target: "
            f"{s['scaled_reference']['predicted_ms']:.3f} ms, supernet accuracy "
            f"{s['scaled_reference_acc']:.3f}"
            if s["scaled_reference"]
            else "- (the space cannot express the MobileNetV2-like reference)"
        ),
        "",
        "| layer | choice |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in rec["values"].items()]
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
    lines += ["", "Plot: `evolution.png`; per-generation numbers in `log.csv`."]
    write_summary(out, "\n".join(lines))


__all__ = [
    "EvolutionConfig",
    "search",
    "search_targets",
    "mutate",
    "crossover",
    "rank",
    "next_generation",
    "rescore_leaders",
    "first_generation",
]
