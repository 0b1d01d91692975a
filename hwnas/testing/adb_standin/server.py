"""ADB daemon stand-in on 127.0.0.1: CNXN/AUTH handshake, shell: and sync: services, bounded."""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from . import wire
from .phone import FakePhone, PhoneConfig
from .wire import Message

_BANNER = b"device::ro.product.name=sailfish;ro.product.model=Pixel;ro.product.device=sailfish;\0"


class _Dropped(Exception):
    """Fault injection: the connection goes away mid-profile."""


class _Closed(Exception):
    """The peer closed between messages, or the stand-in is stopping: a normal end."""


@dataclass
class _Stream:
    local_id: int
    remote_id: int
    service: str
    outbox: deque = field(default_factory=deque)
    awaiting_okay: bool = False
    close_when_drained: bool = False
    sync_buf: bytearray = field(default_factory=bytearray)
    send: dict | None = None  # an in-progress sync SEND: path, mode, data


class AdbStandin:
    """A Pixel-like phone answering the ADB wire protocol; use as a context manager.

    Bounded: serves at most ``max_connections`` connections, stops after ``idle_s`` seconds
    without traffic, after ``lifetime_s`` in total, and on context exit. With
    ``require_auth`` it demands AUTH (token, signature, then RSA public key) like a real adbd.
    """

    def __init__(
        self,
        config: PhoneConfig | None = None,
        *,
        require_auth: bool = False,
        max_connections: int = 64,
        idle_s: float = 60.0,
        lifetime_s: float = 900.0,
    ):
        self.phone = FakePhone(config or PhoneConfig())
        self.require_auth = require_auth
        self.max_connections = max_connections
        self.idle_s = idle_s
        self.lifetime_s = lifetime_s
        self.authorized_keys: list[bytes] = []
        self.connections = 0
        self.shell_count = 0
        self.dropped = 0
        self.errors: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self._port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._serve, name="adb-standin", daemon=True)
        self._dropped_once = False

    @property
    def port(self) -> int:
        return self._port

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "AdbStandin":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()
        self.phone.close()

    def __enter__(self) -> "AdbStandin":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- accept loop -----------------------------------------------------------------------
    def _serve(self) -> None:
        born = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now - self._last > self.idle_s or now - born > self.lifetime_s:
                break
            if self.connections >= self.max_connections:
                break
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:  # socket.timeout is its alias
                continue
            except OSError:
                break
            self.connections += 1
            with conn:
                try:
                    _Connection(self, conn).run()
                except (_Dropped, _Closed):
                    pass
                except (OSError, wire.ProtocolError, struct.error) as e:
                    self.errors.append(f"{type(e).__name__}: {e}")
            self._last = time.monotonic()

    def _touch(self) -> None:
        self._last = time.monotonic()

    def count_shell(self) -> None:
        """Fault injection point: called before each shell command runs."""
        n = self.phone.config.drop_after_shell
        if n is not None and not self._dropped_once and self.shell_count >= n:
            self._dropped_once = True
            self.dropped += 1
            raise _Dropped()
        self.shell_count += 1


class _Connection:
    """One TCP connection: messages in, streams dispatched, one message at a time."""

    def __init__(self, server: AdbStandin, conn: socket.socket):
        self.server = server
        self.conn = conn
        self.conn.settimeout(1.0)
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.maxdata = wire.MAX_PAYLOAD
        self.online = False
        self.token = b""

    def run(self) -> None:
        while not self.server._stop.is_set():
            msg = self._recv()
            if msg is None:
                if time.monotonic() - self.server._last > self.server.idle_s:
                    return
                continue
            self.server._touch()
            if not self._handle(msg):
                return

    # -- framing ---------------------------------------------------------------------------
    def _read_exact(self, n: int, first: bool) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.conn.recv(n - len(buf))
            except TimeoutError:  # socket.timeout is its alias
                if first and not buf:
                    return None
                if self.server._stop.is_set():
                    raise _Closed()
                continue
            if not chunk:
                if first and not buf:
                    raise _Closed()
                raise OSError("peer closed mid-message")
            if hasattr(socket, "TCP_QUICKACK"):  # clients write header and payload separately
                self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            buf += chunk
        return bytes(buf)

    def _recv(self) -> Message | None:
        head = self._read_exact(wire.HEADER.size, first=True)
        if head is None:
            return None
        command, arg0, arg1, length, check = wire.unpack_header(head)
        data = self._read_exact(length, first=False) if length else b""
        if length and wire.checksum(data) != check:
            raise wire.ProtocolError("payload checksum mismatch")
        return Message(command, arg0, arg1, data)

    def _send(self, msg: Message) -> None:
        self.conn.sendall(msg.pack())

    # -- dispatch --------------------------------------------------------------------------
    def _handle(self, msg: Message) -> bool:
        if msg.command == wire.CNXN:
            self.maxdata = min(msg.arg1 or wire.MAX_PAYLOAD, wire.MAX_PAYLOAD)
            if self.server.require_auth:
                self._send_token()
            else:
                self._connected()
            return True
        if msg.command == wire.AUTH:
            return self._auth(msg)
        if not self.online:
            return False  # protocol.txt: nothing but CNXN/AUTH before the connection is up
        if msg.command == wire.OPEN:
            self._open(msg)
        elif msg.command == wire.OKAY:
            self._okay(msg)
        elif msg.command == wire.WRTE:
            self._write(msg)
        elif msg.command == wire.CLSE:
            s = self.streams.pop(msg.arg1, None)
            if s is not None and not s.close_when_drained:
                self._send(Message(wire.CLSE, s.local_id, s.remote_id))
        return True

    def _connected(self) -> None:
        self.online = True
        self._send(Message(wire.CNXN, wire.A_VERSION, self.maxdata, _BANNER))

    def _send_token(self) -> None:
        self.token = os.urandom(20)
        self._send(Message(wire.AUTH, wire.AUTH_TOKEN, 0, self.token))

    def _auth(self, msg: Message) -> bool:
        if msg.arg0 == wire.AUTH_SIGNATURE:
            if any(_verify(k, self.token, msg.data) for k in self.server.authorized_keys):
                self._connected()
            else:
                self._send_token()
            return True
        if msg.arg0 == wire.AUTH_RSAPUBLICKEY:
            # A real phone asks its user; the stand-in accepts and remembers the key.
            key = msg.data.rstrip(b"\0")
            _public_numbers(key)  # refuses malformed keys
            self.server.authorized_keys.append(key)
            self._connected()
            return True
        return False

    def _open(self, msg: Message) -> None:
        service = msg.data.rstrip(b"\0").decode("utf-8", "replace")
        sid = self.next_id
        self.next_id += 1
        s = _Stream(sid, msg.arg0, service)
        if not (service.startswith("shell:") or service == "sync:"):
            self._send(Message(wire.CLSE, 0, msg.arg0))
            return
        self.streams[sid] = s
        self._send(Message(wire.OKAY, sid, s.remote_id))
        if service.startswith("shell:"):
            self.server.count_shell()
            out = self.server.phone.shell(service[len("shell:") :]).encode()
            self._queue(s, out)
            s.close_when_drained = True
            self._pump(s)

    def _queue(self, s: _Stream, data: bytes) -> None:
        for i in range(0, len(data), self.maxdata):
            s.outbox.append(data[i : i + self.maxdata])

    def _pump(self, s: _Stream) -> None:
        """Send the next WRTE once the peer has acknowledged the previous one."""
        if s.awaiting_okay:
            return
        if s.outbox:
            s.awaiting_okay = True
            self._send(Message(wire.WRTE, s.local_id, s.remote_id, s.outbox.popleft()))
        elif s.close_when_drained:
            self._send(Message(wire.CLSE, s.local_id, s.remote_id))

    def _okay(self, msg: Message) -> None:
        s = self.streams.get(msg.arg1)
        if s is not None:
            s.awaiting_okay = False
            self._pump(s)

    def _write(self, msg: Message) -> None:
        s = self.streams.get(msg.arg1)
        if s is None:
            self._send(Message(wire.CLSE, 0, msg.arg0))
            return
        self._send(Message(wire.OKAY, s.local_id, s.remote_id))
        if s.service == "sync:":
            s.sync_buf += msg.data
            self._sync(s)

    # -- sync service (SYNC.TXT) -------------------------------------------------------------
    def _sync(self, s: _Stream) -> None:
        buf = s.sync_buf
        while len(buf) >= wire.SYNC_HEADER.size:
            rid, n = wire.SYNC_HEADER.unpack_from(buf)
            name = rid.to_bytes(4, "little")
            has_payload = name not in (b"DONE", b"QUIT")
            if has_payload and len(buf) < 8 + n:
                return
            payload = bytes(buf[8 : 8 + n]) if has_payload else b""
            del buf[: 8 + (n if has_payload else 0)]
            self._sync_request(s, name, n, payload)

    def _sync_request(self, s: _Stream, name: bytes, n: int, payload: bytes) -> None:
        phone = self.server.phone
        if name == b"STAT":
            mode, size, mtime = phone.stat(payload.decode("utf-8", "replace"))
            reply = struct.pack("<4I", wire.cmd_id(b"STAT"), mode, size, mtime)
        elif name == b"SEND":
            path, _, mode = payload.decode("utf-8", "replace").rpartition(",")
            s.send = {"path": path, "mode": int(mode or "0"), "data": bytearray()}
            return
        elif name == b"DATA" and s.send is not None:
            s.send["data"] += payload
            return
        elif name == b"DONE" and s.send is not None:
            err = phone.receive(s.send["path"], bytes(s.send["data"]), s.send["mode"])
            s.send = None
            reply = (
                wire.sync_packet(b"FAIL", err.encode())
                if err
                else wire.sync_packet(b"OKAY", length=0)
            )
        elif name == b"QUIT":
            s.close_when_drained = True
            self._pump(s)
            return
        else:
            reply = wire.sync_packet(b"FAIL", f"unsupported sync request {name!r}".encode())
        self._queue(s, reply)
        self._pump(s)


def _public_numbers(key: bytes) -> tuple[int, int]:
    """(modulus, exponent) of an adb public key: base64 of the Android RSAPublicKey struct."""
    blob = base64.b64decode(key.split()[0])
    words, _n0inv = struct.unpack_from("<2I", blob)
    size = words * 4
    modulus = int.from_bytes(blob[8 : 8 + size], "little")
    (exponent,) = struct.unpack_from("<I", blob, 8 + 2 * size)
    return modulus, exponent


def _verify(key: bytes, token: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the PKCS#1 v1.5 SHA-1 signature of ``token`` (as a digest)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

    n, e = _public_numbers(key)
    pub = rsa.RSAPublicNumbers(e, n).public_key()
    try:
        pub.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        return False
    return True
