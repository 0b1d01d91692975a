"""Where training runs: ``--accelerator auto|cpu|cuda|mps`` (``--device`` names the phone).

``resolve(name)`` turns the option into an :class:`Accelerator`: its ``torch.device``, the
mixed precision it trains in (bf16 autocast on CUDA where the GPU supports it, else fp16 with
a gradient scaler; none on the CPU, so CPU results stay those of plain float32 code), and
whether batches are pinned and copied without blocking (CUDA).  ``auto`` picks CUDA, then
MPS, then the CPU and says which on stderr; a named accelerator that is absent is a one-line
``HwnasError`` naming those present.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch
from torch import nn

from hwnas.errors import HwnasError

logger = logging.getLogger(__name__)

ACCELERATORS = ("auto", "cpu", "cuda", "mps")


def present() -> list[str]:
    """The accelerators this machine has, best first (always ends with ``cpu``)."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


@dataclass(frozen=True)
class Accelerator:
    """A resolved accelerator: device, autocast dtype (None: full float32), grad scaling."""

    name: str
    device: torch.device
    amp_dtype: torch.dtype | None = None

    @classmethod
    def for_device(cls, device: torch.device | str) -> "Accelerator":
        """The policy for ``device``: bf16 autocast on a CUDA GPU that supports it, fp16 on
        other GPUs and MPS, none on the CPU."""
        device = torch.device(device)
        if device.type == "cuda":
            bf16 = torch.cuda.is_bf16_supported()
            return cls("cuda", device, torch.bfloat16 if bf16 else torch.float16)
        if device.type == "mps":
            return cls("mps", device, torch.float16)
        return cls("cpu", torch.device("cpu"), None)

    @classmethod
    def of(cls, module: nn.Module) -> "Accelerator":
        """The accelerator ``module``'s parameters live on."""
        p = next(module.parameters(), None)
        return cls.for_device(p.device if p is not None else "cpu")

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"

    @property
    def needs_scaler(self) -> bool:
        return self.amp_dtype == torch.float16

    def autocast(self):
        """Mixed precision for the forward pass (a no-op without ``amp_dtype``)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def scaler(self):
        """A gradient scaler for fp16 training, else None (bf16 and float32 need none)."""
        if not self.needs_scaler:
            return None
        return torch.amp.GradScaler(self.device.type)

    def move(self, *tensors):
        """``tensors`` on this device (non-blocking copies from pinned memory on CUDA)."""
        if self.device.type == "cpu":
            return tensors
        nb = self.pin_memory
        return tuple(t.to(self.device, non_blocking=nb) for t in tensors)

    def describe(self) -> str:
        what = self.name
        if self.device.type == "cuda":
            what += f" ({torch.cuda.get_device_name(self.device)})"
        amp = {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + grad scaler"}
        return f"{what}, {amp.get(self.amp_dtype, 'float32')}"


def resolve(name: str = "auto", *, say: bool = True) -> Accelerator:
    """The accelerator ``name`` names; ``auto`` is the best present (CUDA, MPS, CPU) and,
    with ``say``, is announced in one line on stderr."""
    name = (name or "auto").strip().lower()
    if name not in ACCELERATORS:
        raise HwnasError(f"--accelerator {name}: choose one of {', '.join(ACCELERATORS)}")
    have = present()
    if name == "auto":
        acc = Accelerator.for_device(have[0])
        if say:
            why = "" if acc.name != "cpu" else " (no CUDA or MPS found)"
            logger.info(f"accelerator: {acc.describe()}{why}")
        return acc
    if name not in have:
        raise HwnasError(
            f"--accelerator {name}: {name.upper()} is not available on this machine "
            f"(present: {', '.join(have)})"
        )
    return Accelerator.for_device(name)


def to_cpu(obj):
    """``obj`` (a state dict, nested dicts/lists of tensors) with every tensor on the CPU:
    what checkpoints store, so that they load on any machine."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


# --------------------------------------------------------------------------- CLI options


def accelerator_option():
    """``--accelerator`` for the commands that train (``hwnas train``, ``supernet train``,
    ``export``)."""
    import typer

    return typer.Option(
        "auto",
        "--accelerator",
        help="Where training runs: auto (CUDA, then MPS, then CPU) | cpu | cuda | mps. "
        "Not --device, which names the phone.",
    )


def workers_option():
    """``--workers``: DataLoader processes decoding a lazy image folder."""
    import typer

    return typer.Option(
        0,
        "--workers",
        min=0,
        help="Processes decoding a large image folder (read lazily; small datasets stay "
        "in memory and ignore this).",
    )


__all__ = [
    "ACCELERATORS",
    "Accelerator",
    "present",
    "resolve",
    "to_cpu",
    "accelerator_option",
    "workers_option",
]
