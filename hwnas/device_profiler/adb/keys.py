"""ADB RSA key pair under ~/.cache/hwnas/adbkey (created on first use), as adb-shell signers.

The private key is created with mode 0600 from the start (``os.open`` with that mode, then
a rename into place), so it is never readable by anyone else, not even briefly; an existing
private key that group or others can read is made 0600, with a warning on stderr."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from hwnas.errors import HwnasError
from hwnas.io import cache_dir

logger = logging.getLogger(__name__)


def key_path() -> Path:
    """``adbkey`` in hwnas's cache folder (``hwnas.io.cache_dir``: ``$HWNAS_CACHE_DIR``,
    default ``~/.cache/hwnas``); ``.pub`` beside it."""
    return cache_dir("adbkey")


def _write_private(path: Path, data: bytes) -> None:
    """``data`` to ``path`` (mode 0600 from creation, replaced atomically)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def generate(path: Path) -> None:
    """A new RSA-2048 pair: ``path`` (PKCS#8 PEM, 0600) and ``path.pub`` (Android format)."""
    from adb_shell.auth.keygen import write_public_keyfile
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(
        path,
        key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        ),
    )
    pub = path.with_name(path.name + ".pub")
    tmp_pub = pub.with_name(f".{pub.name}.{os.getpid()}.tmp")
    try:
        write_public_keyfile(str(path), str(tmp_pub))
        os.replace(tmp_pub, pub)
    except BaseException:
        tmp_pub.unlink(missing_ok=True)
        raise


def tighten(path: Path) -> bool:
    """Make an existing private key 0600 when group or others may read it (says so on
    stderr); True when it changed."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return False
    path.chmod(0o600)
    logger.warning(
        f"the ADB private key {path} was readable by others (mode {mode:o}); made it 0600"
    )
    return True


def signers(path: Path | None = None) -> list:
    """A PythonRSASigner for hwnas's key, generating the pair (mode 600) if it is missing."""
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    path = path or key_path()
    pub = path.with_name(path.name + ".pub")
    try:
        if not (path.is_file() and pub.is_file()):
            path.parent.mkdir(parents=True, exist_ok=True)
            generate(path)
        tighten(path)
        return [PythonRSASigner.FromRSAKeyPath(str(path))]
    except (OSError, ValueError) as e:
        raise HwnasError(
            f"cannot create or read the ADB key {path}: {e}; set HWNAS_CACHE_DIR to a writable "
            f"folder"
        ) from e
