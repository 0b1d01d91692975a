"""Run the stand-in phone for a while: `python -m hwnas.testing.adb_standin`."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from . import AdbStandin, PhoneConfig
from .bench import VARIANTS


def main() -> None:
    ap = argparse.ArgumentParser(description="A Pixel-like ADB stand-in on 127.0.0.1 (bounded).")
    ap.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    ap.add_argument("--idle", type=float, default=120.0, help="stop after this long idle")
    ap.add_argument("--variant", choices=VARIANTS, default="modern")
    ap.add_argument("--auth", action="store_true", help="demand ADB RSA authentication")
    a = ap.parse_args()
    # SIGTERM ends like Ctrl-C: the phone's temporary file tree is removed on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with AdbStandin(
        PhoneConfig(variant=a.variant), require_auth=a.auth, idle_s=a.idle, lifetime_s=a.seconds
    ) as s:
        print(f"stand-in phone listening: --serial {s.serial}", flush=True)
        while s._thread.is_alive():
            time.sleep(0.5)


if __name__ == "__main__":
    main()
