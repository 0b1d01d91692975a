"""An export's trainings: the winner (reused when a finished one with the same settings is
there) and, with ``--reference``, the scaled reference trained beside it in its own process."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

import torch

from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json

from .config import ExportConfig, say
from .inputs import Source, load_data


def train_or_reuse(cfg: ExportConfig, src: Source, splits, train_dir: Path):
    """The trained model: a finished model.pt in ``train_dir`` with the same settings is
    reused; otherwise the shared trainer runs (continuing a checkpoint with --resume) on
    ``cfg.accelerator``.  The model comes back on the CPU: everything exported is made
    from it there."""
    from hwnas.space import build_model
    from hwnas.train import TrainConfig, config_changes, train

    tcfg = TrainConfig(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        accelerator=cfg.accelerator,
        threads=shared_threads() if cfg.reference else None,
    )
    model = build_model(src.space, src.arch)
    done = train_dir / "model.pt"
    result_file = train_dir / "result.json"
    if not _same_arch(train_dir / "arch.json", src):
        if cfg.resume:
            raise HwnasError(
                f"{train_dir} holds the training of another architecture; drop "
                "--resume to train this one from scratch, or choose another --out"
            )
        for stale in (done, result_file):
            stale.unlink(missing_ok=True)
    if done.is_file() and result_file.is_file():
        meta = json.loads(result_file.read_text())
        if not config_changes(meta.get("config", {}), tcfg) and meta.get("data") == _data_id(cfg):
            model.load_state_dict(torch.load(done, map_location="cpu", weights_only=True))
            say(cfg, f"reusing the trained model {done}")
            return model.eval(), meta
        if not cfg.resume:
            say(cfg, f"{train_dir} holds a model trained with other settings; retraining")
    src.arch.save(train_dir / "arch.json")
    train(model, splits, tcfg, train_dir, resume=cfg.resume, progress=cfg.progress)
    meta = {**json.loads(result_file.read_text()), "data": _data_id(cfg)}
    atomic_write_json(result_file, meta)
    return model.cpu().eval(), meta


def shared_threads() -> int:
    """Torch threads for each of the two trainings ``--reference`` runs side by side (the
    winner here, the reference in ``start_reference``'s process): half the cores each, so
    that the two never oversubscribe them whatever ``OMP_NUM_THREADS`` says (on 2 cores, 1
    each)."""
    return max(1, (os.cpu_count() or 1) // 2)


def start_reference(cfg: ExportConfig, src: Source, table, target, train_dir: Path):
    """Train the MobileNetV2-like reference scaled to the run's target (``scaled_reference``)
    with the winner's recipe, in a second process so both trainings share the machine's
    cores; ``finish_reference`` waits for it.  Resumes and reuses like the winner's."""
    import multiprocessing

    from hwnas.search.base import SearchResult
    from hwnas.search.baselines import scaled_reference

    ref = scaled_reference(src.space, table, float(target))
    ref_src = Source(
        ref,
        src.space,
        SearchResult(ref, predicted_ms=table.predict(ref, src.space)),
        train_dir / "arch.json",
        None,
    )
    train_dir.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")  # a space holds closures: send the arch as JSON
    proc = ctx.Process(
        target=_reference_worker, args=(cfg, ref.to_dict(src.space), train_dir), daemon=True
    )
    proc.start()
    return proc, ref_src


def exit_with_parent() -> None:
    """In a spawned worker: end this process as soon as its parent is gone.  A daemonic
    child is stopped when its parent *exits*; a parent killed by a signal (``kill``, a job
    timeout) runs no exit handler, and the reference's training went on alone on a core for
    half an hour.  The parent's sentinel (a pipe) becomes readable when it dies, however."""
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)  # checkpoints are written atomically: --resume continues from the last

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _reference_worker(cfg: ExportConfig, arch_dict: dict, train_dir: Path) -> None:
    from hwnas.search.base import SearchResult
    from hwnas.space import Arch

    exit_with_parent()
    arch = Arch.from_dict(arch_dict)
    space = arch.get_space()
    quiet = dataclasses.replace(cfg, progress=False)
    src = Source(arch, space, SearchResult(arch), train_dir / "arch.json", None)
    train_or_reuse(quiet, src, load_data(quiet, space), train_dir)


def finish_reference(job, train_meta: dict) -> dict:
    proc, ref_src = job
    proc.join()
    result = ref_src.arch_file.parent / "result.json"
    if proc.exitcode != 0 or not result.is_file():
        raise HwnasError(
            f"training the scaled reference failed (exit code {proc.exitcode}); "
            f"see {ref_src.arch_file.parent}"
        )
    meta = json.loads(result.read_text())
    return {
        "name": ref_src.arch.name,
        "choices": list(ref_src.arch.choices),
        "predicted_ms": ref_src.result.predicted_ms,
        "test_acc": meta["test_acc"],
        "val_acc": meta["val_acc"],
        "seconds": meta["seconds"],
        "winner_test_acc": train_meta.get("test_acc"),
        "winner_val_acc": train_meta.get("val_acc"),
    }


def pick_shipped(ship: str, searched_val: float | None, reference_val: float | None) -> str:
    """Which trained network an export ships: ``"reference"`` when ``ship`` is ``"best"`` and
    the scaled reference did strictly better on the validation split (the test set plays no
    part in the choice), else ``"searched"``."""
    if (
        ship == "best"
        and None not in (searched_val, reference_val)
        and reference_val > searched_val
    ):
        return "reference"
    return "searched"


def _same_arch(saved: Path, src: Source) -> bool:
    """True when ``saved`` is absent or names the same network as ``src`` (names aside)."""
    if not saved.is_file():
        return True
    try:
        theirs = json.loads(saved.read_text())
    except (OSError, ValueError):
        return False
    ours = src.arch.to_dict(src.space)
    keys = ("space", "space_args", "choices")
    return isinstance(theirs, dict) and all(theirs.get(k) == ours.get(k) for k in keys)


def _data_id(cfg: ExportConfig) -> dict:
    return {"name": cfg.data, "subset": cfg.subset}
