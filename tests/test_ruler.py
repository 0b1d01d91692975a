"""The ruler: every host timing is taken in step with a fixed network and scaled to that
network's time when the table began, so a table, its validation and an export's closed loop
share one unit while the machine's speed drifts."""

import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from hwnas.device_profiler import runner as runner_mod
from hwnas.device_profiler.backends import (
    ALTERNATION,
    Alternation,
    HostOrtBackend,
    backend_from_provenance,
    measure_file,
)
from hwnas.device_profiler.runner import ProfileConfig, profile_run
from hwnas.errors import HwnasError
from hwnas.latency import LatencyTable
from hwnas.space import reference_arch
from spaces import tiny_space

SPACE = tiny_space(
    "tiny-ruler",
    depths=(2, 2),  # a residual layer in each stage: enough stackable keys for the edges
    head_channels=16,
    ops=("ir_k3_e1", "ir_k3_e6", "skip"),  # the MobileNetV2 reference fits: it is the ruler
    width_multipliers=(1.0,),
    params={"ruler": 1},
)
FAST = dict(
    warmup=1, runs=5, repeats=2, progress=False, min_seconds=0.0, passes=1, edges=False, calibrate=0
)


class Clockwork(HostOrtBackend):
    """The real timing loop over two stand-in models that busy-wait a fixed amount of work
    at the machine's current ``speed`` (2.0: everything takes twice as long)."""

    # short enough that a whole visit to each fits in one scheduler slice on a busy core
    COST_S: ClassVar[dict] = {"ruler": 80e-6, "model": 20e-6}

    def __init__(self, **kw):
        super().__init__(**kw)
        self.speed = 1.0

    def _session(self, model_file: Path):
        cost = self.COST_S[model_file.stem]

        def run():
            end = time.perf_counter() + cost * self.speed
            while time.perf_counter() < end:
                pass

        return run


@pytest.fixture
def models(tmp_path):
    for name in Clockwork.COST_S:
        (tmp_path / f"{name}.onnx").write_bytes(b"stand-in")
    return tmp_path / "ruler.onnx", tmp_path / "model.onnx"


def median_us(backend, path) -> float:
    return backend.measure(path, warmup=2, runs=40, repeats=3).stats()["median_us"]


def test_a_machine_twice_as_slow_doubles_raw_timings_but_not_ruled_ones(models):
    ruler, model = models
    raw = Clockwork()
    fast = median_us(raw, model)
    raw.speed = 2.0
    assert median_us(raw, model) / fast > 1.6  # what a table measured in a slow minute gets

    ruled = Clockwork()
    ruled.use_ruler(ruler, 80.0)  # the unit: the ruler's time when the table began
    fast = median_us(ruled, model)
    ruled.speed = 2.0
    slow = ruled.measure(model, warmup=2, runs=40, repeats=3)
    assert slow.stats()["median_us"] == pytest.approx(fast, rel=0.25)
    assert fast == pytest.approx(20.0, rel=0.3)  # 20 µs of work at the unit's speed
    assert sorted(slow.ruler_factors)[1] == pytest.approx(0.5, rel=0.25)  # median repeat


class Coldwork(Clockwork):
    """Clockwork whose models run slow right after the other model ran, as on a real cache:
    the runs after a switch take 3×, 2×, 1.5× the warm time, then 1×.  ``twin`` is the
    ruler's own network in another session."""

    COST_S: ClassVar[dict] = {"ruler": 200e-6, "twin": 200e-6}
    SLOW: ClassVar[tuple] = (3.0, 2.0, 1.5)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.last, self.streak = None, 0

    def _session(self, model_file: Path):
        warm = super()._session(model_file)

        def run():
            self.streak = self.streak + 1 if self.last == model_file else 0
            self.last = model_file
            slow = self.SLOW[self.streak] if self.streak < len(self.SLOW) else 1.0
            end = time.perf_counter() + self.COST_S[model_file.stem] * (slow - 1.0)
            while time.perf_counter() < end:
                pass
            warm()

        return run


def test_the_ruler_timed_against_its_own_network_is_the_unit_despite_cold_runs(tmp_path):
    for name in Coldwork.COST_S:
        (tmp_path / f"{name}.onnx").write_bytes(b"stand-in")
    ruler, twin = tmp_path / "ruler.onnx", tmp_path / "twin.onnx"
    backend = Coldwork()
    backend.use_ruler(ruler, 200.0)
    assert backend.alternation == ALTERNATION and ALTERNATION.cold >= 3
    assert median_us(backend, twin) == pytest.approx(200.0, rel=0.1)
    # the first scheme untimed one run after each switch: its ruler ran cold and a whole
    # network came out well under the unit (measured on host-ort: 9-15% under)
    backend.use_ruler(ruler, 200.0, Alternation.of({}))
    assert backend.alternation == Alternation(every=8, ruler_runs=2, cold=1)
    assert median_us(backend, twin) < 0.85 * 200.0


def test_a_table_takes_its_unit_over_its_repeats_so_its_start_does_not_matter(models):
    """This VM flips between two speeds ~6% apart every few tens of seconds; a unit taken in
    the few seconds at a table's start caught either, and two fresh tables differed by it.
    Taken again over every repeat the table was timed in (``refine_unit``), two tables that
    began in different states agree, and every row is rescaled with the unit."""
    from hwnas.device_profiler.ruler import refine_unit

    ruler, model = models
    medians = []
    for start in (1.0, 1.15):  # the state the machine was in when each table began
        backend = Clockwork()
        record = {"unit_us": 80.0 * start, "windows": 150}
        backend.use_ruler(ruler, record["unit_us"])
        timed = []
        for speed in (1.15, 1.0, 1.15, 1.0, 1.0, 1.15) * 2:  # both states while timing
            backend.speed = speed
            timed.append(backend.measure(model, warmup=2, runs=40, repeats=1).stats())
        rows = [{**s, "analytic": False} for s in timed] + [{"median_us": 0.0, "analytic": True}]
        before = float(np.median([r["median_us"] for r in rows[:-1]]))
        factor = refine_unit(record, backend, rows, log=lambda m: None)
        after = float(np.median([r["median_us"] for r in rows[:-1]]))
        assert after == pytest.approx(before * factor, abs=1e-3) and rows[-1]["median_us"] == 0.0
        assert record["unit_start_us"] == 80.0 * start and backend.ruler[1] == record["unit_us"]
        assert record["unit_us"] == pytest.approx(80.0, rel=0.1)  # the fast state's ruler
        medians.append((before, after))
    (before_a, after_a), (before_b, after_b) = medians
    assert before_b / before_a == pytest.approx(1.15, rel=0.07)  # the start state's unit
    assert after_b / after_a == pytest.approx(1.0, rel=0.05)


def test_a_ruler_needs_a_positive_unit(models):
    with pytest.raises(HwnasError, match="positive"):
        Clockwork().use_ruler(models[0], 0.0)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(runner_mod, "_adb_ready", lambda serial: False)
    return tmp_path / "cache"


def test_a_table_records_its_ruler_and_every_later_measurement_uses_it(tmp_path, cache):
    out = tmp_path / "t.csv"
    keys = tuple(i.key for i in SPACE.all_layer_infos())
    cfg = ProfileConfig(space=SPACE, backend="host-ort", out=out, limit=3, **FAST)
    first = profile_run(cfg, log=lambda m: None)
    ruler = LatencyTable.load(out).provenance["ruler"]
    assert ruler["choices"] == list(reference_arch(SPACE, "mobilenetv2").choices)
    assert 0 < ruler["unit_us"] <= ruler["p10_us"] <= ruler["median_us"] <= ruler["p90_us"]
    assert ruler["alternation"] == ALTERNATION.record()
    assert first.ruler == ruler

    # resumed, even with --no-ruler: the rest of the table is timed in the same unit
    backend = HostOrtBackend()
    rest = ProfileConfig(space=SPACE, backend="host-ort", out=out, ruler=False, **FAST)
    profile_run(rest, backend=backend, log=print)
    assert backend.ruler is not None and backend.ruler[1] == ruler["unit_us"]
    table = LatencyTable.load(out)
    assert len(table.frame) == len(set(keys))
    assert table.provenance["ruler"] == ruler

    # validation and export build the table's backend from its provenance: same ruler, unit
    backend = backend_from_provenance(table.provenance, space=SPACE)
    assert backend.ruler is not None and backend.ruler[1] == ruler["unit_us"]
    assert backend.alternation == ALTERNATION
    timed = measure_file(backend, backend.ruler[0], warmup=2, runs=10, repeats=2)
    assert timed["ruler_factor"] > 0
    # the ruler timed against itself is the unit, whatever the machine's speed
    assert timed["median_ms"] * 1000 == pytest.approx(ruler["unit_us"], rel=0.5)
    other = backend_from_provenance(table.provenance, "host-litert", space=SPACE)
    assert other.ruler is None  # a unit is one backend's time
    assert backend_from_provenance(table.provenance, space=SPACE, ruler=False).ruler is None


def test_without_a_ruler_a_table_and_its_backend_time_the_raw_clock(tmp_path, cache):
    out = tmp_path / "t.csv"
    cfg = ProfileConfig(space=SPACE, backend="host-ort", out=out, ruler=False, **FAST)
    assert profile_run(cfg, log=lambda m: None).ruler is None
    table = LatencyTable.load(out)
    assert "ruler" not in table.provenance
    assert backend_from_provenance(table.provenance, space=SPACE).ruler is None
    # a table begun without one is finished without one
    table.frame.iloc[:-2].to_csv(out, index=False)
    profile_run(ProfileConfig(space=SPACE, backend="host-ort", out=out, **FAST), log=print)
    assert "ruler" not in LatencyTable.load(out).provenance


def test_a_ruler_of_an_unknown_space_is_one_line(tmp_path, cache):
    out = tmp_path / "t.csv"
    profile_run(ProfileConfig(space=SPACE, backend="host-ort", out=out, limit=1, **FAST))
    with pytest.raises(HwnasError, match="does not know"):
        backend_from_provenance(LatencyTable.load(out).provenance)


def test_a_complete_profile_calibrates_itself_on_whole_networks_once(tmp_path, cache):
    out = tmp_path / "t.csv"
    lines = []
    bare = profile_run(ProfileConfig(space=SPACE, backend="host-ort", out=out, **FAST))
    assert "fitted_on" not in LatencyTable.load(out).calibration
    # the complete table is calibrated on the next run, timed with its ruler and unit
    cfg = ProfileConfig(space=SPACE, backend="host-ort", out=out, **{**FAST, "calibrate": 6})
    backend = HostOrtBackend()
    assert profile_run(cfg, backend=backend, log=lines.append).ruler == bare.ruler is not None
    assert backend.ruler is not None and backend.ruler[1] == bare.ruler["unit_us"]
    assert not any(line.startswith("ruler:") for line in lines)  # the unit is not re-measured
    table = LatencyTable.load(out)
    assert table.calibration["fitted_on"] == 6  # the reference + 5 random networks
    assert table.meta["validation"]["held_out"] == 3
    assert out.with_suffix(".validate.png").is_file()
    assert any(line.startswith("calibrated on 6 whole networks") for line in lines)
    # run again: the table is complete and calibrated; nothing is timed or refitted
    lines.clear()
    profile_run(cfg, log=lines.append)
    assert LatencyTable.load(out).calibration == table.calibration
    assert not any("calibrated" in line for line in lines)
