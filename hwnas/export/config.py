"""What one export is asked to do (``ExportConfig``, validated on construction) and what it
produced (``ExportResult``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from hwnas.convert import FORMATS, PRECISIONS
from hwnas.errors import HwnasError, check

logger = logging.getLogger(__name__)

PARITY_TOL = 1e-4
SHIP = ("best", "searched")  # with --reference: which trained network the export ships


@dataclass(frozen=True)
class ExportConfig:
    """Everything one export needs; validated on construction."""

    source: Path  # a run directory holding arch.json, or an architecture JSON file
    data: str = "fashion-mnist"
    data_root: Path | None = None
    epochs: int = 3
    subset: int | None = None
    formats: tuple[str, ...] = FORMATS
    precision: tuple[str, ...] = PRECISIONS
    out: Path | None = None
    resume: bool = False
    table: Path | None = None
    backend: str | None = None
    seed: int = 0
    batch_size: int = 128
    calib_images: int = 100
    parity_images: int = 64
    eval_images: int | None = None  # test images for int8 accuracy/agreement (None: all)
    warmup: int = 10
    runs: int = 50
    repeats: int = 3
    threads: int | None = None  # measurement threads (default: the table's, else 1)
    progress: bool = True
    reference: bool = False  # also train the scaled MobileNetV2-like reference, same recipe
    ship: str = "best"  # with reference: ship the better on validation ("best") or "searched"
    accelerator: str = "cpu"  # where training runs (hwnas.accelerator); export is on the CPU
    workers: int = 0  # DataLoader workers decoding a lazy image folder

    def __post_init__(self):
        object.__setattr__(self, "source", Path(self.source))
        for name in ("data_root", "out", "table"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "formats", _names(self.formats, FORMATS, "--formats"))
        object.__setattr__(self, "precision", _names(self.precision, PRECISIONS, "--precision"))
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1 (got {self.epochs})"),
            (
                self.subset is None or self.subset >= 2,
                f"--subset must be at least 2 images (got {self.subset})",
            ),
            (self.batch_size >= 1, f"batch size must be at least 1 (got {self.batch_size})"),
            (
                self.calib_images >= 1,
                f"calibration images must be at least 1 (got {self.calib_images})",
            ),
            (
                self.parity_images >= 1,
                f"parity images must be at least 1 (got {self.parity_images})",
            ),
            (
                self.eval_images is None or self.eval_images >= 1,
                f"--eval-images must be at least 1 (got {self.eval_images})",
            ),
            (
                self.warmup >= 0 and self.runs >= 1 and self.repeats >= 1,
                f"need warmup >= 0, runs >= 1, repeats >= 1 (got {self.warmup}, {self.runs}, "
                f"{self.repeats})",
            ),
            (
                self.threads is None or self.threads >= 1,
                f"--threads must be at least 1 (got {self.threads})",
            ),
            (self.workers >= 0, f"--workers must be at least 0 (got {self.workers})"),
            (self.ship in SHIP, f"--ship {self.ship!r}: choose from {', '.join(SHIP)}"),
        ]
        check(checks)


def _names(value, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(v).strip().lower() for v in items if str(v).strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise HwnasError(f"{option} {','.join(bad) or '(empty)'}: choose from {', '.join(allowed)}")
    return tuple(v for v in allowed if v in items)


@dataclass(frozen=True)
class ExportResult:
    """Where the export went and its summary (the same dict as ``summary.json``)."""

    out: Path
    summary: dict

    @property
    def files(self) -> dict:
        return self.summary["files"]

    @property
    def checks(self) -> dict:
        return self.summary["checks"]

    @property
    def accuracy(self) -> dict:
        return self.summary["accuracy"]

    @property
    def latency(self) -> dict:
        return self.summary["latency"]

    def __getitem__(self, key: str):  # callers that index the summary keep working
        return self.summary[key]


def say(cfg: ExportConfig, message: str) -> None:
    """A progress line of the export (``hwnas.logs``), unless ``cfg.progress`` is off."""
    if cfg.progress:
        logger.info(message)
