"""MnasNet evaluators: Kendall τ, the shared-weights supernet, a search scored by it (with
resume reusing the trained supernet), and end-to-end measured latency on host-ort."""

import csv
import json
import random

import pytest
import torch

from hwnas.latency import synthetic_table
from hwnas.search.base import SearchError
from hwnas.search.mnasnet.evaluators import MeasuredLatency, kendall_tau, rank_agreement
from hwnas.search.mnasnet import MnasConfig, search
from hwnas.search.mnasnet.supernet import SuperNet
from hwnas.space import build_model, get_space, random_arch

SPACE = get_space("mnasnet-small")


def test_kendall_tau_hand_computed():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # pairs of [1,2,3] vs [1,3,2]: (1,2)+ (1,3)+ (2,3)− → (2 − 1) / 3
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # tie in b: n0 = 3, ties_b = 1, concordant 2 → 2 / √(3·2)
    assert kendall_tau([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / 6**0.5)
    agree = rank_agreement([0.5, 0.7, 0.6], [0.1, 0.3, 0.2])
    assert agree["kendall_tau"] == pytest.approx(1.0) and agree["same_best"]


def test_supernet_runs_any_path_with_the_child_shapes():
    net = SuperNet(SPACE, seed=0)
    rng = random.Random(0)
    x = torch.randn(4, SPACE.in_channels, SPACE.resolution, SPACE.resolution)
    for _ in range(6):
        arch = random_arch(SPACE, rng=rng)
        y = net(x, arch)
        assert y.shape == build_model(SPACE, arch)(x).shape and torch.isfinite(y).all()
    with pytest.raises(ValueError, match="needs a mnasnet-family space"):
        SuperNet(get_space("fbnet-small"))


def test_shared_evaluator_search_and_resume(tmp_path):
    table = synthetic_table(SPACE)
    lo, hi = table.bounds(SPACE)
    out = tmp_path / "run"
    cfg = MnasConfig(
        target_ms=lo + (hi - lo) / 3,
        out=str(out),
        trials=6,
        batch=3,
        evaluator="shared",
        supernet_epochs=1,
        subset=200,
        batch_size=50,
    )
    assert search(cfg, table=table, space=SPACE, stop_after=1) is None
    assert (out / "supernet.pt").exists()
    stamp = (out / "supernet.pt").stat().st_mtime_ns
    rec = search(MnasConfig(**{**cfg.__dict__, "resume": True}), table=table, space=SPACE)
    assert (out / "supernet.pt").stat().st_mtime_ns == stamp  # reused, not retrained
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 6 and all(0 <= float(r["accuracy"]) <= 1 for r in rows)
    assert {r["worker"] for r in rows} <= {"supernet", "cache"}
    assert rec.predicted_ms <= cfg.target_ms


def test_shared_evaluator_refuses_fbnet_space(tmp_path):
    space = get_space("fbnet-small")
    table = synthetic_table(space)
    cfg = MnasConfig(
        target_ms=table.bounds(space)[1],
        out=str(tmp_path / "r"),
        evaluator="shared",
        space="fbnet-small",
    )
    with pytest.raises(SearchError) as e:
        search(cfg, table=table, space=space)
    assert str(e.value) == "--evaluator shared needs a mnasnet-family space, not fbnet-small"


@pytest.mark.slow
def test_measured_latency_host_ort_cached(tmp_path):
    pytest.importorskip("onnxruntime")
    table = synthetic_table(SPACE)
    table.provenance.update(backend="host-ort", precision="int8", threads=1)
    m = MeasuredLatency(table, SPACE, tmp_path, cache_dir=str(tmp_path / "models"), runs=5)
    choices = random_arch(SPACE, seed=3).choices
    ms = m(choices)
    assert 0 < ms < 1000
    assert json.loads((tmp_path / "measured_latency.json").read_text()) == {
        "-".join(map(str, choices)): ms
    }
    assert m(choices) == ms  # cached
