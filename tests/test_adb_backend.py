"""The adb backend end to end against the stand-in phone: device reading, measuring, failures."""

import os
from pathlib import Path

import pytest

from hwnas.device_profiler.adb import AdbBackend, AdbConnectionLost, connect, find_devices
from hwnas.errors import HwnasError
from hwnas.testing.adb_standin import AdbStandin, PhoneConfig

pytestmark = pytest.mark.device

HOSTILE = [
    "a; reboot;.tflite",
    "$(reboot).tflite",
    "`reboot`.tflite",
    "x'; reboot; echo '.tflite",
    'q" && reboot && ".tflite',
    "-rf --help.tflite",
]


def _tiny_int8_tflite(path: Path) -> Path:
    """A small int8 conv block, NHWC int8 I/O, converted with litert-torch (PT2E)."""
    import torch

    torch.set_num_threads(1)
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import (
        PT2EQuantizer,
        get_symmetric_quantization_config,
    )
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU6()).eval()
    x = torch.randn(1, 8, 8, 8)
    q = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    )
    prepared = prepare_pt2e(torch.export.export(m, (x,)).module(), q)
    for _ in range(4):
        prepared(torch.randn(1, 8, 8, 8))
    qm = convert_pt2e(prepared, fold_quantize=False)
    litert_torch.convert(qm, (x,), quant_config=QuantConfig(pt2e_quantizer=q)).export(str(path))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return _tiny_int8_tflite(tmp_path_factory.mktemp("adb") / "ir_k3_e1_8x8.tflite")


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    """Own ADB key folder; no system adb or ANDROID_SERIAL leaking in."""
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    monkeypatch.delenv("ADB", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-adb-here"))


@pytest.fixture
def binary(tmp_path) -> Path:
    p = tmp_path / "benchmark_model"
    p.write_bytes(b"\x7fELF stand-in for the Android binary\n")
    return p


def _remote_files(phone) -> list[str]:
    return sorted(p.name for p in phone.local("/data/local/tmp").iterdir())


def test_reads_the_pixel_and_pins_the_big_cores(binary):
    with (
        AdbStandin(require_auth=True) as s,
        AdbBackend(serial=s.serial, benchmark_binary=binary) as b,
    ):
        d = b.device
        assert (d.model, d.manufacturer, d.android, d.soc, d.abi) == (
            "Pixel",
            "Google",
            "10",
            "msm8996",
            "arm64-v8a",
        )
        assert d.max_freq_khz == (1593600, 1593600, 2150400, 2150400)
        assert b.cores == (2, 3) and b.mask == "c"
        prov = b.provenance()
        assert prov["device"]["model"] == "Pixel" and prov["core_mask"] == "c"
        assert prov["governor"] == "schedutil" and prov["transport"] == "tcp"
        assert len(prov["benchmark_binary_sha256"]) == 64
        assert _remote_files(s.phone) == ["benchmark_model"]
        assert os.access(s.phone.local("/data/local/tmp/benchmark_model"), os.X_OK)


def test_cores_override_and_thread_check(binary):
    with AdbStandin() as s:
        with AdbBackend(serial=s.serial, benchmark_binary=binary, cores="2") as b:
            assert b.mask == "4"
        with pytest.raises(
            HwnasError,
            match=r"^--threads 2 exceeds the 1 pinned core\(s\) \[3\]; "
            r"lower --threads or widen --cores$",
        ):
            AdbBackend(serial=s.serial, benchmark_binary=binary, cores="3", threads=2)
        with pytest.raises(
            HwnasError,
            match=r"^--cores '7' names core 7 but the phone has cores "
            r"0-3$",
        ):
            AdbBackend(serial=s.serial, benchmark_binary=binary, cores="7")


@pytest.mark.parametrize("variant", ["modern", "v2019", "legacy", "all_same"])
def test_measures_a_real_int8_tflite_in_each_output_format(variant, model, binary, caplog):
    with (
        AdbStandin(PhoneConfig(variant=variant)) as s,
        AdbBackend(serial=s.serial, benchmark_binary=binary) as b,
    ):
        samples = b.measure(model, warmup=3, runs=20, repeats=3)
        assert len(samples.us) == 3 and all(v > 0 for v in samples.us)
        assert s.phone.masks == ["c", "c", "c"]
        runs = [a for a in s.phone.executed if a[:1] == ["taskset"]]
        assert runs[0][2:] == [
            "/data/local/tmp/benchmark_model",
            f"--graph=/data/local/tmp/hwnas_{model.name}",
            "--num_threads=1",
            "--warmup_runs=3",
            "--num_runs=20",
            "--use_xnnpack=true",
            "--min_secs=0",
            "--warmup_min_secs=0",
        ]
        assert b._log.invocations[-1].count == 20
        assert _remote_files(s.phone) == ["benchmark_model"]  # the model was removed
        prov = b.provenance()  # the flags passed, and what the binary made of them
        assert prov["benchmark_flags"] == [
            "--num_threads=1",
            "--use_xnnpack=true",
            "--min_secs=0",
            "--warmup_min_secs=0",
        ]
        echoed = prov["benchmark_params"]
        assert "Graph" not in echoed  # a temporary file's name
        if variant == "legacy":  # an old build: no --warmup_min_secs, and it says so
            assert prov["benchmark_unconsumed_flags"] == ["--warmup_min_secs=0"]
            assert "Min warmup runs duration (seconds)" not in echoed
            warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
            assert len(warned) == 1 and "ignores --warmup_min_secs=0" in warned[0]  # once
        else:
            assert prov["benchmark_unconsumed_flags"] == []
            assert echoed["Min warmup runs duration (seconds)"] == "0"
        assert echoed["Num threads"] == "1" and echoed["Min num runs"] == "20"
        assert echoed["Use xnnpack"] == "1"


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_file_name_cannot_inject(name, model, binary, tmp_path):
    hostile = tmp_path / name
    hostile.write_bytes(model.read_bytes())
    with AdbStandin() as s, AdbBackend(serial=s.serial, benchmark_binary=binary) as b:
        samples = b.measure(hostile, warmup=1, runs=5, repeats=1)
        assert len(samples.us) == 1
        assert s.phone.syntax == []  # no unquoted shell syntax ever reached the phone
        assert not any(a[:1] == ["reboot"] for a in s.phone.executed)
        assert [a[:1] for a in s.phone.executed if a[:1] == ["rm"]] == [["rm"]]
        assert _remote_files(s.phone) == ["benchmark_model"]


def test_missing_binary_says_what_and_where(model):
    with AdbStandin() as s, pytest.raises(HwnasError) as e:
        AdbBackend(serial=s.serial)
    msg = str(e.value)
    assert msg.startswith(
        f"no benchmark_model on {s.serial} at /data/local/tmp/benchmark_model: "
        f"pass --benchmark-binary PATH; get LiteRT's Android benchmark tool"
    )
    assert "android_aarch64_benchmark_model" in msg and "--config=android_arm64" in msg
    assert "\n" not in msg


def test_binary_already_on_the_phone_is_used(model):
    with AdbStandin(PhoneConfig(preinstalled_binary=True)) as s, AdbBackend(serial=s.serial) as b:
        assert len(b.measure(model, warmup=1, runs=3, repeats=2).us) == 2


def test_benchmark_binary_path_must_exist(tmp_path):
    with pytest.raises(HwnasError, match=r"^--benchmark-binary .*nope is not a file; get LiteRT"):
        AdbBackend(serial="127.0.0.1:9", benchmark_binary=tmp_path / "nope")


def test_permission_denied(binary):
    with (
        AdbStandin(PhoneConfig(permission_denied=True)) as s,
        pytest.raises(
            HwnasError,
            match=r"^/data/local/tmp/benchmark_model on "
            r"127\.0\.0\.1:\d+: benchmark_model is not "
            r"executable \(permission denied\); run `adb "
            r"shell chmod 755",
        ),
    ):
        AdbBackend(serial=s.serial, benchmark_binary=binary)


def test_unloadable_model_names_the_block(binary, tmp_path):
    junk = tmp_path / "ir_k5_e6_junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    with AdbStandin() as s, AdbBackend(serial=s.serial, benchmark_binary=binary) as b:
        with pytest.raises(
            HwnasError,
            match=r"^ir_k5_e6_junk\.tflite: benchmark_model could not "
            r"load the model; check that the file is a valid",
        ):
            b.measure(junk, warmup=1, runs=2, repeats=1)
        assert _remote_files(s.phone) == ["benchmark_model"]


def test_dropped_connection_mid_measure_then_reconnect(model, binary):
    with AdbStandin(PhoneConfig(drop_after_shell=9)) as s:
        with AdbBackend(serial=s.serial, benchmark_binary=binary) as b:
            before = s.shell_count
            with pytest.raises(AdbConnectionLost, match=r"re-run with --resume$"):
                for _ in range(5):
                    b.measure(model, warmup=1, runs=2, repeats=2)
            assert s.shell_count > before
        with AdbBackend(serial=s.serial, benchmark_binary=binary) as b:
            assert len(b.measure(model, warmup=1, runs=2, repeats=2).us) == 2
        assert s.dropped == 1


def test_cooldown_waits_while_hot_and_is_bounded(binary):
    slept = []
    hot = PhoneConfig(thermal_c=(58.0, 52.0, 33.0), cool_per_read_c=2.0)  # battery, cpu, cpu
    with (
        AdbStandin(hot) as s,
        AdbBackend(
            serial=s.serial, benchmark_binary=binary, max_temp_c=45.0, cooldown_poll_s=0.0
        ) as b,
    ):
        b.cooldown(sleep=slept.append)
        assert len(slept) == 4  # 52 → 50 → 48 → 46 → 44: four waits
        assert b.hottest_c() <= 45.0  # the battery zone (58 °C at first) does not count
        assert b.provenance()["temperature_c"]["max"] == 58.0
    stuck = PhoneConfig(thermal_c=(30.0, 60.0))
    with (
        AdbStandin(stuck) as s,
        AdbBackend(
            serial=s.serial,
            benchmark_binary=binary,
            max_temp_c=45.0,
            cooldown_timeout_s=0.05,
            cooldown_poll_s=0.01,
        ) as b,
    ):
        assert 0.05 <= b.cooldown() < 2.0
        assert b.provenance()["cooldown_timeouts"] == 1


def test_no_device_is_one_clear_line():
    with pytest.raises(
        HwnasError,
        match=r"^no ADB device found: attach a phone with USB "
        r"debugging on \(or pass --serial HOST:PORT for adb "
        r"over TCP\)$",
    ):
        connect(None)


def test_unreachable_serial():
    with pytest.raises(HwnasError, match=r"^cannot connect to ADB device 127\.0\.0\.1:1: "):
        connect("127.0.0.1:1", timeout_s=2)
    with pytest.raises(HwnasError, match=r"^no ADB device with serial 'ZX1G22'"):
        connect("ZX1G22")


def test_find_devices_and_the_devices_command():
    import typer
    from typer.testing import CliRunner

    from hwnas.device_profiler.adb.cli import register

    with AdbStandin() as s:
        (d,) = find_devices([s.serial])
        assert (d.serial, d.via, d.model, d.soc, d.android) == (
            s.serial,
            "tcp",
            "Pixel",
            "msm8996",
            "10",
        )
        app = typer.Typer()
        register(app)
        app.command("noop")(lambda: None)  # keep typer in multi-command mode
        result = CliRunner().invoke(app, ["devices", "--serial", s.serial])
        assert result.exit_code == 0, result.output
        assert s.serial in result.output and "Pixel" in result.output
