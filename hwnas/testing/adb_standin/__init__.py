"""A stand-in phone for tests and demos: an ADB daemon on 127.0.0.1 with a Pixel-like shell."""

from .phone import PIXEL_MAX_FREQ_KHZ, PIXEL_PROPS, FakePhone, PhoneConfig
from .server import AdbStandin

__all__ = ["AdbStandin", "FakePhone", "PhoneConfig", "PIXEL_PROPS", "PIXEL_MAX_FREQ_KHZ"]
