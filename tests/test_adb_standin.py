"""The ADB stand-in speaks the wire protocol to the real adb-shell client (TCP on 127.0.0.1)."""

import io
import socket
import struct

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.exceptions import DeviceAuthError

from hwnas.device_profiler.adb.keys import signers
from hwnas.device_profiler.adb.transport import AdbConnectionLost, AdbShellTransport
from hwnas.testing.adb_standin import AdbStandin, PhoneConfig, wire

pytestmark = pytest.mark.device


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _client(port, keys=None):
    d = AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=5)
    d.connect(rsa_keys=keys, transport_timeout_s=5, auth_timeout_s=5, read_timeout_s=5)
    return d


def test_listens_on_loopback_only_with_ephemeral_port():
    with AdbStandin() as s:
        assert s.serial.startswith("127.0.0.1:") and s.port > 0
        assert s._sock.getsockname()[0] == "127.0.0.1"


def test_connect_shell_getprop_and_cpufreq():
    with AdbStandin() as s:
        d = _client(s.port)
        assert d.shell("getprop ro.product.model").strip() == "Pixel"
        assert "[ro.board.platform]: [msm8996]" in d.shell("getprop")
        freqs = d.shell("cat /sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_max_freq").split()
        assert freqs == ["1593600", "1593600", "2150400", "2150400"]
        assert "Qualcomm" in d.shell("cat /proc/cpuinfo")
        assert d.shell("echo 'a  b'; false_cmd; echo $?").split("\r\n")[0] == "a  b"
        d.close()
    assert s.errors == []


def test_auth_token_signature_and_public_key(cache):
    keys = signers()
    assert (cache / "adbkey").is_file() and (cache / "adbkey.pub").is_file()
    with AdbStandin(require_auth=True) as s:
        with pytest.raises(DeviceAuthError):
            _client(s.port)
        d = _client(s.port, keys)  # unknown key: signature refused, public key accepted
        assert len(s.authorized_keys) == 1
        d.close()
        d = _client(s.port, keys)  # known key: the signature alone is enough
        assert len(s.authorized_keys) == 1
        assert d.shell("getprop ro.product.manufacturer").strip() == "Google"
        d.close()


def test_push_via_sync_then_stat(tmp_path):
    payload = bytes(range(256)) * 1000  # several DATA chunks and WRTE packets
    with AdbStandin() as s:
        d = _client(s.port)
        d.push(io.BytesIO(payload), "/data/local/tmp/blob.bin")
        mode, size, _ = d.stat("/data/local/tmp/blob.bin")
        assert size == len(payload) and mode & 0o170000 == 0o100000
        assert s.phone.local("/data/local/tmp/blob.bin").read_bytes() == payload
        assert d.stat("/data/local/tmp/missing") == (0, 0, 0)
        d.close()


def test_push_outside_tmp_fails_like_a_phone():
    from adb_shell.exceptions import AdbCommandFailureException, PushFailedError

    with AdbStandin() as s:
        d = _client(s.port)
        with pytest.raises((PushFailedError, AdbCommandFailureException)):
            d.push(io.BytesIO(b"x"), "/system/bin/evil")
        d.close()


def test_hostile_name_survives_push_and_quoted_shell():
    import shlex

    name = "/data/local/tmp/a; reboot; $(reboot) `reboot`.tflite"
    with AdbStandin() as s:
        d = _client(s.port)
        d.push(io.BytesIO(b"model"), name)
        assert d.shell(f"ls {shlex.quote(name)}").strip() == name
        d.shell(f"rm -f {shlex.quote(name)}")
        assert s.phone.syntax == []
        assert all(argv[0] != "reboot" for argv in s.phone.executed)
        # Negative control: the same line unquoted IS caught as injection.
        d.shell(f"ls {name}")
        assert "$( ) command substitution" in s.phone.syntax
        assert ["reboot"] in s.phone.executed
        d.close()


def test_rejects_bad_magic_and_stays_bounded():
    with AdbStandin(max_connections=2, idle_s=5) as s:
        bad = struct.pack("<6I", wire.CNXN, wire.A_VERSION, 4096, 0, 0, 0)  # wrong magic
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(bad)
            assert c.recv(24) == b""  # protocol.txt: close on an invalid header
        d = _client(s.port)
        d.close()
        s._thread.join(timeout=5)
        assert not s._thread.is_alive()  # served its two connections and stopped
        assert s.connections == 2 and "bad magic" in s.errors[0]


def test_drop_after_n_shell_commands_happens_once(cache):
    with AdbStandin(PhoneConfig(drop_after_shell=1)) as s:
        t = AdbShellTransport(s.serial, timeout_s=5)
        assert t.shell("echo one").strip() == "one"
        with pytest.raises(AdbConnectionLost, match=r"^lost the ADB connection to 127\.0\.0\.1:"):
            t.shell("echo two", timeout_s=30)  # fails at once, not after the read timeout
        t.close()
        t = AdbShellTransport(s.serial, timeout_s=5)
        assert t.shell("echo three").strip() == "three"
        t.close()
        assert s.dropped == 1
