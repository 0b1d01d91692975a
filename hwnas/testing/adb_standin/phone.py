"""The stand-in's phone: a Pixel-like file tree in a temp dir and the shell commands hwnas sends."""

from __future__ import annotations

import glob as _glob
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import bench, sh

BENCH_PATH = "/data/local/tmp/benchmark_model"

PIXEL_PROPS = {
    "ro.product.model": "Pixel",
    "ro.product.manufacturer": "Google",
    "ro.product.brand": "google",
    "ro.product.name": "sailfish",
    "ro.product.device": "sailfish",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.build.version.release": "10",
    "ro.build.version.sdk": "29",
    "ro.board.platform": "msm8996",
    "ro.hardware": "sailfish",
    "ro.serialno": "FA6AB0300001",
}
# Snapdragon 821: two Kryo "little" cores (cpu0-1) and two "big" ones (cpu2-3).
PIXEL_MAX_FREQ_KHZ = (1593600, 1593600, 2150400, 2150400)


@dataclass
class PhoneConfig:
    """What the stand-in phone looks like and which faults it injects."""

    props: dict = field(default_factory=lambda: dict(PIXEL_PROPS))
    max_freq_khz: tuple[int, ...] = PIXEL_MAX_FREQ_KHZ
    governor: str = "schedutil"
    thermal_c: tuple[float, ...] = (36.0, 38.5, 41.0)  # per zone, starting temperature
    cool_per_read_c: float = 0.0  # each read of a zone lowers it by this much
    variant: str = "modern"  # benchmark_model output format (see bench.VARIANTS)
    preinstalled_binary: bool = False  # benchmark_model already at /data/local/tmp
    permission_denied: bool = False  # chmod has no effect, exec fails with EACCES
    drop_after_shell: int | None = None  # close the connection on shell command N+1 (once)

    def __post_init__(self):
        if self.variant not in bench.VARIANTS:
            raise ValueError(f"variant must be one of {bench.VARIANTS}")


def remove_stale_roots(base: str | None = None) -> list[Path]:
    """Remove the file trees of stand-in phones whose process is gone (killed before it
    could clean up): ``hwnas-standin-<pid>-*`` with a dead pid, or older unnamed ones."""
    from hwnas.io import LEGACY_TEMP_AGE_S, pid_alive

    removed = []
    base = Path(base or tempfile.gettempdir())
    pat = re.compile(r"^hwnas-standin-(?:(\d+)-)?[A-Za-z0-9_]{8}$")
    for entry in base.glob("hwnas-standin-*"):
        m = pat.match(entry.name)
        if not m or not entry.is_dir() or entry.is_symlink():
            continue
        pid = m.group(1)
        if pid is not None:
            stale = int(pid) != os.getpid() and not pid_alive(int(pid))
        else:
            try:
                stale = time.time() - entry.stat().st_mtime > LEGACY_TEMP_AGE_S
            except OSError:
                stale = False
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


class FakePhone:
    """Executes shell lines against a private file tree; records what ran."""

    def __init__(self, config: PhoneConfig):
        self.config = config
        remove_stale_roots()
        self.root = Path(tempfile.mkdtemp(prefix=f"hwnas-standin-{os.getpid()}-"))
        self.executed: list[list[str]] = []
        self.shell_lines: list[str] = []
        self.syntax: list[str] = []
        self.masks: list[str] = []
        self.lock = threading.Lock()
        self._build_tree()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- files ---------------------------------------------------------------------------
    def local(self, device_path: str) -> Path:
        """The temp-dir file behind an absolute device path; never outside the tree."""
        p = Path(os.path.normpath(self.root / device_path.lstrip("/")))
        if p != self.root and self.root not in p.parents:
            return self.root / "nonexistent"
        return p

    def _write(self, device_path: str, text: str, mode: int = 0o644) -> None:
        p = self.local(device_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)

    def _build_tree(self) -> None:
        c = self.config
        n = len(c.max_freq_khz)
        self._write("/sys/devices/system/cpu/possible", f"0-{n - 1}\n")
        self._write("/sys/devices/system/cpu/present", f"0-{n - 1}\n")
        for i, khz in enumerate(c.max_freq_khz):
            base = f"/sys/devices/system/cpu/cpu{i}/cpufreq"
            self._write(f"{base}/cpuinfo_max_freq", f"{khz}\n")
            self._write(f"{base}/scaling_governor", f"{c.governor}\n")
        parts = ["0x211", "0x211", "0x205", "0x205"]
        cpuinfo = "".join(
            f"processor\t: {i}\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd aes pmull sha1 sha2 crc32\n"
            f"CPU implementer\t: 0x51\nCPU part\t: {parts[i % 4]}\n\n"
            for i in range(n)
        )
        hardware = "Hardware\t: Qualcomm Technologies, Inc MSM8996pro\n"
        self._write("/proc/cpuinfo", cpuinfo + hardware)
        names = ("battery", "tsens_tz_sensor1", "tsens_tz_sensor8")
        for z, temp in enumerate(c.thermal_c):
            self._write(f"/sys/class/thermal/thermal_zone{z}/type", f"{names[z % 3]}\n")
            self._write(f"/sys/class/thermal/thermal_zone{z}/temp", f"{int(temp * 1000)}\n")
        self.local("/data/local/tmp").mkdir(parents=True, exist_ok=True)
        if c.preinstalled_binary:
            self._write(BENCH_PATH, "#!benchmark_model stand-in\n", 0o755)

    def glob(self, pattern: str) -> list[str]:
        hits = sorted(_glob.glob(str(self.root) + "/" + pattern.lstrip("/")))
        return ["/" + str(Path(h).relative_to(self.root)) for h in hits]

    # -- shell ---------------------------------------------------------------------------
    def shell(self, line: str) -> str:
        """Run one `shell:` service line; the output as a pty would give it (CRLF)."""
        with self.lock:
            self.shell_lines.append(line)
            out, _, parsed = sh.run_line(line, self.run, self.glob)
            self.syntax.extend(parsed.syntax)
        return out.replace("\r\n", "\n").replace("\n", "\r\n")

    def run(self, argv: list[str]) -> tuple[str, int]:
        self.executed.append(list(argv))
        if not argv:
            return "", 0
        name = argv[0]
        fn = _COMMANDS.get(name)
        if fn is not None:
            return fn(self, argv[1:])
        if "/" in name:
            return self._exec(argv)
        return f"/system/bin/sh: {name}: not found\n", 127

    def _exec(self, argv: list[str]) -> tuple[str, int]:
        path = self.local(argv[0])
        if not path.is_file():
            return f"/system/bin/sh: {argv[0]}: not found\n", 127
        if self.config.permission_denied or not os.access(path, os.X_OK):
            return f"/system/bin/sh: {argv[0]}: can't execute: Permission denied\n", 126
        if Path(argv[0]).name != "benchmark_model":
            return f"/system/bin/sh: {argv[0]}: can't execute: Exec format error\n", 126
        graph = next((a.split("=", 1)[1] for a in argv if a.startswith("--graph=")), None)
        return bench.run(argv[1:], self.local(graph) if graph else None, self.config.variant)

    def _getprop(self, args):
        props = self.config.props
        if args:
            return props.get(args[0], "") + "\n", 0
        return "".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items())), 0

    def _cat(self, args):
        out, rc = [], 0
        for a in args:
            p = self.local(a)
            if not p.is_file():
                out.append(f"cat: {a}: No such file or directory\n")
                rc = 1
                continue
            out.append(p.read_text())
            self._cool(p)
        return "".join(out), rc

    def _cool(self, p: Path) -> None:
        if p.name == "temp" and self.config.cool_per_read_c:
            milli = int(p.read_text()) - int(self.config.cool_per_read_c * 1000)
            p.write_text(f"{max(milli, 20000)}\n")

    def _echo(self, args):
        return " ".join(args) + "\n", 0

    def _ls(self, args):
        paths = [a for a in args if not a.startswith("-")] or ["/data/local/tmp"]
        out, rc = [], 0
        for a in paths:
            p = self.local(a)
            if p.is_dir():
                out.extend(f"{c.name}\n" for c in sorted(p.iterdir()))
            elif p.exists():
                out.append(f"{a}\n")
            else:
                out.append(f"ls: {a}: No such file or directory\n")
                rc = 1
        return "".join(out), rc

    def _chmod(self, args):
        if len(args) < 2:
            return "chmod: Need 2 arguments\n", 1
        try:
            mode = int(args[0], 8)
        except ValueError:
            return f"chmod: bad mode '{args[0]}'\n", 1
        out, rc = [], 0
        for a in args[1:]:
            p = self.local(a)
            if not p.exists():
                out.append(f"chmod: {a}: No such file or directory\n")
                rc = 1
            elif not self.config.permission_denied:
                p.chmod(mode)
        return "".join(out), rc

    def _rm(self, args):
        force = any(a.startswith("-") and "f" in a for a in args)
        out, rc = [], 0
        for a in (a for a in args if not a.startswith("-")):
            p = self.local(a)
            if p.is_dir():
                out.append(f"rm: {a}: Is a directory\n")
                rc = 1
            elif p.exists():
                p.unlink()
            elif not force:
                out.append(f"rm: {a}: No such file or directory\n")
                rc = 1
        return "".join(out), rc

    def _mkdir(self, args):
        for a in (a for a in args if not a.startswith("-")):
            self.local(a).mkdir(parents=True, exist_ok=True)
        return "", 0

    def _taskset(self, args):
        if len(args) < 2:
            return "usage: taskset [-ap] [mask] [PID | cmd [args...]]\n", 1
        try:
            mask = int(args[0], 16)
        except ValueError:
            return f"taskset: bad mask '{args[0]}'\n", 1
        if mask == 0 or mask >> len(self.config.max_freq_khz):
            return f"taskset: sched_setaffinity: Invalid argument ({args[0]})\n", 1
        self.masks.append(args[0])
        return self.run(args[1:])

    # -- sync service --------------------------------------------------------------------
    def stat(self, device_path: str) -> tuple[int, int, int]:
        p = self.local(device_path)
        if not p.exists():
            return 0, 0, 0
        st = p.stat()
        return st.st_mode & 0xFFFF, st.st_size, int(st.st_mtime)

    def receive(self, device_path: str, data: bytes, mode: int) -> str | None:
        """Store a pushed file; an error string when the path is not writable."""
        p = self.local(device_path)
        if not device_path.startswith("/data/local/tmp/") or not p.parent.is_dir():
            return f"couldn't create file: {device_path}: Permission denied"
        p.write_bytes(data)
        p.chmod(stat.S_IMODE(mode) or 0o644)
        return None


_COMMANDS = {
    "getprop": FakePhone._getprop,
    "cat": FakePhone._cat,
    "echo": FakePhone._echo,
    "ls": FakePhone._ls,
    "chmod": FakePhone._chmod,
    "rm": FakePhone._rm,
    "mkdir": FakePhone._mkdir,
    "taskset": FakePhone._taskset,
}
