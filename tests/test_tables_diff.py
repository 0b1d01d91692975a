"""`hwnas tables diff`: two real tables written through the table writer, with a known
scaling per op type, so every ratio the command reports is known in advance."""

from __future__ import annotations

import json

import pytest

from hwnas.cli import main
from hwnas.device_profiler.diff import diff_tables
from hwnas.latency import LatencyTable, synthetic_table
from hwnas.space import get_space, reference_arch
from spaces import tiny_space

SPACE = "fbnet-small"
# block name → factor B/A: ir_k3_* ×2, ir_k5_* ×0.5, skip ×4, stem/head/pool/fc ×1.25
FACTORS = {"ir_k3": 2.0, "ir_k5": 0.5, "skip": 4.0}


def factor(block: str) -> float:
    for prefix, f in FACTORS.items():
        if block.startswith(prefix):
            return f
    return 1.25


def run(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


@pytest.fixture
def pair(tmp_path):
    """A.csv: a synthetic fbnet-small table; B.csv: the same, each block scaled by its type's
    factor, its first ir_k3_e1 row dropped, another backend, threads and calibration."""
    space = get_space(SPACE)
    a = synthetic_table(space)
    a.meta["provenance"] = {
        "device": "host",
        "backend": "host-ort",
        "threads": 1,
        "runtime_version": "1.0",
        "cores": [1],
    }
    a.meta["profile"] = {"recipe": 3}
    a.save(tmp_path / "A.csv")
    f = a.frame.copy()
    for col in ("median_us", "p10_us", "p90_us", "mean_us"):
        f[col] = [v * factor(b) for v, b in zip(f[col], f["block"])]
    dropped = f.index[f["block"] == "ir_k3_e1"][0]
    dropped_key = tuple(f.loc[dropped, ["block", "H", "W", "Cin", "Cout", "stride"]])
    f = f.drop(index=dropped).reset_index(drop=True)
    meta = json.loads(json.dumps(a.meta))
    meta["provenance"].update(backend="host-litert", threads=2, runtime_version="2.0", cores=[0, 1])
    meta["profile"]["recipe"] = 4
    meta["calibration"] = {**meta["calibration"], "scale": 2.0}
    LatencyTable(f, meta).save(tmp_path / "B.csv")
    return tmp_path / "A.csv", tmp_path / "B.csv", space, dropped_key


def test_ratios_per_type_and_overall_are_the_known_scaling(pair):
    pa, pb, space, dropped = pair
    a, b = LatencyTable.load(pa), LatencyTable.load(pb)
    d = diff_tables(a, b)
    keys = a.keys()
    n = len(keys)
    identity = sum(1 for k in keys if a.lookup(k) == 0)
    assert d["rows"] == {
        "a": n,
        "b": n - 1,
        "both": n - 1,
        "measured_in_both": n - 1 - identity,
        "identity_in_both": identity,
        "zero_in_one": 0,
        "only_a": 1,
        "only_b": 0,
    }
    assert d["only_a"] == ["/".join(map(str, dropped))]
    for block, v in d["per_type"].items():
        want = factor(block)
        assert v["median"] == pytest.approx(want, rel=1e-12), block
        assert v["min"] == pytest.approx(want, rel=1e-12)
        assert v["max"] == pytest.approx(want, rel=1e-12)
    assert set(d["per_type"]) >= {"ir_k3_e1", "ir_k5_e6", "skip", "fc", "pool", "head"}
    assert sum(v["n"] for v in d["per_type"].values()) == d["ratio"]["n"]
    # 4 ir_k3 types × 46 (one dropped), 4 ir_k5 × 46, skip, 6 fixed rows: the median is 2
    n5 = d["per_type"]["ir_k5_e1"]["n"] * 4
    assert n5 < d["ratio"]["n"] / 2 < n5 + 6 + d["per_type"]["ir_k3_e1"]["n"] * 4
    assert d["ratio"]["median"] == pytest.approx(2.0, rel=1e-12)
    assert d["ratio"]["min"] == pytest.approx(0.5) and d["ratio"]["max"] == pytest.approx(4.0)
    # the reference: Σ of its blocks with each block's factor, and B's calibration scale 2
    arch = reference_arch(space, "mobilenetv2")
    raw_a = sum(a.lookup(i.key) for i in space.layers(arch))
    raw_b = sum(a.lookup(i.key) * factor(i.key[0]) for i in space.layers(arch))
    ref = d["reference"]
    assert ref["a_raw_ms"] == pytest.approx(raw_a, rel=1e-12)
    assert ref["b_raw_ms"] == pytest.approx(raw_b, rel=1e-12)
    assert ref["a_ms"] == pytest.approx(raw_a, rel=1e-12)
    assert ref["b_ms"] == pytest.approx(2 * raw_b, rel=1e-12)
    assert ref["ratio"] == pytest.approx(2 * raw_b / raw_a, rel=1e-12)
    differs = {f["field"]: (f["a"], f["b"]) for f in d["provenance_differs"]}
    assert differs["backend"] == ("host-ort", "host-litert")
    assert differs["threads"] == (1, 2)
    assert differs["cores"] == ([1], [0, 1])
    assert differs["runtime version"] == ("1.0", "2.0")
    assert differs["recipe"] == (3, 4)
    assert differs["calibration"][0]["scale"] == 1.0 and differs["calibration"][1]["scale"] == 2
    assert "device" not in differs and "precision" not in differs


def test_cli_prints_the_figures_and_writes_json(pair, capsys, tmp_path):
    pa, pb, _, _ = pair
    code, out, err = run(capsys, "tables", "diff", pa, pb, "--json", tmp_path / "d" / "d.json")
    assert code == 0, err
    for text in (
        "ratio B/A, median of",
        "2.000",
        "mobilenetv2: predicted A → B",
        "ir_k5_e6",
        "0.500",
        "4.000",
        "host-litert",
        "runtime version",
        "recipe",
        '{"scale": 1.0}',
        '{"scale": 2.0}',
    ):  # of two objects, the keys that differ
        assert text in out, text
    d = json.loads((tmp_path / "d" / "d.json").read_text())
    assert d["ratio"]["median"] == pytest.approx(2.0)
    assert d["per_type"]["skip"]["median"] == pytest.approx(4.0)


def test_same_table_is_ratio_one_and_same_provenance(pair, capsys):
    pa, _, _, _ = pair
    code, out, _ = run(capsys, "tables", "diff", pa, pa)
    assert code == 0
    assert "provenance: the same" in out and "(×1.000)" in out


def test_a_space_the_reference_does_not_fit_still_diffs(tmp_path):
    space = tiny_space("tiny-diff")
    a = synthetic_table(space)
    a.save(tmp_path / "a.csv")
    d = diff_tables(LatencyTable.load(tmp_path / "a.csv"), LatencyTable.load(tmp_path / "a.csv"))
    assert d["ratio"]["median"] == 1.0
    assert "error" in d["reference"]  # tiny-diff is no catalog space: nothing to predict


def one_line_error(capsys, *args) -> str:
    code, out, err = run(capsys, "tables", "diff", *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_bad_input_is_one_line(pair, capsys, tmp_path):
    pa, pb, _, _ = pair
    msg = one_line_error(capsys, pa, tmp_path / "missing.csv")
    assert "missing.csv" in msg and "no such latency table" in msg
    other = synthetic_table(get_space(SPACE, resolution=64))
    other.save(tmp_path / "r64.csv")
    msg = one_line_error(capsys, pa, tmp_path / "r64.csv")
    assert "r64.csv" in msg and "same space" in msg and "resolution=64" in msg
    mnas = synthetic_table(get_space("mnasnet-small"))
    mnas.save(tmp_path / "mnas.csv")
    assert "same space" in one_line_error(capsys, tmp_path / "mnas.csv", pa)
    text = pb.read_text().splitlines()
    text[3] = text[3].replace(text[3].split(",")[6], "fast", 1)
    pb.write_text("\n".join(text) + "\n")
    msg = one_line_error(capsys, pa, pb)
    assert "B.csv: line 4, column median_us" in msg
    pb.write_text('block,H\n"unclosed,1\n')
    assert "B.csv" in one_line_error(capsys, pa, pb)
    before = pa.read_bytes()
    msg = one_line_error(capsys, pa, pa, "--json", pa)
    assert "cannot write" in msg and pa.read_bytes() == before
