"""Where MnasNet child trials run: in process, or as Ray tasks (local runtime or a cluster)."""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Callable, Sequence

from ..base import SearchError
from .trials import ChildJob, run_child, run_child_safe

# outcome of one trial: (result dict or None, attempts used, last error ("" when ok))
Outcome = tuple[dict | None, int, str]


class LocalPool:
    """Trials one after another in this process (``--workers 1`` without ``--ray-address``)."""

    name = "in-process"

    def run(
        self,
        jobs: Sequence[ChildJob],
        retries: int,
        on_done: Callable[[ChildJob, Outcome], None] | None = None,
    ) -> dict[int, Outcome]:
        done = {}
        for job in jobs:
            for attempt in range(1, retries + 2):
                res, err = run_child_safe(dataclasses.replace(job, attempt=attempt))
                if res is not None:
                    break
            done[job.trial] = (res, attempt, err)
            if on_done:
                on_done(job, done[job.trial])
        return done

    def close(self) -> None:
        pass


def _check_reachable(address: str, timeout_s: float) -> None:
    """A TCP connect to host:port within ``timeout_s`` ("auto" and ray:// URLs skip it)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise SearchError(f"--ray-address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise SearchError(
            f"--ray-address {address}: no Ray cluster reachable within "
            f"{timeout_s:g} s ({e.strerror or type(e).__name__})"
        ) from None


class RayPool:
    """Child trainings as ``ray.remote(num_cpus=1)`` tasks; a batch runs in parallel.

    Retries are ours, not Ray's (``max_retries=0``): a task that raises or whose worker
    process dies is resubmitted with ``attempt + 1`` up to ``retries`` times, so the
    ``attempts`` column is exact for both kinds of failure."""

    def __init__(self, workers: int, address: str | None, timeout_s: float = 10.0):
        try:
            import ray
        except ImportError:
            raise SearchError(
                "Ray is not installed: use --workers 1 (in process) or pip install 'ray[default]'"
            ) from None
        self.ray, self.started = ray, False
        if ray.is_initialized():
            self.name = "ray (existing runtime)"
        elif address:
            _check_reachable(address, timeout_s)
            try:
                ray.init(address=address, log_to_driver=False, include_dashboard=False)
            except Exception as e:
                raise SearchError(
                    f"--ray-address {address}: cannot join the Ray cluster "
                    f"({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                ) from None
            self.started, self.name = True, f"ray cluster {address}"
        else:
            local_ray_init(ray, workers)
            self.started, self.name = True, f"ray local ({workers} workers)"
        self.task = ray.remote(num_cpus=1, max_retries=0)(run_child)

    def run(
        self,
        jobs: Sequence[ChildJob],
        retries: int,
        on_done: Callable[[ChildJob, Outcome], None] | None = None,
    ) -> dict[int, Outcome]:
        ray = self.ray
        pending = {self.task.remote(job): job for job in jobs}
        done: dict[int, Outcome] = {}
        for _ in range(len(jobs) * (retries + 2)):  # bounded: each wait resolves one task
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            job = pending.pop(ref)
            try:
                done[job.trial] = (ray.get(ref), job.attempt, "")
            except ray.exceptions.RayError as e:
                err = _one_line(e)
                if job.attempt <= retries:
                    nxt = dataclasses.replace(job, attempt=job.attempt + 1)
                    pending[self.task.remote(nxt)] = nxt
                    continue
                done[job.trial] = (None, job.attempt, err)
            if on_done:
                on_done(job, done[job.trial])
        return done

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
        self.started = False


def _one_line(e: Exception) -> str:
    cause = getattr(e, "cause", None)
    if isinstance(cause, Exception):
        e = cause
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"[:300]


def local_ray_init(ray, workers: int) -> None:
    """A local Ray runtime on 127.0.0.1 with ``workers`` CPUs.  Ray starts its workers at nice
    15 by default; child trials are this run's real work (the in-process runner trains at the
    caller's priority), so local workers keep the caller's niceness unless
    ``RAY_worker_niceness`` is set."""
    os.environ.setdefault("RAY_worker_niceness", str(os.nice(0)))
    ray.init(
        num_cpus=workers, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1"
    )


def open_pool(workers: int, address: str | None, timeout_s: float = 10.0):
    if workers == 1 and not address:
        return LocalPool()
    return RayPool(workers, address, timeout_s)


__all__ = ["LocalPool", "RayPool", "open_pool", "local_ray_init", "Outcome"]
