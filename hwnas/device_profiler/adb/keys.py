"""ADB RSA key pair under ~/.cache/hwnas/adbkey (created on first use), as adb-shell signers."""

from __future__ import annotations

import os
from pathlib import Path

from hwnas.errors import HwnasError


def key_path() -> Path:
    """``$HWNAS_CACHE_DIR/adbkey`` (default ``~/.cache/hwnas/adbkey``); ``.pub`` beside it."""
    base = os.environ.get("HWNAS_CACHE_DIR") or Path.home() / ".cache" / "hwnas"
    return Path(base).expanduser() / "adbkey"


def signers(path: Path | None = None) -> list:
    """A PythonRSASigner for hwnas's key, generating the pair (mode 600) if it is missing."""
    from adb_shell.auth.keygen import keygen
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    path = path or key_path()
    pub = path.with_name(path.name + ".pub")
    try:
        if not (path.is_file() and pub.is_file()):
            path.parent.mkdir(parents=True, exist_ok=True)
            keygen(str(path))
            path.chmod(0o600)
        return [PythonRSASigner.FromRSAKeyPath(str(path))]
    except (OSError, ValueError) as e:
        raise HwnasError(
            f"cannot create or read the ADB key {path}: {e}; set HWNAS_CACHE_DIR to a writable "
            f"folder"
        ) from e
