"""The `adb` backend: a phone over ADB (adb-shell or the system adb), benchmark_model, parsing."""

from .backend import AdbBackend, AdbSettings
from .device import DeviceInfo, core_mask, find_devices, parse_cores, read_device
from .parse import Invocation, parse_output
from .transport import AdbConnectionLost, connect

__all__ = [
    "AdbBackend",
    "AdbSettings",
    "AdbConnectionLost",
    "DeviceInfo",
    "Invocation",
    "connect",
    "core_mask",
    "find_devices",
    "parse_cores",
    "parse_output",
    "read_device",
]
