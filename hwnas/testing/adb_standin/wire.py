"""ADB wire format (AOSP protocol.txt / SYNC.TXT facts): 24-byte headers, sync requests."""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("<6I")
SYNC_HEADER = struct.Struct("<2I")

A_VERSION = 0x01000000  # checksummed payloads; 0x01000001 lets peers skip the checksum
MAX_PAYLOAD = 256 * 1024
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
SYNC_DATA_MAX = 64 * 1024


def cmd_id(name: bytes) -> int:
    """The little-endian u32 of a four-letter command name (b'CNXN' -> 0x4e584e43)."""
    return int.from_bytes(name, "little")


CNXN, AUTH, OPEN, OKAY, CLSE, WRTE = (
    cmd_id(n) for n in (b"CNXN", b"AUTH", b"OPEN", b"OKAY", b"CLSE", b"WRTE")
)
COMMANDS = {CNXN: "CNXN", AUTH: "AUTH", OPEN: "OPEN", OKAY: "OKAY", CLSE: "CLSE", WRTE: "WRTE"}


def checksum(data: bytes) -> int:
    """protocol.txt's data_check: the byte sum of the payload (mod 2**32)."""
    return sum(data) & 0xFFFFFFFF


@dataclass(frozen=True)
class Message:
    """One transport message: command, two arguments and an optional payload."""

    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return COMMANDS.get(self.command, f"0x{self.command:08x}")

    def pack(self) -> bytes:
        head = HEADER.pack(
            self.command,
            self.arg0,
            self.arg1,
            len(self.data),
            checksum(self.data),
            self.command ^ 0xFFFFFFFF,
        )
        return head + self.data


class ProtocolError(Exception):
    """A malformed header or payload: protocol.txt says to close the connection."""


def unpack_header(raw: bytes) -> tuple[int, int, int, int, int]:
    """(command, arg0, arg1, length, check) of a 24-byte header, validating command and magic."""
    command, arg0, arg1, length, check, magic = HEADER.unpack(raw)
    if command not in COMMANDS:
        raise ProtocolError(f"unknown command 0x{command:08x}")
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError("bad magic")
    if length > MAX_PAYLOAD * 4:
        raise ProtocolError(f"payload of {length} bytes is too large")
    return command, arg0, arg1, length, check


def sync_packet(name: bytes, payload: bytes = b"", length: int | None = None) -> bytes:
    """A sync-protocol packet: 4-byte id, u32 length (or a value such as mtime), payload."""
    n = len(payload) if length is None else length
    return SYNC_HEADER.pack(cmd_id(name), n) + payload
