"""`hwnas search`: FBNet (differentiable, default) or MnasNet (RL) under a latency target."""

from __future__ import annotations

import logging
import math
from enum import Enum
from typing import Optional

import typer

from hwnas.accelerator import accelerator_option

from .base import SearchError, SearchResult

logger = logging.getLogger(__name__)

DEFAULT_SPACE = {"fbnet": "fbnet-small", "mnasnet": "mnasnet-small", "evolution": "fbnet-small"}


class Strategy(str, Enum):
    fbnet = "fbnet"
    mnasnet = "mnasnet"
    evolution = "evolution"


def _given(**kw) -> dict:
    """Only the options the user set (None = keep the config's default)."""
    return {k: v for k, v in kw.items() if v is not None}


# long only for its option list (typer reads the options from this signature); the work is
# in _targets, _strategy_options and _run
def search_command(
    target_ms: Optional[str] = typer.Option(
        None,
        "--target-ms",
        help="Latency budget (ms) "
        "on the table's device; the result's predicted "
        "latency is ≤ it.  Evolution: several, "
        "comma-separated (0.3,0.4,0.5).",
    ),
    target_frac: Optional[str] = typer.Option(
        None,
        "--target-frac",
        help="Instead of "
        "--target-ms: this fraction of the table's "
        "prediction for the space's MobileNetV2-like "
        "reference (e.g. 0.6; evolution: 0.5,0.7,0.9).",
    ),
    out: str = typer.Option(..., "--out", help="Run folder, e.g. runs/NAME."),
    strategy: Strategy = typer.Option(Strategy.fbnet, "--strategy"),
    table: Optional[str] = typer.Option(
        None,
        "--table",
        help="Latency table CSV; default: "
        "newest matching one in latency_tables/, else profile "
        "the host first.",
    ),
    data: str = typer.Option("fashion-mnist", "--data"),
    data_root: Optional[str] = typer.Option(None, "--data-root"),
    space: Optional[str] = typer.Option(
        None, "--space", help="Default fbnet-small (fbnet) or mnasnet-small (mnasnet)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the search in --out."),
    seed: int = typer.Option(0, "--seed"),
    subset: Optional[int] = typer.Option(
        None, "--subset", help="Training images used (before the 80/20 weights/θ split)."
    ),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    mode: Optional[str] = typer.Option(
        None,
        "--mode",
        help="fbnet: soft (every candidate runs), hard (straight-through, one candidate) or "
        "auto (default: hard with --supernet, soft from scratch).",
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="fbnet: search epochs."),
    warmup_epochs: Optional[int] = typer.Option(
        None, "--warmup-epochs", help="fbnet: weights-only epochs first."
    ),
    refine: Optional[int] = typer.Option(
        None,
        "--refine",
        help="fbnet: generations of "
        "evolution on the supernet from θ's candidates "
        "(default 6; 0: the best of θ's candidates).",
    ),
    tune_weights: Optional[bool] = typer.Option(
        None,
        "--tune-weights",
        help="fbnet with --supernet: train the supernet's weights beside θ (default: the "
        "trained weights stay; only θ learns, on the supernet's held-out images).",
    ),
    reward: Optional[str] = typer.Option(None, "--reward", help="mnasnet: soft|hard|abs."),
    trials: Optional[int] = typer.Option(None, "--trials", help="mnasnet: sampled models."),
    batch: Optional[int] = typer.Option(
        None, "--batch", help="mnasnet: models per controller update."
    ),
    child_epochs: Optional[int] = typer.Option(
        None, "--child-epochs", help="mnasnet: proxy training epochs."
    ),
    workers: Optional[int] = typer.Option(None, "--workers", help="mnasnet: parallel trials."),
    ray_address: Optional[str] = typer.Option(
        None,
        "--ray-address",
        help="mnasnet: Ray cluster HOST:PORT (default: a local Ray on 127.0.0.1). Token "
        "authentication: RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (docs/cli.md).",
    ),
    gpus_per_trial: Optional[float] = typer.Option(
        None,
        "--gpus-per-trial",
        help="mnasnet on Ray with CUDA: GPUs each trial asks for (default 1; 0.5: two "
        "trials share a GPU).",
    ),
    latency: Optional[str] = typer.Option(None, "--latency", help="mnasnet: predict|measured."),
    evaluator: Optional[str] = typer.Option(
        None, "--evaluator", help="mnasnet: train|shared|supernet (with --supernet)."
    ),
    supernet: Optional[str] = typer.Option(
        None,
        "--supernet",
        help="a folder written by "
        "`hwnas supernet train`: evolution searches it, "
        "fbnet starts from it, mnasnet (--evaluator "
        "supernet) scores with it.",
    ),
    population: Optional[int] = typer.Option(
        None, "--population", help="evolution: architectures per generation."
    ),
    generations: Optional[int] = typer.Option(None, "--generations", help="evolution."),
    confirm: Optional[int] = typer.Option(
        None,
        "--confirm",
        help="evolution, fbnet: supernet leaders trained stand-alone at the end, with the "
        "table's capacity picks; the best on the held-out split wins (default 3; 0: the "
        "supernet's best wins).",
    ),
    confirm_epochs: Optional[int] = typer.Option(
        None, "--confirm-epochs", help="evolution, fbnet: epochs of that training (default 1)."
    ),
    confirm_images: Optional[int] = typer.Option(
        None,
        "--confirm-images",
        help="evolution, fbnet: training images each candidate trains on (default 0: all; "
        "fewer rank worse, see docs/search.md).",
    ),
    accelerator: str = accelerator_option(),
) -> None:
    """Search an architecture under a latency target: FBNet (default), MnasNet, or evolution
    on a trained supernet (`hwnas supernet train`)."""
    accelerator = _check_accelerator(accelerator, strategy, ray_address, evaluator)
    space = space or DEFAULT_SPACE[strategy.value]
    values, known = _targets(strategy, space, table, target_ms, target_frac)
    common = _given(
        target_ms=values[0],
        out=out,
        table=table,
        data=data,
        data_root=data_root,
        space=space,
        resume=resume,
        seed=seed,
        subset=subset,
        batch_size=batch_size,
        accelerator=accelerator,
    )
    own = _strategy_options(
        strategy,
        supernet,
        fbnet=_given(
            mode=mode,
            epochs=epochs,
            warmup_epochs=warmup_epochs,
            refine=refine,
            tune_weights=tune_weights,
            confirm=confirm,
            confirm_epochs=confirm_epochs,
            confirm_images=confirm_images,
        ),
        mnasnet=_given(
            reward=reward,
            trials=trials,
            batch=batch,
            child_epochs=child_epochs,
            workers=workers,
            ray_address=ray_address,
            gpus_per_trial=gpus_per_trial,
            latency=latency,
            evaluator=evaluator,
        ),
        evolution=_given(
            population=population,
            generations=generations,
            confirm=confirm,
            confirm_epochs=confirm_epochs,
            confirm_images=confirm_images,
        ),
    )
    _run(strategy, {**common, **own}, values, known, out)


def _check_accelerator(name: str, strategy: Strategy, ray_address, evaluator) -> str:
    """``--accelerator`` normalised; an absent one is one line now, before a table is
    profiled or a file written.  MnasNet's proxy trials on a Ray cluster use the cluster's
    GPUs, not this machine's: there ``cuda`` and ``auto`` are checked when it connects."""
    from hwnas.accelerator import resolve

    name = name.strip().lower()
    on_cluster = strategy is Strategy.mnasnet and ray_address and evaluator in (None, "train")
    if not (on_cluster and name in ("cuda", "auto")):
        resolve(name, say=False)  # auto is announced when the search starts
    return name


def _targets(strategy: Strategy, space: str, table, target_ms, target_frac):
    """The targets in ms (several only for evolution) and, for --target-frac, the table and
    space loaded to compute them (reused by the search)."""
    known: dict = {}
    if (target_ms is None) == (target_frac is None):
        raise SearchError("give exactly one of --target-ms and --target-frac")
    flag = "--target-ms" if target_ms is not None else "--target-frac"
    values = numbers(flag, target_ms if target_ms is not None else target_frac)
    if len(values) > 1 and strategy is not Strategy.evolution:
        raise SearchError(
            f"several targets in {flag}: only for --strategy evolution (one "
            f"trained supernet serves them all); run --strategy "
            f"{strategy.value} once per target"
        )
    if target_frac is not None:
        if not all(0 < f <= 10 for f in values):  # before a missing table would be profiled
            raise SearchError(f"--target-frac must be in (0, 10] (got {target_frac})")
        from .tables import resolve_table

        known["table"], known["space"] = resolve_table(space, table)
        values = [target_from_reference(known["table"], known["space"], f) for f in values]
    return values, known


def _strategy_options(strategy: Strategy, supernet, **by_strategy: dict) -> dict:
    """The options of ``strategy`` that were given; another strategy's option is an error.
    --supernet belongs to all three: evolution needs it, fbnet starts from it, mnasnet scores
    with it."""
    own = by_strategy[strategy.value]
    for other, flags in by_strategy.items():
        foreign = [k for k in flags if k not in own]
        if other != strategy.value and foreign:
            names = ", ".join("--" + k.replace("_", "-") for k in foreign)
            owners = [s for s, f in by_strategy.items() if foreign[0] in f]  # e.g. --confirm
            raise SearchError(f"{names}: only for --strategy {' or '.join(owners)}")
    return {**own, **_given(supernet=supernet)}


def _run(strategy: Strategy, options: dict, values: list[float], known: dict, out: str) -> None:
    """One search per run folder at a time; several targets: evolution's front."""
    from hwnas.io import check_out_dir, output_lock

    from . import config_class, search

    with output_lock(check_out_dir(out)):
        try:
            cfg = config_class(strategy.value)(**options)
        except ImportError as e:
            raise SearchError(
                f"--strategy {strategy.value} is not available in this build ({e})"
            ) from None
        if len(values) > 1:
            from .evolution import search_targets, target_dir

            results = search_targets(cfg, values, **known)
            for result in results:
                _report(result, str(target_dir(out, result.target_ms)))
            typer.echo(
                f"accuracy-latency front of {len(results)} targets → {out}/front.png, "
                f"{out}/front.json"
            )
            return
        _report(search(cfg, **known), out)


def numbers(flag: str, text: str) -> list[float]:
    """``"0.3,0.4"`` → [0.3, 0.4]; anything but positive finite numbers (up to 1e6: a
    budget of 1000 s, or a fraction) is a one-line error."""
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and 0 < v <= 1e6 for v in values):
        raise SearchError(
            f"{flag} takes positive finite numbers up to 1e6, comma-separated (got {text!r})"
        )
    return values


def target_from_reference(table, space, frac: float, reference: str = "mobilenetv2") -> float:
    """``frac`` × the table's prediction for the space's reference (ms, rounded to µs);
    says the figures on stderr."""
    from hwnas.space import reference_arch

    ref_ms = table.predict(reference_arch(space, reference), space)
    target = round(frac * ref_ms, 3)
    logger.info(f"target: {frac:g} × {reference} {ref_ms:.3f} ms on {table.path} = {target:g} ms")
    return target


def _report(result: SearchResult | None, out: str) -> None:
    if result is None or result.predicted_ms is None:
        typer.echo(f"done: results in {out}/")
        return
    typer.echo(
        f"winner: {result.predicted_ms:.3f} ms predicted (target {result.target_ms:g} "
        f"ms, margin {result.margin_ms:.3f} ms) → {out}/arch.json; see {out}/summary.md"
    )


def register(app: typer.Typer) -> None:
    """Add `hwnas search` to the main app."""
    app.command("search")(search_command)
