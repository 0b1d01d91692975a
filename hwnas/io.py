"""Small I/O helpers: atomic writes, so an interrupted command never leaves half a file, and
a way to keep native libraries' log lines off the terminal."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_figure(fig, path: str | Path, tight: bool = False) -> None:
    """Write a matplotlib figure as PNG (110 dpi), atomically, and close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, **({"bbox_inches": "tight"} if tight else {}))
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def staging_dir(out: Path) -> Path:
    """A fresh hidden folder beside ``out`` to build it in (then renamed into place), with
    the permissions ``mkdir`` would give rather than mkdtemp's 0700."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_default) + "\n")


def _default(o):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@contextlib.contextmanager
def native_stderr_quiet():
    """Send file descriptor 2 to /dev/null, and Python logging below ERROR nowhere, for the
    block's duration (``HWNAS_DEBUG=1`` keeps both).

    Converters and runtimes (TFLite's flatbuffer exporter, XNNPACK, torchao's extension
    loader) log from C++ straight to fd 2, past Python's ``warnings`` and ``logging``; their
    lines would bury the progress bars and the one-line results.  Errors still surface as
    exceptions.  Nesting is safe: each level restores what it found.
    """
    if os.environ.get("HWNAS_DEBUG"):
        yield
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    was_disabled = logging.root.manager.disable
    logging.disable(max(was_disabled, logging.WARNING))
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        logging.disable(was_disabled)


def check_resume(out: Path, ckpt: str, config: dict, resume: bool, what: str,
                 error: type[Exception]) -> bool:
    """Check an output folder against ``--resume``: True when ``out/ckpt`` is to be loaded.
    A folder holding a run without ``--resume``, or resuming with settings other than those
    in its ``config.json``, is refused with ``error`` (one line)."""
    have = (out / ckpt).exists()
    if have and not resume:
        raise error(f"{out} already holds a {what}; pass --resume to continue it or choose "
                    f"another --out")
    if have:
        cfg_file = out / "config.json"
        old = json.loads(cfg_file.read_text()) if cfg_file.exists() else {}
        new = json.loads(json.dumps(config))  # tuples compare as the JSON lists
        diff = sorted(k for k in new if k != "resume" and old.get(k) != new[k])
        if diff:
            raise error(f"--resume: {out} was started with different settings "
                        f"({', '.join(diff)}); use the same options or another --out")
    return have


def atomic_write_rows(path: str | Path, rows: list[dict]) -> None:
    """Rows of dicts as a CSV (header from the first row; floats to 6 significant digits)."""
    import csv
    import io

    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())
