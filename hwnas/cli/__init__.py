"""The `hwnas` command line: parse options, call the library, print; bad input is one line.

The app and :func:`main` live here; the commands in their areas (``spaces``/``arch`` and
``train`` in this package, the others in their packages' ``cli`` modules), each registered
on the app by its ``register(app)``."""

from __future__ import annotations

import errno
import math
import os
import sys

import typer
import typer.main
from typer import TyperException

from hwnas.errors import HwnasError

try:  # typer >= 0.29 carries its own click
    from typer._click.exceptions import NoArgsIsHelpError
except ImportError:  # pragma: no cover
    from click.exceptions import NoArgsIsHelpError

app = typer.Typer(
    help="Hardware-aware NAS for mobile CNNs: spaces, architectures, training, "
    "profiling, search, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _messages(
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only warnings and errors on stderr (no progress notes)."
    ),
) -> None:
    # the library's messages (hwnas.logs) on stderr as plain lines; no docstring: it would
    # replace the app's help
    from hwnas.logs import show_on_stderr

    show_on_stderr(quiet)


# --------------------------------------------------------------------------- main


def _register_areas() -> None:
    from hwnas.device_profiler.adb.cli import register as register_adb
    from hwnas.device_profiler.cli import register as register_profiler
    from hwnas.export.cli import register as register_export
    from hwnas.search.cli import register as register_search
    from hwnas.supernet.cli import register as register_supernet

    from .spaces import register as register_spaces
    from .train import register as register_train

    for register in (
        register_spaces,
        register_train,
        register_profiler,
        register_adb,
        register_search,
        register_supernet,
        register_export,
    ):
        register(app)


_register_areas()


def _finite(ctx, param, value):
    """Every float option: a finite number (``inf``, ``nan`` and ``1e308`` are refused)."""
    if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= 1e15):
        raise typer.BadParameter(
            f"{value!r} is not a finite number of sensible size", ctx=ctx, param=param
        )
    return value


def _chain(inner):
    if inner is None:
        return _finite
    return lambda ctx, param, value: inner(ctx, param, _finite(ctx, param, value))


def _finite_floats(cmd) -> object:
    """Check every float option of ``cmd`` and its subcommands with :func:`_finite`."""
    for param in cmd.params:
        desc = getattr(param, "type_descriptor", None)
        ann = getattr(desc, "annotation", None)
        if ann is float or float in getattr(ann, "__args__", ()):
            param.callback = _chain(param.callback)
    for sub in getattr(cmd, "commands", {}).values():
        _finite_floats(sub)
    return cmd


_WRITE_ERRNOS = {
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EACCES,
    errno.EPERM,
}


INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C (128 + SIGINT)


def _one_line(message) -> str:
    return f"error: {' '.join(str(message).split())}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input → ``error: <message>`` on stderr, exit status 2.

    The one place that turns failures into that line: hwnas's own errors, usage errors
    (unknown option values, missing arguments), and an ``OSError`` on an output (read-only,
    no space, a file where a folder must be) — as ``cannot write PATH: reason``.  Folders
    created for the outputs of a failed command are removed again when still empty."""
    from hwnas.io import OutputError, remove_created_dirs

    command = _finite_floats(typer.main.get_command(app))
    code = 0
    try:
        code = command.main(args=argv, prog_name="hwnas", standalone_mode=False) or 0
        if not isinstance(code, int):
            code = 0
        if code == INTERRUPTED:  # typer turns Ctrl-C into Exit(130), returned here
            raise typer.Abort()
    except NoArgsIsHelpError as e:
        e.show()
        code = 2
    except (HwnasError, KeyError, ValueError, OSError, TyperException) as e:
        remove_created_dirs()
        if os.environ.get("HWNAS_DEBUG"):
            raise
        if isinstance(e, TyperException):
            message = e.format_message() if hasattr(e, "format_message") else e
        elif isinstance(e, KeyError) and e.args:
            message = e.args[0]
        elif isinstance(e, OSError) and not isinstance(e, OutputError):
            what = e.filename if e.filename is not None else "an output"
            if e.errno in _WRITE_ERRNOS:
                message = OutputError(what, e)
            else:
                message = f"{what}: {e.strerror or e}"
        else:
            message = e
        print(_one_line(message), file=sys.stderr)
        code = 2
    except typer.Abort:
        remove_created_dirs()
        print("error: interrupted", file=sys.stderr)
        code = INTERRUPTED
    sys.exit(code)
