"""Small I/O helpers: atomic writes, so an interrupted command never leaves half a file;
one error for outputs that cannot be written; per-output locks; removal of what a killed run
left behind; and a way to keep native libraries' log lines off the terminal."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hwnas.errors import HwnasError

LEGACY_TEMP_AGE_S = 600  # temporaries without a pid (older hwnas) are stale after this long


class OutputError(HwnasError):
    """An output that cannot be written: ``cannot write PATH: reason`` (one line)."""

    def __init__(self, path, reason):
        if isinstance(reason, OSError):
            reason = reason.strerror or str(reason)
        super().__init__(f"cannot write {path}: {reason}")
        self.path = Path(path)


# Folders this process created for its outputs, newest last; the CLI removes the ones still
# empty when a command fails, so a refused or failed write leaves no new folder behind.
_created_dirs: list[Path] = []


def cache_dir(*parts: str) -> Path:
    """hwnas's one cache folder, ``$HWNAS_CACHE_DIR`` (default ``~/.cache/hwnas``), with
    ``parts`` below it: ``blocks/`` (converted block models), ``adbkey`` (the ADB key)."""
    base = os.environ.get("HWNAS_CACHE_DIR") or Path.home() / ".cache" / "hwnas"
    return Path(base).expanduser().joinpath(*parts)


def make_dirs(folder: str | Path, target: str | Path | None = None) -> Path:
    """``mkdir -p folder``, remembering what it created; an ancestor that is a file, or a
    folder that cannot be made, is an :class:`OutputError` about ``target`` (or ``folder``)."""
    folder = Path(folder)
    target = folder if target is None else target
    missing, p = [], folder
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    if os.path.lexists(p) and not p.is_dir():
        raise OutputError(target, f"{p} exists and is not a directory")
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if d.is_dir():
                continue
            raise OutputError(target, f"{d} exists and is not a directory") from None
        except OSError as e:
            raise OutputError(target, e) from None
        _created_dirs.append(d)
    return folder


def remove_created_dirs() -> None:
    """Remove the folders :func:`make_dirs` created that are still empty (after a failure)."""
    while _created_dirs:
        with contextlib.suppress(OSError):
            _created_dirs.pop().rmdir()


def check_out_dir(out: str | Path) -> Path:
    """An output folder must be a folder when it exists (else one :class:`OutputError`)."""
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise OutputError(out, "it exists and is not a directory")
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return pid > 0


def _stale(entry: Path, pid: str | None) -> bool:
    """A temporary of a run that is gone: its pid (in the name) is dead, or it has no pid
    (written by an older hwnas) and is older than ``LEGACY_TEMP_AGE_S``."""
    if pid is not None:
        return int(pid) != os.getpid() and not pid_alive(int(pid))
    try:
        return time.time() - entry.lstat().st_mtime > LEGACY_TEMP_AGE_S
    except OSError:
        return False


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove what killed runs left beside ``path``: ``.NAME.<pid>-*.tmp`` files of
    :func:`atomic_write_bytes`, ``.NAME.tmp-<pid>-*`` staging folders of
    :func:`staging_dir` and ``.NAME.old-<pid>`` folders of a replaced export, whose process
    is gone.  Returns what was removed."""
    path = Path(path)
    name = re.escape(path.name)
    patterns = [
        re.compile(rf"^\.{name}\.(?:(\d+)-)?[A-Za-z0-9_]{{8}}\.tmp$"),
        re.compile(rf"^\.{name}\.tmp-(?:(\d+)-)?[A-Za-z0-9_]{{8}}$"),
        re.compile(rf"^\.{name}\.old-(\d+)$"),
    ]
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for e in entries:
        if not e.name.startswith(f".{path.name}."):
            continue
        for pat in patterns:
            m = pat.match(e.name)
            if m and _stale(Path(e.path), m.group(1)):
                p = Path(e.path)
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        p.unlink()
                removed.append(p)
                break
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.
    Any OSError (read-only, no space, a file where a folder should be) is an
    :class:`OutputError` and leaves neither the temporary nor a changed ``path``."""
    path = Path(path)
    make_dirs(path.parent, target=path)
    if path.is_dir():
        raise OutputError(path, "it is a directory")
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent
        )
    except OSError as e:
        raise OutputError(path, e) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | Path, error: type[Exception] = HwnasError, what: str = ""):
    """The JSON in ``path``; text that is not JSON is one ``error``:
    ``PATH: {what}not valid JSON (why)``."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: {what}not valid JSON ({e})") from None


def atomic_torch_save(path: str | Path, obj) -> None:
    """``torch.save`` of ``obj`` (a checkpoint, a state dict) to ``path``, atomically (through
    :func:`atomic_write_bytes`); the readers load it with ``torch.load(weights_only=True)``."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


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
    the permissions ``mkdir`` would give rather than mkdtemp's 0700.  Staging folders of
    killed runs on the same ``out`` are removed first."""
    remove_stale_temporaries(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as e:
        raise OutputError(out, e) from None
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


def check_resume(
    out: Path,
    ckpt: str,
    config: dict,
    resume: bool,
    what: str,
    error: type[Exception],
    defaults: dict | None = None,
) -> bool:
    """Check an output folder against ``--resume``: True when ``out/ckpt`` is to be loaded.
    A folder holding a run without ``--resume``, or resuming with settings other than those
    in its ``config.json``, is refused with ``error`` (one line).  ``defaults``: a setting
    the run's ``config.json`` predates counts as this value (a field added later)."""
    have = (out / ckpt).exists()
    if have and not resume:
        raise error(
            f"{out} already holds a {what}; pass --resume to continue it or choose another --out"
        )
    if have:
        cfg_file = out / "config.json"
        old = json.loads(cfg_file.read_text()) if cfg_file.exists() else {}
        new = json.loads(json.dumps(config))  # tuples compare as the JSON lists
        # as atomic_write_json stores them: tuples as lists, Paths as strings
        old = {**json.loads(json.dumps(defaults or {}, default=_default)), **old}
        diff = sorted(k for k in new if k != "resume" and old.get(k) != new[k])
        if diff:
            raise error(
                f"--resume: {out} was started with different settings "
                f"({', '.join(diff)}); use the same options or another --out"
            )
    return have


def field_defaults(config) -> dict:
    """The declared defaults of a dataclass's fields (``check_resume``'s ``defaults``: a
    field added after a run began counts as its default when that run resumes)."""
    out = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


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


class OutputLock:
    """An exclusive ``fcntl`` lock on one output (a file or a folder), held in the lock file
    ``.NAME.lock`` beside it, which records the holder's pid.  A second writer gets one line
    naming that pid.  The kernel drops the lock when its process dies, so a lock file left
    by a killed run is simply taken over; the holder removes the file on release.  Taking
    the lock also removes temporaries that killed runs left beside the output."""

    def __init__(self, out: str | Path, also: tuple = ()):
        self.out = Path(out)
        self.also = tuple(Path(p) for p in also)  # files written with it (a table's sidecar)
        self.path = self.out.parent / f".{self.out.name}.lock"
        self.fd: int | None = None

    def acquire(self) -> "OutputLock":
        import fcntl

        make_dirs(self.path.parent, target=self.out)
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise OutputError(self.out, e) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise HwnasError(
                    f"{self.out} is being written by another hwnas run (pid "
                    f"{holder}, lock {self.path}); wait for it to finish or "
                    f"choose another output"
                ) from None
            try:  # the previous holder may have removed the file between our open and lock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(fd)
            raise OutputError(self.out, e) from None
        self.fd = fd
        for p in (self.out, *self.also):
            remove_stale_temporaries(p)
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def output_lock(out: str | Path) -> OutputLock:
    """``with output_lock(out): ...`` — see :class:`OutputLock`."""
    return OutputLock(out)
