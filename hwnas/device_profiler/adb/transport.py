"""Talking to a phone: adb-shell (TCP, USB) or the system `adb` binary; finding devices."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from adb_shell.transport.tcp_transport import TcpTransport

from hwnas.errors import HwnasError

CONNECT_TIMEOUT_S = 10.0
SHELL_TIMEOUT_S = 30.0


class AdbConnectionLost(HwnasError):
    """The device went away (unplugged, connection dropped); re-run with --resume."""


@dataclass(frozen=True)
class DeviceRef:
    """One attached device as `hwnas devices` lists it."""

    serial: str
    via: str  # "tcp", "usb" (adb-shell) or "adb" (system binary)
    model: str = ""
    soc: str = ""
    android: str = ""
    state: str = "device"


class Transport(Protocol):
    serial: str
    via: str

    def shell(self, command: str, timeout_s: float = SHELL_TIMEOUT_S) -> str: ...
    def push(self, local: Path, remote: str, timeout_s: float = SHELL_TIMEOUT_S) -> None: ...
    def exists(self, remote: str) -> bool: ...
    def close(self) -> None: ...


def _is_tcp(serial: str) -> bool:
    host, sep, port = serial.rpartition(":")
    return bool(sep and host and port.isdigit())


class AdbShellTransport:
    """adb-shell's AdbDevice (TCP ``host:port`` or USB), authenticating with hwnas's key."""

    def __init__(self, serial: str, *, usb: bool = False, timeout_s: float = CONNECT_TIMEOUT_S):
        from adb_shell.adb_device import AdbDevice, AdbDeviceUsb

        self.serial, self.via, self._timeout = serial, ("usb" if usb else "tcp"), timeout_s
        if usb:
            self._dev = AdbDeviceUsb(serial=serial or None, default_transport_timeout_s=timeout_s)
        else:
            host, _, port = serial.rpartition(":")
            self._dev = AdbDevice(_EofTcpTransport(host, int(port)), timeout_s, banner="hwnas")
        from .keys import signers

        try:
            self._dev.connect(
                rsa_keys=signers(),
                transport_timeout_s=timeout_s,
                auth_timeout_s=60.0,
                read_timeout_s=timeout_s,
            )
        except Exception as e:  # adb-shell raises many types; all mean "no device here"
            raise HwnasError(
                f"cannot connect to ADB device {serial}: {_why(e)}; check that the "
                f"phone is on, authorised and reachable"
            ) from e

    def shell(self, command: str, timeout_s: float = SHELL_TIMEOUT_S) -> str:
        try:
            out = self._dev.shell(
                command,
                transport_timeout_s=self._timeout,
                read_timeout_s=timeout_s,
                timeout_s=timeout_s,
            )
        except Exception as e:
            raise AdbConnectionLost(
                f"lost the ADB connection to {self.serial} ({_why(e)}); "
                f"reconnect the phone and re-run with --resume"
            ) from e
        return out

    def push(self, local: Path, remote: str, timeout_s: float = SHELL_TIMEOUT_S) -> None:
        from adb_shell.exceptions import AdbCommandFailureException, PushFailedError

        try:
            self._dev.push(
                str(local),
                remote,
                st_mode=0o100644,
                transport_timeout_s=self._timeout,
                read_timeout_s=timeout_s,
            )
        except (AdbCommandFailureException, PushFailedError) as e:
            raise HwnasError(f"push of {local.name} to {remote} failed: {_why(e)}") from e
        except Exception as e:
            raise AdbConnectionLost(
                f"lost the ADB connection to {self.serial} while pushing "
                f"{local.name} ({_why(e)}); re-run with --resume"
            ) from e

    def exists(self, remote: str) -> bool:
        try:
            mode, _, _ = self._dev.stat(
                remote, transport_timeout_s=self._timeout, read_timeout_s=self._timeout
            )
        except Exception as e:
            raise AdbConnectionLost(f"lost the ADB connection to {self.serial} ({_why(e)})") from e
        return mode != 0

    def close(self) -> None:
        self._dev.close()


def _why(e: BaseException) -> str:
    return (str(e) or type(e).__name__).splitlines()[0][:200]


class _EofTcpTransport(TcpTransport):
    """TcpTransport that reports a closed socket instead of spinning until the read timeout,
    and sends small packets at once (adb-shell writes each header and payload separately)."""

    def connect(self, transport_timeout_s):
        super().connect(transport_timeout_s)
        self._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def bulk_read(self, numbytes, transport_timeout_s):
        data = super().bulk_read(numbytes, transport_timeout_s)
        if not data:
            raise ConnectionResetError("the device closed the connection")
        return data


class AdbBinaryTransport:
    """The system `adb` binary (argument lists, never a shell), for serials it lists."""

    def __init__(self, serial: str, adb: str):
        self.serial, self.via, self._adb = serial, "adb", adb

    def _run(self, args: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                [self._adb, "-s", self.serial, *args],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise AdbConnectionLost(
                f"adb -s {self.serial} {args[0]} timed out after "
                f"{timeout_s:.0f} s; check the phone and re-run with "
                f"--resume"
            ) from e

    def shell(self, command: str, timeout_s: float = SHELL_TIMEOUT_S) -> str:
        # adb joins its arguments with spaces for the device shell: pass one quoted string.
        p = self._run(["shell", command], timeout_s)
        if p.returncode != 0 and p.stderr.lstrip().startswith("error:"):
            raise AdbConnectionLost(
                f"adb -s {self.serial} shell failed: {p.stderr.strip()[:200]}; re-run with --resume"
            )
        return p.stdout + p.stderr

    def push(self, local: Path, remote: str, timeout_s: float = SHELL_TIMEOUT_S) -> None:
        p = self._run(["push", str(local), remote], timeout_s)
        if p.returncode != 0:
            raise HwnasError(
                f"adb push of {local.name} to {remote} failed: "
                f"{(p.stderr or p.stdout).strip()[:200]}"
            )

    def exists(self, remote: str) -> bool:
        out = self.shell(f"ls -d {shlex.quote(remote)}; echo __hwnas_exit=$?")
        return out.strip().endswith("__hwnas_exit=0")

    def close(self) -> None:
        pass


def adb_binary() -> str | None:
    """The system `adb` on PATH (or $ADB), if any."""
    return os.environ.get("ADB") or shutil.which("adb")


def adb_binary_devices(adb: str, timeout_s: float = CONNECT_TIMEOUT_S) -> list[DeviceRef]:
    """Devices `adb devices -l` lists (any state), parsed from its table."""
    try:
        p = subprocess.run(
            [adb, "devices", "-l"], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    refs = []
    for line in p.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 2 or line.startswith("*"):
            continue
        info = dict(x.split(":", 1) for x in parts[2:] if ":" in x)
        refs.append(DeviceRef(parts[0], "adb", model=info.get("model", ""), state=parts[1]))
    return refs


def usb_devices() -> list[DeviceRef]:
    """USB devices adb-shell sees via libusb (only when python-libusb1 is installed)."""
    try:
        from adb_shell.transport.usb_transport import UsbTransport
    except ImportError:
        return []
    try:
        found = UsbTransport.find_all_adb_devices()
        return [DeviceRef(t.serial_number, "usb") for t in found]
    except Exception:
        return []


def connect(serial: str | None = None, *, timeout_s: float = CONNECT_TIMEOUT_S) -> Transport:
    """Open the device named by ``serial`` (or $ANDROID_SERIAL, or the only one attached)."""
    serial = serial or os.environ.get("ANDROID_SERIAL") or None
    adb = adb_binary()
    listed = adb_binary_devices(adb) if adb else []
    if serial:
        ref = next((r for r in listed if r.serial == serial), None)
        if ref is not None:
            _check_state(ref)
            return AdbBinaryTransport(serial, adb)
        if _is_tcp(serial):
            return AdbShellTransport(serial, timeout_s=timeout_s)
        if any(r.serial == serial for r in usb_devices()):
            return AdbShellTransport(serial, usb=True, timeout_s=timeout_s)
        raise HwnasError(
            f"no ADB device with serial {serial!r}; `hwnas devices` lists attached "
            f"ones (use HOST:PORT for a phone on `adb tcpip 5555`)"
        )
    candidates = [r for r in listed if r.state == "device"] or usb_devices()
    if not candidates:
        raise HwnasError(
            "no ADB device found: attach a phone with USB debugging on (or pass "
            "--serial HOST:PORT for adb over TCP)"
        )
    if len(candidates) > 1:
        names = ", ".join(r.serial for r in candidates)
        raise HwnasError(
            f"{len(candidates)} ADB devices attached ({names}); choose one with --serial"
        )
    ref = candidates[0]
    if ref.via == "adb":
        return AdbBinaryTransport(ref.serial, adb)
    return AdbShellTransport(ref.serial, usb=True, timeout_s=timeout_s)


def _check_state(ref: DeviceRef) -> None:
    if ref.state != "device":
        hint = {
            "unauthorized": "accept the USB debugging prompt on the phone",
            "offline": "reconnect the cable or restart adb",
        }.get(ref.state, "check the phone")
        raise HwnasError(f"ADB device {ref.serial} is {ref.state}: {hint}")
