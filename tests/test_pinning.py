"""Host measurements run pinned to fixed cores (os.sched_setaffinity), give the previous
cores back afterwards, record the pinned cores in the table, and `tables validate` checks
them (and the threads) against the table's."""

from __future__ import annotations

import json
import os
import threading

import pytest

from hwnas.cli import main
from hwnas.device_profiler import runner as runner_mod
from hwnas.device_profiler.backends import HostLiteRTBackend, HostOrtBackend, backend_settings
from hwnas.device_profiler.cores import available_cores, core_list, host_cores, parse_core_list
from hwnas.device_profiler.runner import ProfileConfig, profile_run
from hwnas.device_profiler.validate import ValidateConfig, table_backend
from hwnas.errors import HwnasError
from hwnas.latency import LatencyTable, synthetic_table
from hwnas.space import get_space
from spaces import tiny_space

AVAIL = available_cores()
pytestmark = pytest.mark.skipif(AVAIL is None, reason="this OS cannot pin (no sched_setaffinity)")
TWO = pytest.mark.skipif(AVAIL is not None and len(AVAIL) < 2, reason="needs 2 cores")
TINY = tiny_space("tiny-pin", depths=(1, 1), head_channels=16, ops=("ir_k3_e1", "skip"))
FAST = dict(
    warmup=1, runs=3, repeats=1, progress=False, min_seconds=0.0, passes=1, edges=False, calibrate=0
)


def affinity() -> frozenset:
    return frozenset(os.sched_getaffinity(0))


class Recording(HostOrtBackend):
    """Runs nothing: each timed call records the cores it ran on, and those of a thread it
    starts (the runtime's worker threads are started by the measuring thread too)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seen, self.thread_seen = [], []

    def _session(self, model_file):
        def run():
            self.seen.append(affinity())
            t = threading.Thread(target=lambda: self.thread_seen.append(affinity()))
            t.start()
            t.join()

        return run


@pytest.fixture
def model(tmp_path):
    p = tmp_path / "m.onnx"
    p.write_bytes(b"x")
    return p


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(runner_mod, "_adb_ready", lambda serial: False)


def test_measure_is_pinned_to_the_last_cores_by_default_and_restores(model):
    before = affinity()
    b = Recording(threads=1)
    assert b.cores == AVAIL[-1:]
    b.measure(model, warmup=1, runs=3, repeats=2)
    assert len(b.seen) == 8 and set(b.seen) == {frozenset(AVAIL[-1:])}
    assert set(b.thread_seen) == {frozenset(AVAIL[-1:])}
    assert affinity() == before
    prov = b.provenance()
    assert prov["cores"] == [AVAIL[-1]] and prov["cores_available"] == list(AVAIL)
    assert "sched_setaffinity" in prov["pinning"]


@TWO
def test_explicit_cores_and_restore_after_an_error(model):
    before = affinity()
    b = Recording(threads=1, cores=str(AVAIL[0]))
    b.measure(model, warmup=0, runs=2, repeats=1)
    assert set(b.seen) == {frozenset({AVAIL[0]})} and affinity() == before

    class Failing(Recording):
        def _session(self, model_file):
            raise HwnasError(f"failed on {sorted(os.sched_getaffinity(0))}")

    with pytest.raises(HwnasError, match=rf"failed on \[{AVAIL[0]}\]"):
        Failing(threads=1, cores=[AVAIL[0]]).measure(model, warmup=0, runs=1, repeats=1)
    assert affinity() == before
    two = Recording(threads=2)
    assert two.cores == AVAIL[-2:]
    two.measure(model, warmup=0, runs=1, repeats=1)
    assert set(two.seen) == {frozenset(AVAIL[-2:])}


def test_core_lists_and_their_errors():
    assert parse_core_list("0,2-3") == (0, 2, 3) and core_list((0, 1, 2, 5)) == "0-2,5"
    with pytest.raises(HwnasError, match=r"^--cores 'a' is not a core list"):
        host_cores("a", 1)
    with pytest.raises(
        HwnasError,
        match=r"core\(s\) 4096 are not among the cores this "
        r"process may run on",
    ):
        HostLiteRTBackend(cores="4096")
    with pytest.raises(
        HwnasError,
        match=rf"^--threads 2 exceeds the 1 pinned core\(s\) "
        rf"{AVAIL[0]}; lower --threads or widen --cores$",
    ):
        HostOrtBackend(threads=2, cores=str(AVAIL[0]))
    # more threads than this machine has cores: pinned to all of them
    assert host_cores(None, len(AVAIL) + 3) == AVAIL


def test_real_onnx_runtime_session_runs_pinned_and_profile_records_it(
    tmp_path, cache, monkeypatch, capsys
):
    seen = []
    original = HostOrtBackend._session

    def session(self, model_file):
        run = original(self, model_file)  # the real InferenceSession, created pinned
        return lambda: (seen.append(affinity()), run())

    monkeypatch.setattr(HostOrtBackend, "_session", session)
    before = affinity()
    out = tmp_path / "t.csv"
    r = profile_run(ProfileConfig(space=TINY, out=out, backend="host-ort", limit=2, **FAST))
    assert r.measured >= 1 and seen and set(seen) == {frozenset(AVAIL[-1:])}
    assert affinity() == before
    prov = LatencyTable.load(out).provenance
    assert prov["cores"] == [AVAIL[-1]] and prov["threads"] == 1
    with pytest.raises(SystemExit):
        main(["tables", "list", str(tmp_path)])
    assert f"1 (core {AVAIL[-1]})" in capsys.readouterr().out
    if len(AVAIL) > 1:  # continuing it on other cores would mix two settings in one table
        with pytest.raises(
            HwnasError,
            match=rf"pinned to cores {AVAIL[-1]}, this run pins "
            rf"{AVAIL[0]}; pass --cores {AVAIL[-1]}",
        ):
            profile_run(
                ProfileConfig(space=TINY, out=out, backend="host-ort", cores=str(AVAIL[0]), **FAST)
            )
    profile_run(
        ProfileConfig(
            space=TINY, out=out, backend="host-ort", cores=str(AVAIL[-1]), limit=1, **FAST
        )
    )


def test_phone_cores_do_not_pin_the_host_fallback(tmp_path, cache):
    out = tmp_path / "p.csv"
    profile_run(
        ProfileConfig(device="pixel1", space=TINY, out=out, cores="4096", limit=1, **FAST),
        log=lambda m: None,
    )
    assert LatencyTable.load(out).provenance["cores"] == [AVAIL[-1]]


def table_with(tmp_path, space=TINY, **prov) -> LatencyTable:
    t = synthetic_table(space)
    t.meta["provenance"] = {
        "device": "host",
        "backend": "host-ort",
        "threads": 1,
        "precision": "int8",
        "host_cores": 64,
        **prov,
    }
    t.save(tmp_path / "t.csv")
    return LatencyTable.load(tmp_path / "t.csv")


def test_validate_uses_the_tables_cores_and_threads(tmp_path):
    lines = []
    t = table_with(tmp_path, cores=[AVAIL[0]])
    b = table_backend(t, ValidateConfig(table=t.path), lines.append)
    assert b.cores == (AVAIL[0],) and lines == []
    assert backend_settings(t.provenance)["cores"] == (AVAIL[0],)  # search and export too
    with pytest.raises(
        HwnasError,
        match=r"^\S*t.csv was measured with 1 thread\(s\), --threads "
        r"2 would time the networks differently",
    ):
        table_backend(t, ValidateConfig(table=t.path, threads=2), lines.append)
    if len(AVAIL) > 1:
        with pytest.raises(
            HwnasError,
            match=rf"t.csv was measured pinned to cores "
            rf"{AVAIL[0]}, --cores {AVAIL[1]} would time",
        ):
            table_backend(t, ValidateConfig(table=t.path, cores=str(AVAIL[1])), lines.append)
    assert lines == []


def test_validate_warns_when_this_machine_lacks_the_tables_cores(tmp_path):
    lines = []
    t = table_with(tmp_path, cores=[63])  # measured on a 64-core machine
    assert "cores" not in backend_settings(t.provenance)
    b = table_backend(t, ValidateConfig(table=t.path), lines.append)
    assert b.cores == AVAIL[-1:]
    assert lines == [
        f"warning: t.csv was measured pinned to cores 63 (64 on its machine); "
        f"this one offers only {core_list(AVAIL)}: validating on cores "
        f"{AVAIL[-1]}, so the figures mix two settings"
    ]
    lines.clear()
    t = table_with(tmp_path)  # an older table: measured unpinned
    b = table_backend(t, ValidateConfig(table=t.path, cores=str(AVAIL[0])), lines.append)
    assert b.cores == (AVAIL[0],)
    assert lines == [
        f"note: t.csv records no pinned cores (measured unpinned); validating "
        f"pinned to cores {AVAIL[0]}"
    ]


def test_validate_cli_other_threads_is_one_line_and_writes_nothing(tmp_path, capsys):
    t = table_with(tmp_path, get_space("fbnet-small"), cores=[AVAIL[-1]])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(SystemExit) as e:
        main(["tables", "validate", str(t.path), "--threads", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: ") and "profile again with --threads 3" in err[0]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert json.loads((tmp_path / "t.json").read_text())["provenance"]["cores"] == [AVAIL[-1]]
