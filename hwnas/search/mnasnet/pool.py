"""Where MnasNet child trials run: in process, or as Ray tasks (a local runtime on 127.0.0.1,
or a cluster, token authentication included), on the CPU or, with ``num_gpus``, on CUDA."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import socket
import threading
from typing import Callable, Sequence

from ..base import SearchError
from .trials import ChildJob, run_child, run_child_safe

# outcome of one trial: (result dict or None, attempts used, last error ("" when ok))
Outcome = tuple[dict | None, int, str]


class LocalPool:
    """Trials one after another in this process (``--workers 1`` without ``--ray-address``),
    on ``accelerator`` (resolved here: cpu, cuda or mps)."""

    name = "in-process"

    def __init__(self, accelerator: str = "cpu"):
        self.accelerator = accelerator

    def run(
        self,
        jobs: Sequence[ChildJob],
        retries: int,
        on_done: Callable[[ChildJob, Outcome], None] | None = None,
    ) -> dict[int, Outcome]:
        done = {}
        for job in jobs:
            job = dataclasses.replace(job, accelerator=self.accelerator)
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


AUTH_HELP = (
    "a cluster started with token authentication needs RAY_AUTH_MODE=token and its token in "
    "RAY_AUTH_TOKEN, in the file RAY_AUTH_TOKEN_PATH names, or in ~/.ray/auth_token"
)


def _check_gcs(ray, address: str, timeout_s: float) -> None:
    """Ask the cluster's GCS for its id within ``timeout_s``: a port that is not Ray's, or a
    cluster that refuses this client's token (Ray's token authentication), is one line now
    instead of Ray's own retries (about 20 s, then a message that does not say why)."""
    if address == "auto" or "://" in address:
        return
    from ray._raylet import GcsClient

    box: dict = {}

    def probe():
        try:
            GcsClient(address=address)
            box["ok"] = True
        except Exception as e:  # reported below, on the caller's thread
            box["error"] = e

    t = threading.Thread(target=probe, name="hwnas-ray-probe", daemon=True)
    t.start()
    t.join(timeout_s)
    if "ok" in box:
        return
    if "error" not in box:
        raise SearchError(
            f"--ray-address {address}: no answer from a Ray cluster within {timeout_s:g} s"
        )
    e = box["error"]
    if isinstance(e, ray.exceptions.AuthenticationError) or "Unauthenticated" in str(e):
        raise SearchError(f"--ray-address {address}: the cluster refused the token; {AUTH_HELP}")
    raise SearchError(f"--ray-address {address}: cannot join the Ray cluster ({_one_line(e)})")


class RayPool:
    """Child trainings as Ray tasks (``num_cpus=1``, and ``num_gpus=gpus_per_trial`` when
    they train on CUDA); a batch runs in parallel.

    Retries are ours, not Ray's (``max_retries=0``): a task that raises or whose worker
    process dies is resubmitted with ``attempt + 1`` up to ``retries`` times, so the
    ``attempts`` column is exact for both kinds of failure.

    ``accelerator``: where the trials train.  On a cluster (``address``) ``cuda`` and
    ``auto`` are the cluster's: ``cuda`` needs GPUs among its resources, ``auto`` is CUDA
    when it has some, else the CPU.  A local Ray started here binds every daemon to
    127.0.0.1 (``local_ray_init``)."""

    def __init__(
        self,
        workers: int,
        address: str | None,
        timeout_s: float = 10.0,
        accelerator: str = "cpu",
        gpus_per_trial: float = 1.0,
    ):
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
            _check_gcs(ray, address, timeout_s)
            try:
                # a cluster on this machine's loopback: Ray must not rewrite 127.0.0.1 to
                # the outward address, which that cluster does not listen on
                with _loopback_node() if _is_loopback(address) else contextlib.nullcontext():
                    ray.init(address=address, log_to_driver=False, include_dashboard=False)
            except Exception as e:
                why = str(e).splitlines()[0] if str(e) else type(e).__name__
                cause = f"{e.__cause__ or ''}"
                hint = f"; {AUTH_HELP}" if "Unauthenticated" in cause + str(e) else ""
                raise SearchError(
                    f"--ray-address {address}: cannot join the Ray cluster ({why}){hint}"
                ) from None
            self.started, self.name = True, f"ray cluster {address}"
        else:
            local_ray_init(ray, workers)
            self.started, self.name = True, f"ray local ({workers} workers)"
        self.accelerator = self._cluster_accelerator(accelerator, gpus_per_trial, address)
        self.task = ray.remote(**task_options(self.accelerator, gpus_per_trial))(run_child)
        if self.accelerator == "cuda":
            self.name += f", {gpus_per_trial:g} GPU per trial"

    def _cluster_accelerator(self, accelerator: str, gpus: float, address: str | None) -> str:
        """``accelerator`` as the trials will use it: ``auto`` becomes ``cuda`` when the Ray
        runtime has GPUs (else ``cpu``); ``cuda`` without enough GPUs is one line (the tasks
        would wait forever)."""
        have = float(self.ray.cluster_resources().get("GPU", 0))
        where = f"the Ray cluster at {address}" if address else "the local Ray runtime"
        if accelerator == "auto":
            return "cuda" if have >= gpus else "cpu"
        if accelerator == "cuda" and have < gpus:
            self.close()
            raise SearchError(
                f"--accelerator cuda: {where} has {have:g} GPU(s), a trial asks for "
                f"{gpus:g} (--gpus-per-trial)"
            )
        return accelerator

    def run(
        self,
        jobs: Sequence[ChildJob],
        retries: int,
        on_done: Callable[[ChildJob, Outcome], None] | None = None,
    ) -> dict[int, Outcome]:
        ray = self.ray
        jobs = [dataclasses.replace(job, accelerator=self.accelerator) for job in jobs]
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


def task_options(accelerator: str, gpus_per_trial: float = 1.0) -> dict:
    """The Ray task options of a child trial: one CPU, no retries by Ray (ours count the
    attempts), and ``num_gpus`` (fractional allowed: trials share a GPU) only on CUDA."""
    opts: dict = {"num_cpus": 1, "max_retries": 0}
    if accelerator == "cuda":
        opts["num_gpus"] = gpus_per_trial
    return opts


def local_ray_init(ray, workers: int) -> None:
    """A local Ray runtime with ``workers`` CPUs whose daemons (GCS, raylet, object manager,
    workers) listen on 127.0.0.1 only.

    Ray replaces a node address of 127.0.0.1 by the machine's outward address unless its
    cluster mode is off (``ray._private.ray_constants.ENABLE_RAY_CLUSTER``, set from
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` at import); with the loopback address the GCS and
    the raylets bind their gRPC servers to it instead of to every interface.  The flag is off
    only while the node starts.  ``address="local"``: always a new runtime (without it Ray
    joins ``RAY_ADDRESS`` or the cluster the last ``ray start`` on this machine recorded).  Ray starts its workers at nice 15 by default; child trials
    are this run's real work (the in-process runner trains at the caller's priority), so
    local workers keep the caller's niceness unless ``RAY_worker_niceness`` is set."""
    os.environ.setdefault("RAY_worker_niceness", str(os.nice(0)))
    with _loopback_node():
        ray.init(
            address="local",  # a new runtime: not RAY_ADDRESS's, nor the last `ray start`
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )


@contextlib.contextmanager
def _loopback_node():
    """Ray's cluster mode off while a node starts or joins: its address stays 127.0.0.1
    (Ray otherwise resolves a loopback address to the machine's outward one)."""
    from ray._private import ray_constants

    cluster = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster


def _is_loopback(address: str) -> bool:
    host = address.split("://", 1)[-1].rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_pool(
    workers: int,
    address: str | None,
    timeout_s: float = 10.0,
    accelerator: str = "cpu",
    gpus_per_trial: float = 1.0,
):
    if workers == 1 and not address:
        return LocalPool(accelerator)
    return RayPool(workers, address, timeout_s, accelerator, gpus_per_trial)


__all__ = ["LocalPool", "RayPool", "open_pool", "local_ray_init", "task_options", "Outcome"]
