"""Shared by every strategy: the config base, the error, the typed result (``SearchResult``,
what ``arch.json`` is written from and what export reads), resuming, and writing the
results.  Finding the latency table and checking the target: ``tables``."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Sequence

from hwnas.accelerator import ACCELERATORS, Accelerator, resolve
from hwnas.errors import HwnasError, check
from hwnas.io import (
    atomic_write_json,
    atomic_write_rows,
    atomic_write_text,
    check_resume,
    field_defaults,
)
from hwnas.latency import LatencyTable, TableError
from hwnas.space import Arch, SearchSpace

logger = logging.getLogger(__name__)

RESULT_SCHEMA = 1
# SearchConfig fields a run may resume with other values of: where it runs, not what it is
RESUME_FREE_FIELDS = ("resume", "accelerator")
# an accuracy under this many times chance (1 / classes) carries no signal to rank by
CHANCE_FACTOR = 1.5


class SearchError(HwnasError):
    """A search that cannot start or finish as asked (bad target, config, or resume)."""


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """What every searcher is given: target, output, table, data, space, budget, seed.

    Subclasses add their own fields (all with defaults), their own `checks()` and the
    ``strategy`` name that ``hwnas.search.search`` dispatches on.
    """

    strategy: ClassVar[str] = ""
    # fields a run may resume with other values of (where it runs, not what it searches)
    resume_free: ClassVar[tuple[str, ...]] = RESUME_FREE_FIELDS

    target_ms: float
    out: str
    table: str | None = None
    data: str = "fashion-mnist"
    data_root: str | None = None
    space: str = "fbnet-small"
    resolution: int | None = None  # None: the space's default
    subset: int | None = 2000  # training images used (before the 80/20 split); None: all
    batch_size: int = 64
    seed: int = 0
    resume: bool = False
    topk: int = 5
    tables_dir: str = "latency_tables"
    accelerator: str = "cpu"  # cpu | cuda | mps | auto (hwnas.accelerator.resolve)

    def checks(self) -> list[tuple[bool, str]]:
        return []

    def __post_init__(self):
        common = [
            (self.target_ms > 0, f"--target-ms must be positive (got {self.target_ms})"),
            (
                self.subset is None or self.subset >= 10,
                f"--subset must be at least 10 images (got {self.subset})",
            ),
            (self.batch_size >= 1, f"--batch-size must be at least 1 (got {self.batch_size})"),
            (self.topk >= 1, f"topk must be at least 1 (got {self.topk})"),
            (
                self.accelerator in ACCELERATORS,
                f"--accelerator must be one of {', '.join(ACCELERATORS)} "
                f"(got {self.accelerator!r})",
            ),
        ]
        check(common + self.checks(), SearchError)


def provenance_summary(table: LatencyTable) -> dict:
    prov = table.provenance
    keep = (
        "device",
        "backend",
        "runtime",
        "runtime_version",
        "precision",
        "threads",
        "date",
        "host_cpu",
        "soc",
    )
    return {k: prov[k] for k in keep if k in prov}


def arch_record(space: SearchSpace, table: LatencyTable, arch: Arch, target_ms: float) -> dict:
    """An architecture as ``topk.json`` lists it: its JSON, predicted latency and margin."""
    pred = table.predict(arch, space)
    return {
        **arch.to_dict(space),
        "predicted_ms": round(pred, 6),
        "target_ms": target_ms,
        "margin_ms": round(target_ms - pred, 6),
    }


# arch.json keys that are not SearchResult.extra: the architecture's and the result's own
_RESULT_KEYS = (
    "schema",
    "space",
    "version",
    "space_args",
    "name",
    "choices",
    "values",
    "arch",
    "predicted_ms",
    "target_ms",
    "margin_ms",
    "table",
    "provenance",
    "result_schema",
    "written",
    "strategy",
)


class _ReadOnly(dict):
    """A dict that refuses changes (``SearchResult.provenance`` and ``extra``); it still
    compares, copies, pickles and writes as JSON like a dict."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("a SearchResult is read-only (dataclasses.replace makes a new one)")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):
        return (_ReadOnly, (dict(self),))


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """What a search found, as ``arch.json`` records it and export reads it.

    Every strategy's ``search`` returns one.  ``extra`` holds what only that strategy records
    (FBNet's θ winner and supernet check, evolution's fitness and scaled reference, MnasNet's
    reward and trial); it is written after the common fields, as before.  Read from a bare
    architecture file (``hwnas arch ref -o``), only ``arch`` is set and the rest is None or
    empty.
    """

    arch: Arch  # the winner (its space, choices and name)
    predicted_ms: float | None = None  # the table's prediction (µs precision)
    target_ms: float | None = None
    margin_ms: float | None = None  # target_ms - predicted_ms
    strategy: str | None = None  # fbnet | evolution | mnasnet
    table: str | None = None  # the latency table's path
    # the table's device, backend, runtime, precision, threads, date, CPU or SoC
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    written: str | None = None  # local time, ISO 8601

    def __post_init__(self):
        object.__setattr__(self, "provenance", _ReadOnly(self.provenance))
        object.__setattr__(self, "extra", _ReadOnly(self.extra))

    @property
    def choices(self) -> tuple[int, ...]:
        return self.arch.choices

    @property
    def supernet_note(self) -> str | None:
        """FBNet's warning that its supernet could not tell architectures apart (else None)."""
        return self.extra.get("supernet_note")

    @classmethod
    def of(
        cls,
        space: SearchSpace,
        table: LatencyTable,
        arch: Arch,
        target_ms: float,
        strategy: str,
        extra: Mapping[str, Any] | None = None,
    ) -> "SearchResult":
        """The result for ``arch`` under ``target_ms`` on ``table``, written now."""
        rec = arch_record(space, table, arch, target_ms)
        return cls(
            arch,
            predicted_ms=rec["predicted_ms"],
            target_ms=target_ms,
            margin_ms=rec["margin_ms"],
            strategy=strategy,
            table=str(table.path) if table.path else None,
            provenance=provenance_summary(table),
            extra=extra or {},
            written=time.strftime("%Y-%m-%dT%H:%M:%S"),
        )

    def to_record(self, space: SearchSpace | None = None) -> dict:
        """The ``arch.json`` record (the same keys, in the same order, as before the type)."""
        rec = {
            **self.arch.to_dict(space),
            "predicted_ms": self.predicted_ms,
            "target_ms": self.target_ms,
            "margin_ms": self.margin_ms,
            "table": self.table,
            "provenance": dict(self.provenance),
            "result_schema": RESULT_SCHEMA,
            "written": self.written,
        }
        if self.strategy is not None:
            rec["strategy"] = self.strategy
        return {**rec, **self.extra}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], arch: Arch | None = None) -> "SearchResult":
        """The result an ``arch.json`` (or a bare architecture file) records; ``arch``: the
        architecture already loaded from it (else read from ``rec``)."""
        if arch is None:
            arch = Arch.from_dict(dict(rec.get("arch", rec)))
        return cls(
            arch,
            predicted_ms=rec.get("predicted_ms"),
            target_ms=rec.get("target_ms"),
            margin_ms=rec.get("margin_ms"),
            strategy=rec.get("strategy"),
            table=rec.get("table"),
            provenance=rec.get("provenance") or {},
            extra={k: v for k, v in rec.items() if k not in _RESULT_KEYS},
            written=rec.get("written"),
        )

    @classmethod
    def load(cls, path: str | Path) -> "SearchResult":
        """A run folder's ``arch.json`` (or an architecture file), checked as ``Arch.load``."""
        p = Path(path)
        p = p / "arch.json" if p.is_dir() else p
        arch = Arch.load(p)
        rec = json.loads(p.read_text())
        return cls.from_record(rec if isinstance(rec, dict) else {}, arch)


def write_result(
    out_dir: str | Path,
    space: SearchSpace,
    table: LatencyTable,
    arch: Arch,
    target_ms: float,
    strategy: str,
    topk: Sequence[tuple[Arch, float]] = (),
    extra: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Write ``arch.json`` (the result: winner, predicted latency, margin, table, provenance,
    ``extra``) and ``topk.json`` (``[(arch, score), ...]``, best first); returns the result."""
    out = Path(out_dir)
    result = SearchResult.of(space, table, arch, target_ms, strategy, extra)
    if result.predicted_ms > target_ms + 1e-9:
        raise SearchError(
            f"internal: winner predicted {result.predicted_ms:.3f} ms exceeds "
            f"target {target_ms:g} ms"
        )
    atomic_write_json(out / "arch.json", result.to_record(space))
    atomic_write_json(
        out / "topk.json",
        {
            "target_ms": target_ms,
            "table": result.table,
            "archs": [
                {**arch_record(space, table, a, target_ms), "score": float(s)} for a, s in topk
            ],
        },
    )
    return result


def config_dict(config) -> dict:
    d = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def write_config(out_dir: str | Path, config) -> None:
    atomic_write_json(Path(out_dir) / "config.json", config_dict(config))


def accelerator_of(cfg: SearchConfig, say: bool = True) -> Accelerator:
    """Where ``cfg``'s search trains and scores (``cfg.accelerator``; an absent one is a
    one-line error, before anything is written)."""
    return resolve(cfg.accelerator, say=say)


def prepare_out(cfg: SearchConfig, out: Path, ckpt: str) -> bool:
    """Check the output folder against ``--resume``; True when checkpoint ``ckpt`` is to be
    loaded.  Resuming with settings other than those in ``config.json`` is refused, except
    the config's ``resume_free`` fields (the accelerator: a run resumes on another one); a
    setting the run's ``config.json`` predates counts as its default."""
    free = getattr(cfg, "resume_free", RESUME_FREE_FIELDS)
    fixed = {k: v for k, v in config_dict(cfg).items() if k not in free}
    defaults = field_defaults(cfg) if dataclasses.is_dataclass(cfg) else None
    return check_resume(out, ckpt, fixed, cfg.resume, "search", SearchError, defaults)


def write_summary(out_dir: str | Path, markdown: str) -> None:
    atomic_write_text(Path(out_dir) / "summary.md", markdown.rstrip() + "\n")


def write_log(out: Path, rows: list[dict]) -> None:
    """All epoch (or generation) rows so far as ``log.csv`` (rewritten atomically each time)."""
    atomic_write_rows(out / "log.csv", rows)


__all__ = [
    "SearchError",
    "SearchConfig",
    "SearchResult",
    "RESULT_SCHEMA",
    "TableError",
    "write_result",
    "write_config",
    "write_summary",
    "write_log",
    "arch_record",
    "provenance_summary",
    "config_dict",
    "prepare_out",
    "accelerator_of",
    "RESUME_FREE_FIELDS",
]
