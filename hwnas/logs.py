"""Library messages: each module logs to ``logging.getLogger(__name__)``; the command line
shows them on stderr, one plain line each (:func:`show_on_stderr`).

Progress and notes are ``INFO``; a ``WARNING`` reads ``warning: <message>``.  Without the
command line (the library used from Python) nothing is configured: warnings reach stderr
through logging's last-resort handler and the rest stays silent unless the caller sets up
logging of its own.
"""

from __future__ import annotations

import logging
import sys

ROOT = "hwnas"


class _CurrentStderr(logging.StreamHandler):
    """A stream handler on whatever ``sys.stderr`` is when a record is written: a live
    progress bar redirects it (the line then appears above the bar), pytest captures it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.__init__ sets it; sys.stderr wins
        pass


class _Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"warning: {message}" if record.levelno == logging.WARNING else message


def show_on_stderr(quiet: bool = False) -> None:
    """Show hwnas's messages on stderr: INFO and up, or warnings and errors only when
    ``quiet``.  Calling it again replaces the handler (never two lines per message)."""
    logger = logging.getLogger(ROOT)
    for h in list(logger.handlers):
        if isinstance(h, _CurrentStderr):
            logger.removeHandler(h)
    handler = _CurrentStderr()
    handler.setFormatter(_Plain())
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
