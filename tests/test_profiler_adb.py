"""Profiler over the ADB stand-in: a connection dropped mid-profile, then resume loses nothing."""

import pytest

from hwnas.device_profiler.blockmodels import is_analytic
from hwnas.device_profiler.adb import AdbConnectionLost
from hwnas.device_profiler.runner import ProfileConfig, profile_run
from hwnas.latency import KEY_COLUMNS, LatencyTable
from spaces import tiny_space

pytestmark = [pytest.mark.device, pytest.mark.export]

TINY = tiny_space("tiny-adb", depths=(1, 1), head_channels=16, width_multipliers=(1.0,))
FAST = dict(warmup=1, runs=3, repeats=2, progress=False, passes=1, calibrate=0)


@pytest.fixture
def env(phone_env):
    return phone_env


def _keys(table) -> list[tuple]:
    return sorted(map(tuple, table.keys()))


def test_dropped_connection_mid_profile_then_resume(tmp_path, env):
    from hwnas.testing.adb_standin import AdbStandin, PhoneConfig

    out = tmp_path / "px.csv"
    measured_keys = sum(1 for i in TINY.all_layer_infos() if not is_analytic(i))
    assert measured_keys >= 4
    with AdbStandin(PhoneConfig(drop_after_shell=25)) as s:
        cfg = ProfileConfig(
            device="pixel1", serial=s.serial, benchmark_binary=env, space=TINY, out=out, **FAST
        )
        with pytest.raises(AdbConnectionLost, match=r"^block .*re-run"):
            profile_run(cfg, log=lambda m: None)
        assert s.dropped == 1
        partial = LatencyTable.load(out)
        n_partial = len(partial.frame)
        assert 1 <= n_partial < len(TINY.all_keys())
        before = partial.frame.copy()
        lines = []
        r = profile_run(
            ProfileConfig(
                device="pixel1",
                serial=s.serial,
                benchmark_binary=env,
                space=TINY,
                out=out,
                resume=True,
                **FAST,
            ),
            log=lines.append,
        )
    assert lines == [] and r.backend == "adb" and r.skipped == n_partial
    table = LatencyTable.load(out)
    assert _keys(table) == sorted(TINY.all_keys())
    assert not table.frame.duplicated(KEY_COLUMNS).any()
    merged = before.merge(table.frame, on=KEY_COLUMNS, suffixes=("_old", "_new"))
    assert len(merged) == n_partial
    assert (merged["median_us_old"] == merged["median_us_new"]).all()  # old rows kept as-is
    prov = table.provenance
    assert prov["backend"] == "adb" and prov["device"]["model"] == "Pixel"
    assert prov["threads"] == 1 and "temperature_c" in prov
