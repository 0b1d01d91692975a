"""Read a phone: getprop identity, per-core max frequency (big cores → taskset mask), thermals."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from hwnas.errors import HwnasError

from .transport import Transport

_CPU = "/sys/devices/system/cpu"
_THERMAL = "/sys/class/thermal"
_PROP = re.compile(r"^\[([^\]]+)\]: \[(.*)\]$")


@dataclass(frozen=True)
class DeviceInfo:
    """What hwnas records about a phone (provenance) and uses to pin the benchmark."""

    serial: str
    model: str
    manufacturer: str
    android: str
    soc: str
    abi: str
    max_freq_khz: tuple[int, ...]  # per core; 0 where unreadable (offline core)
    governors: tuple[str, ...]

    def big_cores(self) -> tuple[int, ...]:
        """The cores with the highest cpuinfo_max_freq (all cores when none is readable)."""
        top = max(self.max_freq_khz, default=0)
        if top == 0:
            return tuple(range(len(self.max_freq_khz)))
        return tuple(i for i, f in enumerate(self.max_freq_khz) if f == top)

    def as_dict(self) -> dict:
        return {
            "serial": self.serial,
            "model": self.model,
            "manufacturer": self.manufacturer,
            "android": self.android,
            "soc": self.soc,
            "abi": self.abi,
            "max_freq_khz": list(self.max_freq_khz),
            "governors": sorted(set(self.governors)),
        }


def core_mask(cores) -> str:
    """taskset's hex mask (no 0x) for core indices: (2, 3) -> 'c'."""
    cores = tuple(cores)
    if not cores or any(c < 0 for c in cores):
        raise HwnasError(f"core list {cores} is empty or negative; pass e.g. --cores 2,3")
    return format(sum(1 << c for c in set(cores)), "x")


def parse_cores(text: str, n_cores: int | None = None) -> tuple[int, ...]:
    """'2,3' or '4-7' or '0,2-3' -> sorted core indices, checked against the phone's count."""
    cores: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, _, hi = part.partition("-")
            cores.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise HwnasError(f"--cores {text!r} is not a core list; use e.g. --cores 2,3 or 4-7")
    if not cores:
        raise HwnasError(f"--cores {text!r} names no core; use e.g. --cores 2,3")
    if n_cores is not None and max(cores) >= n_cores:
        raise HwnasError(
            f"--cores {text!r} names core {max(cores)} but the phone has cores 0-{n_cores - 1}"
        )
    return tuple(sorted(cores))


def _sections(out: str) -> dict[str, str]:
    """Split output of `echo ==hwnas:KEY==; cat ...` sequences into {KEY: text}."""
    parts = re.split(r"==hwnas:([^=\s]+)==", out.replace("\r", ""))
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def _read_files(t: Transport, paths: dict[str, str]) -> dict[str, str]:
    """{key: file content} in one shell round trip; '' for unreadable files."""
    cmd = "; ".join(f"echo ==hwnas:{k}==; cat {shlex.quote(p)}" for k, p in paths.items())
    got = _sections(t.shell(cmd))
    bad = ("No such file", "Permission denied", "Invalid argument")
    return {k: ("" if any(b in v for b in bad) else v) for k, v in got.items()}


def getprops(t: Transport) -> dict[str, str]:
    props = {}
    for line in t.shell("getprop").replace("\r", "").split("\n"):
        m = _PROP.match(line.strip())
        if m:
            props[m.group(1)] = m.group(2)
    return props


def _n_cores(t: Transport) -> int:
    text = t.shell(f"cat {_CPU}/possible").strip()
    m = re.fullmatch(r"0(?:-(\d+))?", text.replace("\r", "").strip())
    if not m:
        raise HwnasError(f"cannot read the CPU count from {_CPU}/possible (got {text[:60]!r})")
    return int(m.group(1) or 0) + 1


def read_device(t: Transport) -> DeviceInfo:
    """Identity and CPU layout of the phone behind ``t``."""
    props = getprops(t)
    if not props:
        raise HwnasError(f"{t.serial} answered `getprop` with nothing; is it an Android device?")
    n = _n_cores(t)
    files = {}
    for i in range(n):
        files[f"f{i}"] = f"{_CPU}/cpu{i}/cpufreq/cpuinfo_max_freq"
        files[f"g{i}"] = f"{_CPU}/cpu{i}/cpufreq/scaling_governor"
    got = _read_files(t, files)
    freqs = tuple(
        int(got.get(f"f{i}") or 0) if (got.get(f"f{i}") or "").isdigit() else 0 for i in range(n)
    )
    soc = next(
        (props[k] for k in ("ro.soc.model", "ro.board.platform", "ro.hardware") if props.get(k)), ""
    )
    return DeviceInfo(
        serial=t.serial,
        model=props.get("ro.product.model", ""),
        manufacturer=props.get("ro.product.manufacturer", ""),
        android=props.get("ro.build.version.release", ""),
        soc=soc,
        abi=props.get("ro.product.cpu.abi", ""),
        max_freq_khz=freqs,
        governors=tuple(got.get(f"g{i}", "") for i in range(n) if got.get(f"g{i}")),
    )


def read_thermal(t: Transport) -> tuple[tuple[str, float], ...]:
    """(zone type, °C) for every readable thermal zone; empty where none is readable."""
    names = t.shell(f"ls {_THERMAL}").replace("\r", "").split()
    zones = sorted(
        (z for z in names if re.fullmatch(r"thermal_zone\d+", z)), key=lambda z: int(z[12:])
    )
    if not zones:
        return ()
    files = {}
    for z in zones:
        files[f"{z}.type"] = f"{_THERMAL}/{z}/type"
        files[f"{z}.temp"] = f"{_THERMAL}/{z}/temp"
    got = _read_files(t, files)
    out = []
    for z in zones:
        raw = got.get(f"{z}.temp", "")
        try:
            v = float(raw)
        except ValueError:
            continue
        out.append((got.get(f"{z}.type") or z, v / 1000.0 if abs(v) >= 200 else v))
    return tuple(out)


def find_devices(serials=(), *, timeout_s: float = 5.0) -> list:
    """Attached devices (system adb, USB via libusb, and the given HOST:PORT serials), with
    model, SoC and Android read over ADB where the device answers."""
    import os

    from .transport import DeviceRef, adb_binary, adb_binary_devices, connect, usb_devices

    adb = adb_binary()
    refs = (adb_binary_devices(adb) if adb else []) + usb_devices()
    extra = list(serials) + (
        [os.environ["ANDROID_SERIAL"]] if os.environ.get("ANDROID_SERIAL") else []
    )
    known = {r.serial for r in refs}
    refs += [DeviceRef(s, "tcp") for s in extra if s not in known]
    out = []
    for r in refs:
        if r.state != "device":
            out.append(r)
            continue
        try:
            t = connect(r.serial, timeout_s=timeout_s)
        except HwnasError:
            out.append(DeviceRef(r.serial, r.via, r.model, state="unreachable"))
            continue
        try:
            p = getprops(t)
        except HwnasError:
            p = {}
        finally:
            t.close()
        soc = next(
            (p[k] for k in ("ro.soc.model", "ro.board.platform", "ro.hardware") if p.get(k)), ""
        )
        out.append(
            DeviceRef(
                r.serial,
                t.via,
                p.get("ro.product.model", r.model),
                soc,
                p.get("ro.build.version.release", ""),
            )
        )
    return out
