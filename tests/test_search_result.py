"""One entry, one typed result: every strategy (FBNet, evolution, MnasNet) run through
``hwnas.search.search`` returns a ``SearchResult``; ``arch.json`` is written from it with the
keys, and in the order, it had before the type; export reads the typed record back, from a
new run folder and from one written in the old layout."""

import dataclasses
import json

import pytest
import torch

from hwnas.export.config import ExportConfig
from hwnas.export.inputs import load_source, load_table
from hwnas.latency import LatencyTable, synthetic_table
from hwnas.search import STRATEGIES, config_class, search
from hwnas.search.base import RESULT_SCHEMA, SearchResult
from hwnas.space import Arch, catalog
from hwnas.space.space import Stage
from hwnas.supernet.train import SupernetConfig, train_supernet
from spaces import tiny_space

SPACE = tiny_space(
    "tiny-result",
    resolution=12,
    num_classes=10,
    in_channels=1,
    ops=("ir_k3_e1", "ir_k3_e3", "ir_k5_e1_g2", "skip"),
    stages=(Stage("s1", 8, 1, 1), Stage("s2", 16, 2, 2), Stage("s3", 24, 2, 2)),
    params={},  # an architecture of it names no parameters: the registry below can build it
)
# arch.json as every strategy wrote it before SearchResult: the architecture, then these
OLD_ORDER = [
    "schema",
    "space",
    "version",
    "space_args",
    "name",
    "choices",
    "values",
    "predicted_ms",
    "target_ms",
    "margin_ms",
    "table",
    "provenance",
    "result_schema",
    "written",
    "strategy",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A supernet trained for one short epoch and a latency table saved as a CSV."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("result")
    cfg = SupernetConfig(
        out=str(root / "supernet"), space=SPACE.name, subset=300, epochs=1, eval_paths=1
    )
    train_supernet(cfg, space=SPACE, progress=False)
    synthetic_table(SPACE).save(root / "t.csv")
    return root / "supernet", LatencyTable.load(root / "t.csv")


def _config(strategy: str, out, supernet, target: float):
    own = {
        "fbnet": dict(subset=256, epochs=1, warmup_epochs=0, select=2, refine=0),
        "evolution": dict(
            supernet=str(supernet),
            population=4,
            generations=1,
            parents=2,
            calib_batches=1,
            eval_batches=1,
            rescore=2,
        ),
        "mnasnet": dict(evaluator="supernet", supernet=str(supernet), trials=4, batch=2),
    }[strategy]
    return config_class(strategy)(
        target_ms=target, out=str(out), space=SPACE.name, seed=0, topk=2, **own
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_returns_a_search_result_that_export_reads(
    strategy, trained, tmp_path, monkeypatch
):
    supernet, table = trained
    monkeypatch.setitem(catalog.SPACES, SPACE.name, lambda **_: SPACE)  # arch files name it
    lo, hi = table.bounds(SPACE)
    target = lo + 0.5 * (hi - lo)
    out = tmp_path / strategy
    cfg = _config(strategy, out, supernet, target)
    assert cfg.strategy == strategy
    result = search(cfg, table, SPACE)

    assert isinstance(result, SearchResult) and result.strategy == strategy
    assert result.predicted_ms <= result.target_ms == target
    assert result.margin_ms == pytest.approx(target - result.predicted_ms, abs=2e-6)
    assert result.table == str(table.path) and result.provenance["device"] == "synthetic"
    assert result.arch.space == SPACE.name and result.choices == result.arch.choices
    assert "search_seconds" in result.extra and "strategy" not in result.extra
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.predicted_ms = 0.0
    with pytest.raises(TypeError):
        result.extra["predicted_ms"] = 0.0

    # arch.json is the result's record: same keys, same order as before the type
    rec = json.loads((out / "arch.json").read_text())
    assert rec == json.loads(json.dumps(result.to_record()))
    assert list(rec)[: len(OLD_ORDER)] == OLD_ORDER and rec["result_schema"] == RESULT_SCHEMA
    assert list(rec)[len(OLD_ORDER) :] == list(result.extra)
    # read back, as export reads it
    assert SearchResult.load(out).to_record() == rec
    src = load_source(out)
    assert isinstance(src.result, SearchResult) and src.result.to_record() == rec
    assert (src.result.predicted_ms, src.result.target_ms) == (result.predicted_ms, target)
    assert dict(src.result.provenance) == dict(result.provenance)
    assert src.arch.choices == result.choices
    assert load_table(ExportConfig(source=out, progress=False), src).path == table.path


def test_old_and_bare_arch_files_read_as_results():
    """An arch.json written before SearchResult reads back unchanged (its strategy's keys in
    ``extra``); a bare architecture file gives a result with only ``arch`` set."""
    arch = Arch.of(SPACE, [0] * len(SPACE.choices), "fbnet")
    old = {
        **arch.to_dict(SPACE),
        "predicted_ms": 1.5,
        "target_ms": 2.0,
        "margin_ms": 0.5,
        "table": "latency_tables/t.csv",
        "provenance": {"device": "pixel1", "backend": "adb-tflite", "threads": 1},
        "result_schema": 1,
        "written": "2026-12-01T10:00:00",
        "strategy": "fbnet",
        "mode": "hard",
        "supernet": {"winner_acc": 0.5},
        "supernet_note": "near chance",
    }
    result = SearchResult.from_record(old)
    assert (result.predicted_ms, result.target_ms, result.margin_ms) == (1.5, 2.0, 0.5)
    assert result.strategy == "fbnet" and result.provenance["device"] == "pixel1"
    assert result.supernet_note == "near chance" and list(result.extra) == [
        "mode",
        "supernet",
        "supernet_note",
    ]
    assert result.to_record(SPACE) == old and list(result.to_record(SPACE)) == list(old)

    bare = SearchResult.from_record(arch.to_dict(SPACE))
    assert bare.arch == arch and bare.predicted_ms is bare.target_ms is bare.table is None
    assert bare.strategy is None and not bare.provenance and not bare.extra
    assert bare.supernet_note is None
