"""The system-`adb` transport, with a fake `adb` executable that relays to the stand-in."""

import os
import stat
import sys
import textwrap

import pytest

from hwnas.device_profiler.adb import AdbBackend, connect, find_devices
from hwnas.device_profiler.adb.transport import AdbBinaryTransport
from hwnas.errors import HwnasError
from hwnas.testing.adb_standin import AdbStandin

pytestmark = pytest.mark.device

SERIAL = "FA6AB0300001"

# argv in, one adb-shell call to the stand-in out: proves hwnas passes argument lists.
FAKE_ADB = textwrap.dedent(f"""\
    #!{sys.executable}
    import json, os, sys
    from adb_shell.adb_device import AdbDeviceTcp
    log = os.environ["FAKE_ADB_LOG"]
    with open(log, "a") as f:
        f.write(json.dumps(sys.argv[1:]) + "\\n")
    args = sys.argv[1:]
    if args[:2] == ["devices", "-l"]:
        print("List of devices attached")
        print("{SERIAL}           device usb:1-1 product:sailfish model:Pixel device:sailfish")
        sys.exit(0)
    if args[:2] != ["-s", "{SERIAL}"]:
        print("error: device not found", file=sys.stderr)
        sys.exit(1)
    d = AdbDeviceTcp("127.0.0.1", int(os.environ["FAKE_ADB_PORT"]), default_transport_timeout_s=5)
    d.connect(transport_timeout_s=5)
    if args[2] == "shell":
        assert len(args) == 4, args  # one pre-quoted command string
        sys.stdout.write(d.shell(args[3], read_timeout_s=60))
    elif args[2] == "push":
        d.push(args[3], args[4])
        print(f"{{args[3]}}: 1 file pushed")
    d.close()
""")


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(FAKE_ADB)
    adb.chmod(adb.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_LOG", str(tmp_path / "adb.log"))
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    monkeypatch.delenv("ADB", raising=False)
    return tmp_path / "adb.log"


def test_the_only_listed_device_is_chosen_and_measured(fake_adb, tmp_path, monkeypatch):
    binary = tmp_path / "benchmark_model"
    binary.write_text("stand-in")
    with AdbStandin() as s:
        monkeypatch.setenv("FAKE_ADB_PORT", str(s.port))
        t = connect(None)
        assert isinstance(t, AdbBinaryTransport) and t.serial == SERIAL
        assert t.shell("getprop ro.product.model").strip() == "Pixel"
        with AdbBackend(benchmark_binary=binary, transport=t) as b:
            assert b.device.soc == "msm8996" and b.mask == "c" and b.transport.via == "adb"
            hostile = tmp_path / "$(reboot) x.tflite"
            hostile.write_bytes(b"not a model")
            with pytest.raises(
                HwnasError,
                match=r"^\$\(reboot\) x\.tflite: benchmark_model could "
                r"not load the model",
            ):
                b.measure(hostile, warmup=1, runs=1, repeats=1)
        assert s.phone.syntax == []
        (ref,) = find_devices()
        assert (ref.serial, ref.via, ref.model, ref.android) == (SERIAL, "adb", "Pixel", "10")
    log = fake_adb.read_text()
    assert '["-s", "FA6AB0300001", "push"' in log
