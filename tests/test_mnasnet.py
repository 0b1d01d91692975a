"""MnasNet search: controller learning, one-line errors, Ray end to end with a killed worker,
resume without re-running finished trials, repair when no trial meets the target."""

import csv
import io
import json

import pytest
import torch

import hwnas.search.mnasnet.pool as pool_mod
from hwnas.latency import synthetic_table
from hwnas.search.base import SearchError
from hwnas.search.mnasnet.controller import Controller, ControllerConfig
from hwnas.search.mnasnet import MnasConfig, search
from hwnas.space import get_space

SPACE = get_space("mnasnet-small")


@pytest.fixture(scope="module")
def table():
    return synthetic_table(SPACE)


def _target(table, frac=1 / 3):
    lo, hi = table.bounds(SPACE)
    return lo + frac * (hi - lo)


def _rows(out):
    return list(csv.DictReader((out / "trials.csv").open()))


def _fake_child(calls):
    """Stand-in for proxy training: accuracy from the choices, no training."""

    def run(job, worker="local"):
        calls.append(job.choices)
        return {
            "accuracy": 0.5 + 0.01 * (sum(job.choices) % 10),
            "seconds": 0.01,
            "worker": worker,
        }, ""

    return run


# --------------------------------------------------------------------------- controller


def test_controller_learns_a_favoured_architecture():
    """Reward = share of decisions matching a fixed architecture (12 choice points, seeded):
    within 40 PPO updates of 8 samples its probability exceeds 0.5 (it starts near 2e-5)."""
    sizes = [len(c) for c in SPACE.choices][:12]
    favoured = tuple((i * 7 + 3) % n for i, n in enumerate(sizes))
    ctl = Controller(sizes, ControllerConfig(lr=0.01), seed=0)
    with torch.no_grad():
        p0 = float(ctl.log_prob([favoured]).exp())
    p = p0
    for _ in range(40):
        archs = ctl.sample(8)
        ctl.update(archs, [sum(a == b for a, b in zip(x, favoured)) / len(sizes) for x in archs])
        with torch.no_grad():
            p = float(ctl.log_prob([favoured]).exp())
        if p > 0.5:
            break
    assert p0 < 1e-3 and p > 0.5


def test_controller_learns_rewards_of_a_supernets_scale():
    """MnasConfig's controller on a reward whose per-decision effects are as small as a
    supernet's (+0.005 of accuracy for each of 12 nine-way decisions that picks its favoured
    option): within 60 PPO updates of 8 the favoured options' probability (geometric mean per
    decision) passes 0.25 from 1/9.  An entropy bonus c caps it: the regularised optimum is
    p ∝ exp(reward / c), so c = 1e-2 (the former default) allows 0.17 at most here."""
    sizes = [9] * 12
    favoured = tuple((i * 5 + 2) % 9 for i in range(12))
    ctl = Controller(sizes, MnasConfig(target_ms=1.0, out="x").controller(), seed=0)
    for _ in range(60):
        archs = ctl.sample(8)
        ctl.update(archs, [0.7 + 0.005 * sum(a == b for a, b in zip(x, favoured)) for x in archs])
    with torch.no_grad():
        p = float((ctl.log_prob([favoured]) / len(sizes)).exp())
    assert p > 0.25


def test_controller_state_round_trip():
    sizes = [len(c) for c in SPACE.choices]
    a = Controller(sizes, seed=3)
    a.update(a.sample(4), [0.1, 0.2, 0.3, 0.4])
    buf = io.BytesIO()
    torch.save(a.full_state(), buf)
    b = Controller(sizes, seed=99)
    b.load_full_state(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    assert a.sample(5) == b.sample(5) and a.baseline == b.baseline and b.updates == 1


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"workers": 0}, "--workers must be at least 1 (got 0)"),
        ({"reward": "pareto"}, "unknown reward 'pareto'; choose one of soft, hard, abs"),
        (
            {"evaluator": "oracle"},
            "unknown evaluator 'oracle'; choose one of train, shared, supernet",
        ),
        ({"latency": "guess"}, "unknown latency mode 'guess'; choose one of predict, measured"),
    ],
)
def test_config_errors_one_line(kw, msg):
    with pytest.raises(SearchError) as e:
        MnasConfig(target_ms=10, out="x", **kw)
    assert str(e.value) == msg


@pytest.mark.parametrize(
    "kw, start",
    [
        (
            {"latency": "measured"},
            "--latency measured: the table's backend 'macs-model' is not one",
        ),
        ({"target_ms": 0.5}, "target 0.5 ms is below the fastest architecture of mnasnet-small"),
        (
            {"workers": 2, "ray_address": "127.0.0.1:1", "ray_timeout_s": 2},
            "--ray-address 127.0.0.1:1: no Ray cluster reachable within 2 s",
        ),
    ],
)
def test_search_errors_one_line(tmp_path, table, kw, start):
    cfg = MnasConfig(**{"target_ms": _target(table), "out": str(tmp_path / "run"), **kw})
    with pytest.raises(SearchError) as e:
        search(cfg, table=table, space=SPACE)
    assert str(e.value).startswith(start) and "\n" not in str(e.value)


# --------------------------------------------------------------------------- in process


def test_resume_does_not_rerun_finished_trials(tmp_path, table, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(pool_mod, "run_child_safe", _fake_child(calls))
    cfg = MnasConfig(
        target_ms=_target(table), out=str(tmp_path / "run"), trials=6, batch=2, subset=300
    )
    assert search(cfg, table=table, space=SPACE, stop_after=1) is None
    assert "batch 1: trials 2/6, mean reward" in capsys.readouterr().err
    first = _rows(tmp_path / "run")
    assert len(first) == 2 and len(calls) == 2
    with pytest.raises(SearchError, match="already holds a search; pass --resume"):
        search(cfg, table=table, space=SPACE)
    rec = search(MnasConfig(**{**cfg.__dict__, "resume": True}), table=table, space=SPACE)
    rows = _rows(tmp_path / "run")
    assert [r["trial"] for r in rows] == [str(i) for i in range(6)]
    assert rows[:2] == first  # finished trials kept, not re-run
    assert len(calls) == sum(r["status"] == "ok" for r in rows) <= 6
    assert set(calls[:2]) == {tuple(map(int, r["choices"].split("-"))) for r in first}
    assert rec.predicted_ms <= cfg.target_ms

    # an uninterrupted run with the same seed samples and scores the same trials
    calls.clear()
    whole = search(
        MnasConfig(**{**cfg.__dict__, "out": str(tmp_path / "whole")}), table=table, space=SPACE
    )
    assert _rows(tmp_path / "whole") == rows and whole.choices == rec.choices


def test_no_trial_meets_target_is_repaired(tmp_path, table, monkeypatch):
    monkeypatch.setattr(pool_mod, "run_child_safe", _fake_child([]))
    lo, _ = table.bounds(SPACE)
    cfg = MnasConfig(
        target_ms=lo * 1.001, out=str(tmp_path / "run"), trials=2, batch=2, reward="hard"
    )
    rec = search(cfg, table=table, space=SPACE)
    assert rec.extra["repaired"] and not rec.extra["met_target"]
    assert rec.predicted_ms <= cfg.target_ms
    assert "no sampled architecture met the target" in (tmp_path / "run/summary.md").read_text()


def test_failing_trial_in_process_is_retried_then_invalid(tmp_path, table, monkeypatch):
    """First attempt raises → attempts 2; with retries=0 it is recorded failed, reward 0."""
    from hwnas.search.mnasnet import trials as mnasnet_trials

    def child(job, worker=None):
        if job.trial == 0 and job.attempt == 1:  # trial 0 fails on its first attempt
            raise RuntimeError("boom")
        return {"accuracy": 0.6, "seconds": 0.0, "worker": "local"}

    monkeypatch.setattr(mnasnet_trials, "run_child", child)
    for retries, status, attempts, reward in ((1, "ok", "2", None), (0, "failed", "1", "0.0")):
        out = tmp_path / f"r{retries}"
        cfg = MnasConfig(target_ms=_target(table), out=str(out), trials=2, batch=2, retries=retries)
        search(cfg, table=table, space=SPACE)
        row = _rows(out)[0]
        assert (row["status"], row["attempts"]) == (status, attempts)
        if reward is not None:
            assert row["reward"] == reward and "boom" in row["error"]


# --------------------------------------------------------------------------- Ray


def _dies_on_first_attempt(trial: int):
    """A Ray task body for the pool: the real proxy training, except that ``trial``'s worker
    process dies (``os._exit``) on its first attempt.  Defined in a function, so Ray ships it
    to the workers by value (they cannot import this test module)."""
    from hwnas.search.mnasnet.trials import run_child

    def child(job, worker=None):
        if job.trial == trial and job.attempt == 1:
            import os

            os._exit(1)
        return run_child(job, worker)

    return child


def test_ray_two_workers_end_to_end_with_killed_worker(tmp_path, table, monkeypatch):
    """Real proxy training on 2 local Ray workers; trial 1's worker process dies on its first
    attempt (os._exit) and the retry succeeds."""
    pytest.importorskip("ray")
    monkeypatch.setattr(pool_mod, "run_child", _dies_on_first_attempt(1))
    out = tmp_path / "run"
    cfg = MnasConfig(
        target_ms=_target(table),
        out=str(out),
        trials=4,
        batch=2,
        workers=2,
        subset=300,
        child_epochs=1,
    )
    rec = search(cfg, table=table, space=SPACE)
    rows = _rows(out)
    assert len(rows) == 4 and all(r["status"] in ("ok", "cached") for r in rows)
    assert rows[1]["attempts"] == "2" and rows[0]["attempts"] == "1"
    assert len({r["worker"] for r in rows if r["status"] == "ok"}) >= 2
    for name in (
        "config.json",
        "trials.csv",
        "pareto.png",
        "rewards.png",
        "arch.json",
        "topk.json",
        "summary.md",
    ):
        assert (out / name).exists(), name
    arch = json.loads((out / "arch.json").read_text())
    assert arch["predicted_ms"] <= cfg.target_ms and list(rec.choices) == arch["choices"]
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    import ray

    assert not ray.is_initialized()


def test_table_of_another_space_one_line(tmp_path):
    from hwnas.errors import HwnasError

    other = synthetic_table(get_space("fbnet-small"))
    with pytest.raises(HwnasError) as e:
        search(MnasConfig(target_ms=5, out=str(tmp_path / "run")), table=other, space=SPACE)
    msg = str(e.value)
    assert "was profiled for space fbnet-small" in msg and "not mnasnet-small" in msg
    assert "\n" not in msg and not (tmp_path / "run").exists()
