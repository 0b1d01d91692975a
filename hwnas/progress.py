"""A shared progress bar (rich) with ETA; a no-op off a TTY or with HWNAS_NO_PROGRESS=1."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator


def progress_enabled(enabled: bool | None = None) -> bool:
    """``enabled`` if given, else on only for a TTY on stderr and without HWNAS_NO_PROGRESS=1."""
    if os.environ.get("HWNAS_NO_PROGRESS", "") not in ("", "0"):
        return False
    if enabled is not None:
        return enabled and sys.stderr.isatty()
    return sys.stderr.isatty()


class Bar:
    """One running bar: ``advance(n, status=...)``, ``update(total=..., status=...)``."""

    def __init__(self, progress=None, task=None):
        self._progress, self._task = progress, task

    def advance(self, n: int = 1, status: str | None = None) -> None:
        if self._progress is not None:
            fields = {} if status is None else {"status": status}
            self._progress.update(self._task, advance=n, **fields)

    def update(
        self,
        *,
        total: int | None = None,
        completed: int | None = None,
        description: str | None = None,
        status: str | None = None,
    ) -> None:
        if self._progress is None:
            return
        kwargs = {
            k: v
            for k, v in (("total", total), ("completed", completed), ("description", description))
            if v is not None
        }
        if status is not None:
            kwargs["status"] = status
        self._progress.update(self._task, **kwargs)


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool | None = None) -> Iterator[Bar]:
    """A bar with description, M/N, elapsed, ETA and a free-text status (e.g. loss/accuracy)."""
    if not progress_enabled(enabled):
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield Bar(progress, progress.add_task(description, total=total, status=""))
