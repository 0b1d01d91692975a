"""MnasNet evaluators (proxy training, shared weights), measured latency and rank agreement.

An evaluator turns a batch of ``ChildJob``s into outcomes ``{trial: (result, attempts,
error)}`` with ``result = {"accuracy", "seconds", "worker"}``; ``name`` and ``close()`` as the
trial pools.  ``TrainEvaluator`` trains each child (in process or as Ray tasks);
``SharedEvaluator`` trains one supernet once and scores each child with inherited weights.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import torch

from hwnas.accelerator import Accelerator, to_cpu
from hwnas.device_profiler.backends import BACKEND_FORMATS, backend_from_provenance, measure_file
from hwnas.device_profiler.blockmodels import ModelCache
from hwnas.io import atomic_torch_save, atomic_write_text
from hwnas.space import Arch, SearchSpace, choices_key
from hwnas.stats import kendall_tau

from ..base import SearchError
from .pool import open_pool
from .supernet import SuperNet, path_accuracy, train_supernet
from .trials import ChildJob, load_splits

SUPERNET_FILE = "supernet.pt"
MEASURED_FILE = "measured_latency.json"


class TrainEvaluator:
    """Proxy training of every child: a ``LocalPool`` (workers 1) or a ``RayPool``, on
    ``accelerator`` (Ray trials on CUDA ask for ``gpus_per_trial`` GPUs each)."""

    def __init__(
        self,
        workers: int = 1,
        address: str | None = None,
        timeout_s: float = 10.0,
        accelerator: str = "cpu",
        gpus_per_trial: float = 1.0,
    ):
        self.pool = open_pool(workers, address, timeout_s, accelerator, gpus_per_trial)
        self.name = f"proxy training, {self.pool.name}"

    def run(self, jobs: Sequence[ChildJob], retries: int, on_done=None) -> dict:
        return self.pool.run(jobs, retries, on_done)

    def close(self) -> None:
        self.pool.close()


class SharedEvaluator:
    """One supernet trained once (uniform single-path sampling, ``epochs`` over the same
    training subset the children use), then each child scored on the validation split with
    inherited weights.  The trained weights are saved in ``out/supernet.pt`` (state dict, CPU
    tensors) and reused on ``--resume``; training and scoring run on ``acc``."""

    def __init__(
        self,
        space: SearchSpace,
        job: ChildJob,
        epochs: int,
        out: Path | None = None,
        progress=None,
        acc: Accelerator | None = None,
    ):
        torch.set_num_threads(1)
        self.space, self.job = space, job
        acc = acc or Accelerator.for_device("cpu")
        self.net = SuperNet(space, seed=job.seed).to(acc.device)
        self.splits = load_splits(job)
        path = out / SUPERNET_FILE if out else None
        t0 = time.perf_counter()
        if path is not None and path.exists():
            try:
                self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            except Exception as e:
                raise SearchError(
                    f"{path}: unreadable supernet ({type(e).__name__}); delete it to retrain"
                ) from None
            self.losses: list[float] = []
        else:
            self.losses = train_supernet(
                self.net,
                self.splits,
                epochs,
                job.batch_size,
                job.lr,
                job.seed,
                on_step=progress,
                acc=acc,
            )
            if path is not None:
                atomic_torch_save(path, to_cpu(self.net.state_dict()))
        self.train_seconds = time.perf_counter() - t0
        self.name = f"shared weights (supernet {epochs} epoch(s), {self.train_seconds:.0f} s)"

    def score(self, choices) -> float:
        arch = Arch.of(self.space, list(choices))
        return path_accuracy(self.net, arch, self.splits.loader("val", 256, shuffle=False))

    def run(self, jobs: Sequence[ChildJob], retries: int, on_done=None) -> dict:
        done = {}
        for job in jobs:
            t0 = time.perf_counter()
            res = {
                "accuracy": self.score(job.choices),
                "seconds": time.perf_counter() - t0,
                "worker": "supernet",
            }
            done[job.trial] = (res, 1, "")
            if on_done:
                on_done(job, done[job.trial])
        return done

    def close(self) -> None:
        pass


class SupernetEvaluator(SharedEvaluator):
    """Children scored by a supernet trained once for the space (``hwnas supernet train``):
    held-out accuracy on the supernet's own split, BatchNorm re-estimated per child on
    ``calib_batches`` batches, ``eval_batches`` × 256 images scored — thousands of trials in
    minutes, every strategy scoring the same way.  Scores on ``acc`` (the supernet is
    moved there)."""

    def __init__(
        self,
        path: str,
        space: SearchSpace,
        data: str,
        calib_batches: int = 10,
        eval_batches: int = 4,
        seed: int = 0,
        acc: Accelerator | None = None,
    ):
        from hwnas.supernet import SupernetError
        from hwnas.supernet.store import open_supernet

        try:
            self.net, manifest, self.splits = open_supernet(path, space, data)
        except SupernetError as e:
            raise SearchError(str(e)) from None
        if acc is not None:
            self.net = self.net.to(acc.device)
        self.space, self.seed = space, seed
        self.calib_batches, self.eval_batches = calib_batches, eval_batches
        self.train_seconds = 0.0
        self.name = (
            f"trained supernet {path} (random paths "
            f"{manifest['random_paths']['mean']:.3f} held out)"
        )

    def score(self, choices) -> float:
        from hwnas.supernet import path_accuracy as supernet_accuracy

        return supernet_accuracy(
            self.net,
            Arch.of(self.space, list(choices)),
            self.splits,
            calib_batches=self.calib_batches,
            max_eval_batches=self.eval_batches,
            seed=self.seed,
        )


class MeasuredLatency:
    """End-to-end latency of whole sampled models on the table's backend (as MnasNet measured
    on the phone): each model exported once through the profiler's content-addressed model
    cache, timed, and remembered in ``out/measured_latency.json`` by canonical choices."""

    def __init__(
        self,
        table,
        space: SearchSpace,
        out: Path,
        cache_dir: str | None = None,
        warmup: int = 5,
        runs: int = 20,
        repeats: int = 1,
    ):
        prov = table.provenance
        name = prov.get("backend")
        if name not in BACKEND_FORMATS:
            raise SearchError(
                f"--latency measured: the table's backend {name!r} is not one of "
                f"{', '.join(BACKEND_FORMATS)}"
            )
        self.fmt = BACKEND_FORMATS[name]
        try:
            self.backend = backend_from_provenance(prov, space=space)
        except Exception as e:
            raise SearchError(
                f"--latency measured: backend {name}: "
                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from None
        self.precision = self.backend.precision
        self.space, self.cache = space, ModelCache.at(cache_dir)
        self.counts = dict(warmup=warmup, runs=runs, repeats=repeats)
        self.file = out / MEASURED_FILE
        self.known: dict[str, float] = (
            json.loads(self.file.read_text()) if self.file.exists() else {}
        )

    def __call__(self, choices) -> float:
        key = choices_key(choices)
        if key not in self.known:
            built = self.cache.network(
                self.space, Arch.of(self.space, list(choices)), self.fmt, self.precision
            )
            self.known[key] = measure_file(self.backend, built.path, **self.counts)["median_ms"]
            atomic_write_text(self.file, json.dumps(self.known, indent=1, sort_keys=True))
        return self.known[key]


def rank_agreement(train_acc: Sequence[float], shared_acc: Sequence[float]) -> dict:
    """How the two evaluators rank the same architectures: τ and top-1 agreement."""
    n = len(train_acc)
    best_t = max(range(n), key=lambda i: train_acc[i])
    best_s = max(range(n), key=lambda i: shared_acc[i])
    return {
        "n": n,
        "kendall_tau": kendall_tau(train_acc, shared_acc),
        "same_best": best_t == best_s,
        "train_acc_of_shared_best": train_acc[best_s],
        "best_train_acc": train_acc[best_t],
    }


__all__ = [
    "TrainEvaluator",
    "SharedEvaluator",
    "SupernetEvaluator",
    "MeasuredLatency",
    "kendall_tau",
    "rank_agreement",
    "SUPERNET_FILE",
    "MEASURED_FILE",
]
