"""A supernet run's files: ``supernet.pt`` (weights, optimiser, RNG, epoch, history; CPU
tensors, written atomically, read with ``weights_only=True``) and ``manifest.json`` (what
the weights depend on, the data, the budget); loading a trained supernet for a space and
its data, refusing one of another space or data in one line."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hwnas.accelerator import to_cpu
from hwnas.data import load_for_space
from hwnas.io import atomic_torch_save
from hwnas.space import SearchSpace
from hwnas.train import nhwc

from .fbnet import FBNetSupernet, SupernetError

CKPT = "supernet.pt"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def space_identity(space: SearchSpace) -> dict:
    """What a supernet's weights depend on: the space (name, version, factory arguments),
    its resolution, classes and input channels."""
    return {
        "name": space.name,
        "version": space.version,
        "params": dict(space.params),
        "resolution": space.resolution,
        "num_classes": space.num_classes,
        "in_channels": space.in_channels,
    }


def save_checkpoint(path: Path, net, opt, gen, epoch: int, history: list, scaler=None) -> None:
    """Everything on the CPU (``to_cpu``): the checkpoint loads on any machine."""
    state = {
        "net": to_cpu(net.state_dict()),
        "opt": to_cpu(opt.state_dict()),
        "gen": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "epoch": epoch,
        "history": json.dumps(history),
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    device = next(net.parameters()).device
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    atomic_torch_save(path, state)


def read_checkpoint(path: Path) -> dict:
    """``supernet.pt`` loaded onto the CPU with ``weights_only=True``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign file: say which, overwrite nothing
        raise SupernetError(
            f"{path}: unreadable supernet checkpoint ({type(e).__name__}); delete it to start over"
        ) from None


def restore(path: Path, net, opt, gen, scaler=None) -> tuple[int, list]:
    """Restore a run (loaded onto the CPU; ``load_state_dict`` copies the weights and the
    optimiser state to the supernet's device: it resumes on any accelerator)."""
    blob = read_checkpoint(path)
    try:
        net.load_state_dict(blob["net"])
        opt.load_state_dict(blob["opt"])
        gen.set_state(blob["gen"])
        torch.set_rng_state(blob["torch_rng"])
        if scaler is not None and "scaler" in blob:
            scaler.load_state_dict(blob["scaler"])
        device = next(net.parameters()).device
        if device.type == "cuda" and "cuda_rng" in blob:
            torch.cuda.set_rng_state(blob["cuda_rng"], device)
        return int(blob["epoch"]), json.loads(blob["history"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise SupernetError(
            f"{path}: not a checkpoint of this supernet "
            f"({type(e).__name__}); delete it to start over"
        ) from None


def load_supernet(path: str | Path, space: SearchSpace) -> tuple[FBNetSupernet, dict]:
    """The trained supernet in ``path`` for ``space``, and its manifest.  A supernet of
    another space (name, version, resolution, classes, channels), an unfinished one or a
    foreign file is a one-line error."""
    d = Path(path)
    if not (d / MANIFEST).exists():
        what = (
            "an unfinished supernet (resume `hwnas supernet train`)"
            if (d / CKPT).exists()
            else "not a supernet folder"
        )
        raise SupernetError(f"{d}: {what}; no {MANIFEST}")
    try:
        manifest = json.loads((d / MANIFEST).read_text())
        theirs = manifest["space"]
    except (ValueError, KeyError, TypeError):
        raise SupernetError(f"{d / MANIFEST}: not a supernet manifest") from None
    ours = space_identity(space)
    if theirs != json.loads(json.dumps(ours)):
        diff = sorted(k for k in ours if theirs.get(k) != json.loads(json.dumps(ours))[k])
        raise SupernetError(
            f"supernet {d} was trained for {_describe(theirs)}, the table is for "
            f"{_describe(ours)} (differs in {', '.join(diff)}); train one for "
            f"this space with `hwnas supernet train`"
        )
    net = FBNetSupernet(space)
    blob = read_checkpoint(d / CKPT)
    try:
        net.load_state_dict(blob["net"])
    except (KeyError, RuntimeError) as e:
        raise SupernetError(
            f"{d / CKPT}: weights do not fit {space.name} ({type(e).__name__})"
        ) from None
    return nhwc(net).eval(), manifest


def open_supernet(path: str | Path, space: SearchSpace, data: str):
    """The trained supernet for ``space`` (``load_supernet``), its manifest and its own data
    split, the held-out part of which scores paths; a supernet trained on other data than
    ``data`` is a one-line error."""
    net, manifest = load_supernet(path, space)
    d = manifest["data"]
    if d["name"] != data:
        raise SupernetError(
            f"supernet {path} was trained on {d['name']}, not {data}; train "
            f"one on {data} with `hwnas supernet train`"
        )
    return net, manifest, load_for_space(d["name"], d["root"], space, d["seed"], d["subset"])


def _describe(s: dict) -> str:
    return (
        f"{s.get('name')} v{s.get('version')} at {s.get('resolution')} px, "
        f"{s.get('num_classes')} classes, {s.get('in_channels')} channels"
    )


__all__ = [
    "CKPT",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "space_identity",
    "save_checkpoint",
    "read_checkpoint",
    "restore",
    "load_supernet",
    "open_supernet",
]
