"""The ruler: a fixed network timed in step with every host measurement, so that a table's
microseconds keep one meaning while the machine's speed drifts.

A shared VM's speed swings 1.5–2.4× between windows a few seconds apart (measured on this
project's 2-core host, one core to itself), and any single window's timing carries that
swing into the table, the validation networks and the exported model's closed loop.  With a
ruler, the timed runs of a model alternate with runs of the ruler — the space's reference
network at the table's precision — as ``backends.Alternation`` says (8 timed runs of the
model, 3 of the ruler; the first 3 runs after each switch untimed: they find the other
model's weights in the caches), and each repeat's samples are scaled by ``unit_us / median(ruler's runs in that repeat)``: what the
model would have taken while the ruler took ``unit_us``.  On the same host, in the same
minutes, the ratio of a network's and the ruler's medians spread 1.04–1.08× (max/min over
six windows) where the raw medians spread 1.5–2.4×.

``unit_us`` is measured once, when a table is first profiled (``measure_unit``: the ruler
alone at the machine's fastest), and stored in the table's provenance with the ruler's
architecture; a resumed table keeps it, with or without ``--no-ruler``; every later measurement on that table's backend (``tables validate``, the
export's closed loop, MnasNet's measured latency) builds the same ruler and times in the same
unit.  Two tables profiled at different times differ by the ratio of their units only.

Host backends only: ``benchmark_model`` on a phone runs one model per invocation, so the ADB
path keeps its cool-down gate instead.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path

from hwnas.errors import HwnasError
from hwnas.space import SearchSpace, get_space, reference_arch, reference_names

from .backends import ALTERNATION, Alternation
from .blockmodels import ModelCache

logger = logging.getLogger(__name__)

UNIT_WINDOWS = 150  # short windows of the ruler alone when a table's unit is measured
UNIT_RUNS = 20  # timed runs per window (about 3 s in all for a 1-ms ruler)


def supports_ruler(backend) -> bool:
    return hasattr(backend, "use_ruler")


def ruler_model(space: SearchSpace, fmt: str, precision: str, cache: ModelCache) -> tuple:
    """(reference name, its choices, its model file): the ruler of a table of ``space``."""
    name = reference_names(space)[0]
    arch = reference_arch(space, name)
    return name, list(arch.choices), cache.network(space, arch, fmt, precision).path


def measure_unit(backend, path: Path) -> dict:
    """The ruler's time on ``backend`` at its fastest: the 5th percentile of
    ``UNIT_WINDOWS`` window medians of the ruler alone (µs), with their p10, median and p90.

    This VM's speed is bimodal (the fbnet-small reference: windows near 510 µs and near
    800 µs); six such measurements within 1.5 minutes gave medians 748–824 µs (10% apart)
    and 5th percentiles 508–529 µs (4% apart), so the fast state is the unit."""
    min_seconds, backend.min_seconds = getattr(backend, "min_seconds", 0.0), 0.0
    try:
        samples = backend.measure(path, warmup=5, runs=UNIT_RUNS, repeats=UNIT_WINDOWS)
    finally:
        backend.min_seconds = min_seconds
    meds = sorted(samples.per_repeat)
    q = lambda f: meds[min(len(meds) - 1, int(f * len(meds)))]  # noqa: E731
    return {
        "unit_us": round(q(0.05), 3),
        "statistic": "5th percentile of the window medians",
        "p10_us": round(q(0.1), 3),
        "median_us": round(statistics.median(meds), 3),
        "p90_us": round(q(0.9), 3),
        "windows": len(meds),
        "runs": UNIT_RUNS,
    }


def table_ruler(space: SearchSpace, backend, cache: ModelCache, known: dict | None, log=None):
    """Attach a ruler to ``backend`` for profiling ``space``; returns the provenance record
    (``known``: the one a resumed table already has, whose unit is kept)."""
    if not supports_ruler(backend):
        return None
    try:
        name, choices, path = ruler_model(space, backend.model_format, backend.precision, cache)
    except (KeyError, ValueError, IndexError, StopIteration):
        return None  # a custom space whose layout the reference does not fit
    if known and known.get("choices") == choices:
        record = known  # its unit and its alternation: one table, one way of timing
    else:
        from hwnas.latency import space_meta

        record = {
            "network": name,
            "space": space_meta(space),
            "choices": choices,
            "precision": backend.precision,
            "seed": cache.seed,
            "alternation": ALTERNATION.record(),
            **measure_unit(backend, path),
        }
        (log or logger.info)(
            f"ruler: {name} takes {record['unit_us']:.0f} µs here at the machine's fastest "
            f"(the 5th percentile of {record['windows']} windows; median "
            f"{record['median_us']:.0f} µs); every timing is scaled to it"
        )
    backend.use_ruler(path, record["unit_us"], Alternation.of(record))
    return record


def refine_unit(record: dict, backend, rows: list[dict], log=None) -> float | None:
    """For a table begun and completed in one call: take the unit again as the 5th
    percentile of the ruler's medians in every repeat the blocks were timed in (the machine's
    fast state over the minutes the table took, not over the 0.5-3 s at its start), rescale
    every row to it, and make it the backend's and the record's unit.  This VM flips between
    two speeds ~6% apart every few tens of seconds (the host-litert ruler: windows near
    91 µs, then near 96 µs); two fbnet-small host-litert tables whose units came from either
    state predicted the reference 6% apart.  Returns the factor applied (None: no repeats)."""
    import numpy as np

    seen = getattr(backend, "ruler_medians", [])
    if not seen or backend.ruler is None:
        return None
    old = float(record["unit_us"])
    new = round(float(np.percentile(seen, 5)), 3)
    factor = new / old
    for row in rows:
        if not row.get("analytic"):  # identity rows stay 0
            for k in ("median_us", "p10_us", "p90_us", "mean_us", "std_us"):
                row[k] = round(float(row[k]) * factor, 3)
    record.update(
        unit_us=new,
        unit_start_us=old,
        statistic=f"5th percentile of the ruler's medians in the {len(seen)} repeats the "
        f"blocks were timed in (at the start: of {record.get('windows')} windows alone)",
    )
    backend.use_ruler(backend.ruler[0], new, backend.alternation)
    (log or logger.info)(
        f"ruler: {new:.0f} µs at the machine's fastest over the {len(seen)} timed repeats "
        f"({old:.0f} µs at the start); the table is in that unit"
    )
    return factor


def attach_from_provenance(
    backend, provenance: dict, space: SearchSpace | None = None, cache_dir=None
) -> bool:
    """Give ``backend`` the ruler and unit of the table whose ``provenance`` it was built
    from (same backend only: a unit is one backend's time).  ``space``: the table's, when
    the caller has it (else looked up by the name the record holds).  False when there is
    no ruler."""
    record = provenance.get("ruler")
    if not record or not supports_ruler(backend) or provenance.get("backend") != backend.name:
        return False
    if space is None:
        meta = record.get("space") or {}
        try:
            space = get_space(meta["name"], **meta.get("params", {}))
        except (KeyError, TypeError):
            raise HwnasError(
                f"the table's ruler is a network of space {meta.get('name')!r}, which this "
                f"hwnas does not know; measure with that space registered"
            ) from None
    from hwnas.space import Arch

    cache = ModelCache.at(cache_dir, int(record.get("seed", 0)))
    arch = Arch.of(space, record["choices"])
    path = cache.network(space, arch, backend.model_format, record["precision"]).path
    backend.use_ruler(path, float(record["unit_us"]), Alternation.of(record))
    return True


__all__ = [
    "UNIT_WINDOWS",
    "refine_unit",
    "attach_from_provenance",
    "measure_unit",
    "ruler_model",
    "supports_ruler",
    "table_ruler",
]
