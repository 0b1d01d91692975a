"""LatencyTable: files, validation, predict, expected, exact bounds and budget repair."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from hwnas.latency import LatencyTable, TableError, synthetic_table
from hwnas.space import Arch, get_space, random_arch, reference_arch
from hwnas.space.space import Stage
from spaces import tiny_space

TINY_FBNET = tiny_space("tiny")
TINY_MNAS = tiny_space(
    "tiny-mnas",
    family="mnasnet",
    stages=(Stage("b1", 8, 1, 1), Stage("b2", 16, 2, 2)),
    width_multipliers=(1.0, 1.5),
    ops=(),
    mnas_ops=("dwconv", "mbconv_e3"),
    kernels=(3,),
    se_ratios=(0.0,),
    params={"tiny": 2},
)


def all_archs(space):
    return [list(c) for c in itertools.product(*(range(len(ch)) for ch in space.choices))]


@pytest.fixture(scope="module", params=[TINY_FBNET, TINY_MNAS], ids=lambda s: s.name)
def tiny(request):
    space = request.param
    table = synthetic_table(space, seed=3)
    preds = np.array([table.predict(a, space) for a in all_archs(space)])
    return space, table, preds


def test_bounds_are_exact(tiny):
    space, table, preds = tiny
    lo, hi = table.bounds(space)
    assert lo == pytest.approx(preds.min()) and hi == pytest.approx(preds.max())
    assert table.predict(table.fastest(space), space) == pytest.approx(preds.min())


def test_expected_equals_predict_for_one_hot_and_mean_for_uniform(tiny):
    space, table, preds = tiny
    arch = all_archs(space)[7]
    one_hot = [
        torch.nn.functional.one_hot(torch.tensor(c), len(ch)).double()
        for c, ch in zip(arch, space.choices)
    ]
    assert float(table.expected(one_hot, space)) == pytest.approx(table.predict(arch, space))
    uniform = [torch.full((len(ch),), 1.0 / len(ch), dtype=torch.double) for ch in space.choices]
    assert float(table.expected(uniform, space)) == pytest.approx(preds.mean())


def test_expected_is_differentiable():
    space = TINY_FBNET
    table = synthetic_table(space)
    theta = [torch.zeros(len(c), requires_grad=True) for c in space.choices]
    table.expected([t.softmax(0) for t in theta], space).backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in theta)


def test_best_under_matches_brute_force(tiny):
    space, table, preds = tiny
    rng = np.random.default_rng(0)
    scores = [rng.normal(size=len(c)) for c in space.choices]
    archs = all_archs(space)
    for frac in (0.05, 0.3, 0.7):
        target = preds.min() + frac * (preds.max() - preds.min())
        best = max(
            sum(scores[i][c] for i, c in enumerate(a)) for a, p in zip(archs, preds) if p <= target
        )
        got = table.best_under(space, scores, target, bins=20000)
        assert table.predict(got, space) <= target
        assert sum(scores[i][c] for i, c in enumerate(got.choices)) == pytest.approx(best)


def test_target_below_minimum_states_it():
    space = TINY_FBNET
    table = synthetic_table(space)
    lo, _ = table.bounds(space)
    with pytest.raises(
        TableError, match=rf"below the fastest architecture of tiny on this table \({lo:.3f} ms\)"
    ):
        table.best_under(space, [[0.0] * len(c) for c in space.choices], lo * 0.5)


def test_repair_keeps_fitting_arch_and_fixes_slow_one():
    space = get_space("fbnet-small")
    table = synthetic_table(space)
    ref = reference_arch(space, "mobilenetv2")
    t_ref = table.predict(ref)
    assert table.repair(space, ref, t_ref * 1.01) == ref
    fixed = table.repair(space, ref, t_ref * 0.6)
    assert table.predict(fixed) <= t_ref * 0.6
    kept = sum(a == b for a, b in zip(fixed.choices, ref.choices))
    assert kept >= len(ref.choices) // 2


def test_calibration_is_affine_and_per_type():
    space = get_space("fbnet-small")
    table = synthetic_table(space)
    arch = random_arch(space, 0)
    raw = table.raw_sum(arch)
    cal = table.with_calibration({"scale": 0.9, "offset_ms": 0.25})
    assert cal.predict(arch) == pytest.approx(0.9 * raw + 0.25)
    lo, _ = table.bounds(space)
    assert cal.bounds(space)[0] == pytest.approx(0.9 * lo + 0.25)
    typed = table.with_calibration({"per_type": {"ir": 2.0}})
    ir = sum(table.lookup(i.key) for i in space.layers(arch) if i.spec.key().startswith("ir_"))
    assert typed.predict(arch) == pytest.approx(raw + ir)
    over = table.with_calibration({"scale": 0.5, "per_layer_ms": -0.01, "offset_ms": 0.1})
    measured = [i for i in space.layers(arch) if table.lookup(i.key) > 0]
    assert over.predict(arch) == pytest.approx(0.5 * raw - 0.01 * len(measured) + 0.1)
    lo = over.bounds(space)[0]
    assert over.predict(over.fastest(space)) == pytest.approx(lo)
    fixed = over.best_under(space, [[0.0] * len(c) for c in space.choices], lo * 1.5)
    assert over.predict(fixed) <= lo * 1.5


def test_round_trip_and_space(tmp_path):
    space = get_space("fbnet-small")
    table = synthetic_table(space)
    p = table.save(tmp_path / "t.csv")
    back = LatencyTable.load(p)
    arch = random_arch(space, 4)
    assert back.predict(arch) == pytest.approx(table.predict(arch))
    assert back.space() == space
    back.check_space(space)
    with pytest.raises(TableError, match="was profiled for space fbnet-small v1"):
        back.check_space(get_space("mnasnet-small"))


def _saved(tmp_path):
    p = synthetic_table(get_space("fbnet-small")).save(tmp_path / "t.csv")
    return p, pd.read_csv(p), json.loads(p.with_suffix(".json").read_text())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda df, meta: df.drop(columns=["p90_us"]), "missing column(s) p90_us"),
        (
            lambda df, meta: df.assign(median_us=float("nan")),
            "t.csv: line 2, column median_us: '' is not a number",
        ),
        (
            lambda df, meta: df.assign(mean_us=-1.0),
            "t.csv: line 2, column mean_us: '-1.0' is negative",
        ),
        (lambda df, meta: pd.concat([df, df.iloc[:1]]), "duplicate rows for the same key"),
    ],
)
def test_bad_tables_fail_with_one_line(tmp_path, mutate, message):
    p, df, meta = _saved(tmp_path)
    mutate(df, meta).to_csv(p, index=False)
    with pytest.raises(TableError) as e:
        LatencyTable.load(p)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_sidecar(tmp_path):
    p, df, meta = _saved(tmp_path)
    p.with_suffix(".json").write_text(json.dumps({**meta, "schema": 99}))
    with pytest.raises(TableError, match="unknown schema version 99"):
        LatencyTable.load(p)
    p.with_suffix(".json").unlink()
    with pytest.raises(TableError, match="its JSON sidecar t.json is missing"):
        LatencyTable.load(p)
    with pytest.raises(TableError, match="no such latency table"):
        LatencyTable.load(tmp_path / "nope.csv")


def test_missing_keys_name_the_fix(tmp_path):
    space = get_space("fbnet-small")
    p, df, meta = _saved(tmp_path)
    df[df.block != "ir_k5_e6"].to_csv(p, index=False)
    table = LatencyTable.load(p)
    arch = Arch.of(
        space,
        space.encode({**{c.name: c.options[0] for c in space.choices}, "s3.l1.op": "ir_k5_e6"}),
    )
    with pytest.raises(
        TableError, match=r"lacks 1 key\(s\): ir_k5_e6/.*hwnas profile --space fbnet-small"
    ):
        table.predict(arch)


def test_a_table_says_when_it_predicts_networks_badly_or_was_never_checked(tmp_path, capsys):
    from hwnas.search.tables import resolve_table

    space = get_space("fbnet-small")
    table = synthetic_table(space)
    table.save(tmp_path / "t.csv")
    assert "has not been checked against whole networks" in table.fidelity_note()
    table.meta["validation"] = {
        "held_out": 30,
        "within_10pct": 0.5,
        "within_5pct": 0.2,
        "mape_pct": 14.0,
        "kendall_tau": 0.6,
    }
    table.save()
    resolve_table("fbnet-small", tmp_path / "t.csv")
    assert "predicts only 50% of 30 held-out networks within ±10%" in capsys.readouterr().err
    table.meta["validation"]["within_10pct"] = 0.97
    assert table.fidelity_note() is None
