"""Pinning host measurements to cores: the cores this process may run on, ``--cores``
lists (``'0,2-3'``) both ways, the default choice of cores, and the pin itself."""

from __future__ import annotations

import contextlib
import os

from hwnas.errors import HwnasError

PINNING = (
    "os.sched_setaffinity of the measuring thread, and so of the runtime threads it "
    "starts, for each measurement; the previous affinity restored after"
)


def available_cores() -> tuple[int, ...] | None:
    """The cores this process may run on, sorted; None where the OS cannot pin (not Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return tuple(sorted(os.sched_getaffinity(0)))


def default_jobs(jobs: int | None) -> int:
    """``jobs``, or (None) as many as the cores this process may run on."""
    return jobs or len(available_cores() or range(os.cpu_count() or 1))


def core_list(cores) -> str:
    """``(0, 1, 2, 5)`` → ``'0-2,5'`` (what --cores takes)."""
    out, run = [], []
    for c in sorted(set(cores)):
        if run and c != run[-1] + 1:
            out.append(run)
            run = []
        run.append(c)
    if run:
        out.append(run)
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in out)


def parse_core_list(text: str) -> tuple[int, ...]:
    """``'2,3'``, ``'4-7'``, ``'0,2-3'`` → sorted core indices."""
    cores: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in str(text).split(","))):
            lo, _, hi = part.partition("-")
            cores.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise HwnasError(
            f"--cores {text!r} is not a core list; use e.g. --cores 1 or --cores 2,3 or 4-7"
        ) from None
    if not cores or min(cores) < 0:
        raise HwnasError(f"--cores {text!r} names no core; use e.g. --cores 1 or --cores 2,3")
    return tuple(sorted(cores))


def host_cores(cores, threads: int) -> tuple[int, ...] | None:
    """The cores a host measurement is pinned to: ``cores`` (``'2,3'``, ``'4-7'`` or a
    sequence), all of them cores this process may run on and at least ``threads`` of them;
    by default the last ``threads`` available cores (all of them where there are fewer: a
    table of more threads than this machine's cores).  None where the OS cannot pin."""
    avail = available_cores()
    if avail is None:
        if cores:
            raise HwnasError(
                "--cores: this OS cannot pin threads to cores (no "
                "sched_setaffinity); leave --cores out"
            )
        return None
    if cores is None or cores == "" or cores == ():
        return avail[-threads:]
    chosen = (
        parse_core_list(cores) if isinstance(cores, str) else tuple(sorted({int(c) for c in cores}))
    )
    gone = [c for c in chosen if c not in avail]
    if gone:
        raise HwnasError(
            f"--cores {core_list(chosen)}: core(s) {core_list(gone)} are not "
            f"among the cores this process may run on ({core_list(avail)})"
        )
    if threads > len(chosen):
        raise HwnasError(
            f"--threads {threads} exceeds the {len(chosen)} pinned core(s) "
            f"{core_list(chosen)}; lower --threads or widen --cores"
        )
    return chosen


@contextlib.contextmanager
def pinned(cores):
    """Run the block on ``cores`` only (``os.sched_setaffinity`` of this thread, which the
    threads it starts inherit), then give the thread its previous cores back."""
    if cores is None:
        yield
        return
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cores)
    except OSError as e:
        raise HwnasError(
            f"cannot pin the measurement to cores {core_list(cores)}: {e.strerror or e}"
        ) from None
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


__all__ = ["PINNING", "available_cores", "core_list", "parse_core_list", "host_cores", "pinned"]
