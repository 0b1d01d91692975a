"""Train once, search any target: the supernet artefact (resume, manifest, refusals) and the
evolutionary search on it (target guarantee, outputs, resume == uninterrupted)."""

import json
import random

import pytest
import torch

from hwnas.latency import synthetic_table
from hwnas.search.base import SearchError
from hwnas.search.evolution import EvolutionConfig, crossover, mutate, search
from hwnas.space.space import Stage
from hwnas.space import Arch
from hwnas.supernet import CALIBRATION_BATCHES, SupernetError, path_accuracy
from hwnas.supernet.store import CKPT, MANIFEST, load_supernet, open_supernet
from hwnas.supernet.train import SupernetConfig, train_supernet
from spaces import tiny_space

SPACE = tiny_space(
    "tiny-evo",
    resolution=12,
    num_classes=10,
    in_channels=1,
    ops=("ir_k3_e1", "ir_k3_e3", "ir_k5_e1_g2", "skip"),
    stages=(Stage("s1", 8, 1, 1), Stage("s2", 16, 2, 2), Stage("s3", 24, 2, 2)),
)
OTHER = tiny_space(
    "tiny-evo-other",
    resolution=12,
    num_classes=10,
    in_channels=1,
    ops=("ir_k3_e1", "ir_k3_e3", "ir_k5_e1_g2", "skip"),
    stages=(Stage("s1", 8, 1, 1), Stage("s2", 16, 2, 2), Stage("s3", 24, 2, 2)),
)


def _cfg(out, **kw):
    return SupernetConfig(
        out=str(out), space=SPACE.name, subset=400, epochs=2, batch_size=32, eval_paths=2, **kw
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("supernet")
    manifest = train_supernet(_cfg(out), space=SPACE, progress=False)
    return out, manifest


def test_supernet_artefact_manifest_and_resume_equals_uninterrupted(trained, tmp_path):
    out, manifest = trained
    assert manifest["space"]["name"] == SPACE.name and manifest["space"]["resolution"] == 12
    assert manifest["budget"]["epochs"] == 2 and manifest["data"]["subset"] == 400
    accs = manifest["random_paths"]["held_out_acc"]
    assert len(accs) == 2 and all(0 <= a <= 1 for a in accs)
    assert (out / "log.csv").read_text().count("\n") == 3
    # interrupted after one epoch, then resumed: the same weights as the uninterrupted run
    other = tmp_path / "resumed"
    assert train_supernet(_cfg(other), space=SPACE, stop_after_epochs=1, progress=False) is None
    assert not (other / MANIFEST).exists()
    with pytest.raises(SupernetError, match="--resume"):
        train_supernet(_cfg(other), space=SPACE, progress=False)
    train_supernet(_cfg(other, resume=True), space=SPACE, progress=False)
    a = torch.load(out / CKPT, weights_only=True)["net"]
    b = torch.load(other / CKPT, weights_only=True)["net"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    net, m = load_supernet(out, SPACE)
    assert m == manifest and all(torch.equal(v, a[k]) for k, v in net.state_dict().items())


def test_supernet_of_another_space_or_a_broken_checkpoint_is_one_line(trained, tmp_path):
    out, _ = trained
    with pytest.raises(SupernetError, match="tiny-evo v1.*tiny-evo-other"):
        load_supernet(out, OTHER)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / MANIFEST).write_text((out / MANIFEST).read_text())
    (broken / CKPT).write_bytes((out / CKPT).read_bytes()[:1000])
    with pytest.raises(SupernetError, match="unreadable") as e:
        load_supernet(broken, SPACE)
    assert "\n" not in str(e.value)
    assert (broken / CKPT).stat().st_size == 1000  # nothing overwritten
    with pytest.raises(SupernetError, match="resume"):
        (broken / MANIFEST).unlink()
        load_supernet(broken, SPACE)


def test_mutation_and_crossover_stay_in_the_space():
    rng = random.Random(0)
    a = tuple([0] * len(SPACE.choices))
    b = tuple(len(c) - 1 for c in SPACE.choices)
    for _ in range(20):
        m = mutate(SPACE, a, 0.2, rng)
        assert m != a
        SPACE.check(list(m))
        c = crossover(a, b, rng)
        assert all(x in (p, q) for x, p, q in zip(c, a, b))


def _evo(out, supernet, target, **kw):
    return EvolutionConfig(
        target_ms=target,
        out=str(out),
        space=SPACE.name,
        supernet=str(supernet),
        population=6,
        generations=3,
        parents=3,
        calib_batches=2,
        eval_batches=1,
        **{"confirm": 0, **kw},
    )


def test_evolution_winner_under_target_outputs_and_resume(trained, tmp_path):
    out, _ = trained
    table = synthetic_table(SPACE)
    lo, hi = table.bounds(SPACE)
    target = lo + 0.4 * (hi - lo)
    rec = search(_evo(tmp_path / "a", out, target), table=table, space=SPACE)
    assert rec.predicted_ms <= target and rec.strategy == "evolution"
    assert rec.extra["evaluations"] >= 6
    run = tmp_path / "a"
    for f in ("arch.json", "topk.json", "log.csv", "summary.md", "evolution.png", "config.json"):
        assert (run / f).exists(), f
    # the summary says what a supernet lead is worth and how to check it
    assert "hwnas export RUN --reference" in (run / "summary.md").read_text()
    topk = json.loads((run / "topk.json").read_text())["archs"]
    assert all(a["predicted_ms"] <= target for a in topk)
    scores = [a["score"] for a in topk]
    assert (
        scores == sorted(scores, reverse=True) and scores[0] == rec.extra["supernet"]["winner_acc"]
    )
    # the leaders were re-scored on the whole held-out split: the winner's figure is that score
    net, _, splits = open_supernet(out, SPACE, "fashion-mnist")
    assert rec.extra["supernet"]["winner_acc"] == path_accuracy(
        net, Arch.of(SPACE, rec.choices), splits, calib_batches=CALIBRATION_BATCHES, seed=0
    )
    # stopped after one generation, then resumed: the same winner and the same evaluations
    assert search(_evo(tmp_path / "b", out, target), table=table, space=SPACE, stop_after=1) is None
    with pytest.raises(SearchError, match="--resume"):
        search(_evo(tmp_path / "b", out, target), table=table, space=SPACE)
    again = search(_evo(tmp_path / "b", out, target, resume=True), table=table, space=SPACE)
    assert again.choices == rec.choices and again.extra["evaluations"] == rec.extra["evaluations"]


def test_confirmation_trains_leaders_and_capacity_picks_and_the_best_on_val_wins(
    trained, tmp_path, monkeypatch
):
    """With ``confirm``: the supernet's leaders and the table's capacity picks, all under the
    target, each trained stand-alone; the winner is the one with the best held-out accuracy,
    that accuracy is a real training's, and a second pass trains nothing again."""
    from hwnas.search import confirm as confirm_mod
    from hwnas.space import build_model
    from hwnas.train import TrainConfig, train

    out, _ = trained
    table = synthetic_table(SPACE)
    lo, hi = table.bounds(SPACE)
    target = lo + 0.5 * (hi - lo)
    run = tmp_path / "c"
    rec = search(_evo(run, out, target, confirm=2), table=table, space=SPACE)
    rows = rec.extra["confirm"]["candidates"]
    assert rec.extra["confirm"]["reference"] is None  # this space has no MobileNetV2 skeleton
    sources = [r["source"] for r in rows]
    assert {"supernet #1", "supernet #2"} <= set(sources)
    assert any(s.startswith("capacity ") for s in sources)
    assert len({tuple(r["choices"]) for r in rows}) == len(rows)
    assert all(r["predicted_ms"] <= target for r in rows)
    accs = [r["proxy_acc"] for r in rows]
    assert accs == sorted(accs, reverse=True) and list(rec.choices) == rows[0]["choices"]
    assert rec.predicted_ms <= target
    assert "## Confirmation" in (run / "summary.md").read_text()
    # the winner's figure is its stand-alone training's held-out accuracy
    _, _, splits = open_supernet(out, SPACE, "fashion-mnist")
    torch.manual_seed(0)
    again = train(
        build_model(SPACE, Arch.of(SPACE, rows[0]["choices"])),
        splits,
        TrainConfig(epochs=1, batch_size=128, seed=0),
        progress=False,
    )
    assert again.val_acc == pytest.approx(rows[0]["proxy_acc"], abs=1e-9)

    # confirm.json keeps every result: the same candidates again train nothing
    def refuse(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(confirm_mod, "train", refuse)
    redo = confirm_mod.confirm(SPACE, [dict(r) for r in rows[::-1]], splits, run)
    assert [r["proxy_acc"] for r in redo] == [r["proxy_acc"] for r in rows[::-1]]


def test_confirmation_on_fewer_images_trains_on_a_seeded_subset(trained, tmp_path, monkeypatch):
    """``images``: each candidate trains on that many training images (a seeded choice, the
    same for every candidate), scored on the whole held-out split; the results are kept
    under that setting, so the full training split trains them again."""
    import dataclasses
    import json

    from hwnas.search import confirm as confirm_mod
    from hwnas.space import build_model
    from hwnas.train import TrainConfig, train

    out, _ = trained
    _, _, splits = open_supernet(out, SPACE, "fashion-mnist")
    row = {"choices": [0] * len(SPACE.choices), "source": "test"}
    got = confirm_mod.confirm(SPACE, [dict(row)], splits, tmp_path, seed=1, images=96)
    pick = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(1))
    fewer = dataclasses.replace(splits, train=splits.train.subset(pick[:96].sort()[0]))
    torch.manual_seed(1)
    alone = train(
        build_model(SPACE, Arch.of(SPACE, row["choices"])),
        fewer,
        TrainConfig(epochs=1, batch_size=128, seed=1),
        progress=False,
        test=False,
    )
    assert got[0]["proxy_acc"] == pytest.approx(alone.val_acc, abs=1e-9)
    assert json.loads((tmp_path / "confirm.json").read_text())["images"] == 96
    calls = []
    real = confirm_mod.train
    monkeypatch.setattr(confirm_mod, "train", lambda *a, **k: calls.append(1) or real(*a, **k))
    confirm_mod.confirm(SPACE, [dict(row)], splits, tmp_path, seed=1, images=96)
    assert calls == []  # kept
    kept = json.loads((tmp_path / "confirm.json").read_text())
    assert kept.pop("batch_size") == 128
    (tmp_path / "confirm.json").write_text(json.dumps(kept))  # a file from before it was kept
    confirm_mod.confirm(SPACE, [dict(row)], splits, tmp_path, seed=1, images=96)
    assert calls == []  # read as the batch of 128 it was trained with
    confirm_mod.confirm(SPACE, [dict(row)], splits, tmp_path, seed=1, images=96, batch_size=64)
    assert calls == [1]  # another batch: trained again
    confirm_mod.confirm(SPACE, [dict(row)], splits, tmp_path, seed=1)
    assert calls == [1, 1]  # another setting: trained again


def test_settle_trains_the_scaled_reference_beside_the_candidates(tmp_path):
    """On fbnet-small (which has the MobileNetV2-like reference) the confirmation trains the
    capacity picks as candidates and the scaled reference beside them, under one recipe; the
    reference is reported, never the winner, and every network is under the target."""
    from types import SimpleNamespace

    from hwnas.data import load_for_space
    from hwnas.search.baselines import scaled_reference
    from hwnas.search.confirm import settle
    from hwnas.space import get_space, reference_arch
    from hwnas.supernet import FBNetSupernet

    torch.set_num_threads(1)
    space = get_space("fbnet-small")
    table = synthetic_table(space)
    target = 0.7 * table.predict(reference_arch(space, "mobilenetv2"), space)
    splits = load_for_space("fashion-mnist", None, space, 0, 160)
    cfg = SimpleNamespace(
        target_ms=target, confirm=2, confirm_epochs=1, confirm_images=0, seed=0, accelerator="cpu"
    )
    fitness = {}
    net = FBNetSupernet(space)
    score = lambda a: path_accuracy(net, Arch.of(space, a), splits, seed=0)  # noqa: E731
    got = settle(cfg, score, space, table, [], fitness, splits, tmp_path)
    sources = [c["source"] for c in got["candidates"]]
    assert sorted(sources) == ["capacity e6only", "capacity e6stages", "capacity macs"]
    accs = [c["proxy_acc"] for c in got["candidates"]]
    assert accs == sorted(accs, reverse=True)
    ref = got["reference"]
    assert ref["choices"] == list(scaled_reference(space, table, target).choices)
    assert all(r["predicted_ms"] <= target for r in got["candidates"] + [ref])
    assert all(tuple(c["choices"]) in fitness for c in got["candidates"])  # scored, reported
    assert 0 <= ref["proxy_acc"] <= 1 and ref["supernet_acc"] is not None
    # 160 images for one epoch: whether the trainings left chance decides the warning
    assert ("note" in got) == (got["candidates"][0]["proxy_acc"] < 0.15)


def test_the_confirmation_breaks_a_tie_by_the_budget_spent():
    """Within one standard error of the best held-out accuracy the candidate that spends
    most of the target wins (a short training underrates capacity); outside it, accuracy."""
    from hwnas.search.confirm import rank_trained

    def row(acc, ms):
        return {"proxy_acc": acc, "predicted_ms": ms}

    # host-litert at 0.7x: 85.0% at 0.056 ms and 84.9% at 0.068 ms on 12,000 held out
    order, window = rank_trained([row(0.850, 0.056), row(0.849, 0.068), row(0.83, 0.068)], 12000)
    assert window == pytest.approx((2 * 0.85 * 0.15 / 12000) ** 0.5)
    assert order == [1, 0, 2]
    assert rank_trained([row(0.861, 0.120), row(0.852, 0.119)], 12000)[0] == [0, 1]  # 0.9 apart
    assert rank_trained([row(0.850, 0.056), row(0.849, 0.068)], 10**6)[0] == [0, 1]  # 0.1 > se
    assert rank_trained([row(0.8, 0.1), row(0.8, 0.1)], 0) == ([0, 1], 0.0)  # exact tie: order
    # host-litert at 0.9x: three picks filling the target to within 2% of one another, all
    # tied: the latency difference is below what a table tells apart, so accuracy decides
    fill = [row(0.836, 0.0874), row(0.840, 0.0860), row(0.837, 0.0870), row(0.823, 0.082)]
    assert rank_trained(fill, 12000)[0] == [1, 2, 0, 3]


def test_a_confirmation_at_chance_warns_in_the_log_and_the_summary():
    from hwnas.search.confirm import chance_note, summary_lines

    def settled(*accs):
        rows = [
            {"source": f"c{i}", "predicted_ms": 0.1, "supernet_acc": 0.5, "proxy_acc": a}
            for i, a in enumerate(accs)
        ]
        return {"epochs": 1, "split": "val", "candidates": rows, "reference": None}

    assert chance_note(settled(0.16, 0.10), 10) is None  # 1.6x chance: a signal
    at_chance = settled(0.14, 0.11)
    note = chance_note(at_chance, 10)
    assert note.startswith("the confirmation's trainings stayed near chance (best 0.140")
    assert chance_note(settled(0.14), 2) is not None  # 2 classes: chance is 0.5
    at_chance["note"] = note
    assert summary_lines(at_chance)[-1] == f"**Warning:** {note}."
    assert not any("Warning" in line for line in summary_lines(settled(0.8)))


def test_capacity_picks_fill_the_target_with_the_biggest_blocks():
    """The capacity prior's DP: under a generous target the ``macs`` pick is every layer's
    largest block at the widest widths; under a tight one it stays under the target; a space
    whose ops are not whole block keys has no pick."""
    from hwnas.search.confirm import capacity_arch
    from hwnas.space import get_space

    table = synthetic_table(SPACE)
    lo, hi = table.bounds(SPACE)
    big = capacity_arch(SPACE, table, 2 * hi, "macs")
    for c, v in zip(SPACE.choices, big.choices):
        assert c.options[v] == (max(c.options) if c.kind == "width" else "ir_k3_e3")
    tight = capacity_arch(SPACE, table, lo + 0.2 * (hi - lo), "e6only")
    assert table.predict(tight, SPACE) <= lo + 0.2 * (hi - lo)
    assert table.predict(tight, SPACE) < table.predict(big, SPACE)
    mnas = get_space("mnasnet-small")
    assert capacity_arch(mnas, synthetic_table(mnas), 1e9, "macs") is None


def test_the_whole_stages_pick_opens_every_stage_with_an_expansion_6_block():
    """``e6stages``: where ``e6only`` leaves a stage of several layers empty to spend the
    budget elsewhere, it opens that stage with an expansion-6 block instead, still under the
    target; where nothing else fits the DP may still skip (never over the target)."""
    from hwnas.search.confirm import capacity_arch
    from hwnas.space import get_space

    space = get_space("fbnet-small")
    table = synthetic_table(space, seed=3)
    lo, hi = table.bounds(space)
    firsts = [f"{st.name}.l0.op" for st in space.stages if st.layers > 1]

    def opener(arch, name):
        return space.choices[space.choice_index(name)].options[
            arch.choices[space.choice_index(name)]
        ]

    emptied = None
    for frac in (0.1, 0.2, 0.3, 0.4, 0.5):
        target = lo + frac * (hi - lo)
        plain = capacity_arch(space, table, target, "e6only")
        whole = capacity_arch(space, table, target, "e6stages")
        assert table.predict(whole, space) <= target
        assert all(opener(whole, n).endswith("_e6") for n in firsts)
        if any(opener(plain, n) == "skip" for n in firsts):
            emptied = frac
    assert emptied is not None  # the constraint mattered at some target
    assert capacity_arch(space, table, lo, "e6stages") is not None  # nothing fits: no error


def test_evolution_refuses_a_supernet_of_another_space(trained, tmp_path):
    out, _ = trained
    table = synthetic_table(OTHER)
    lo, hi = table.bounds(OTHER)
    with pytest.raises(SearchError, match="trained for"):
        search(
            EvolutionConfig(
                target_ms=hi, out=str(tmp_path / "x"), space=OTHER.name, supernet=str(out)
            ),
            table=table,
            space=OTHER,
        )
    assert not (tmp_path / "x").exists()


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    """Evolution without a supernet, a folder that is not one, and an evolution flag for
    another strategy: exit 2, one line, nothing written."""
    from hwnas.cli import main
    from hwnas.space import get_space

    monkeypatch.setenv("HWNAS_NO_PROGRESS", "1")
    table = synthetic_table(get_space("fbnet-small")).save(tmp_path / "t.csv")
    base = ["search", "--table", str(table), "--out", str(tmp_path / "run")]
    for extra, said in (
        (["--strategy", "evolution"], "needs --supernet"),
        (["--strategy", "evolution", "--supernet", str(tmp_path)], "not a supernet folder"),
        (["--supernet", str(tmp_path)], "not a supernet folder"),
        (
            ["--strategy", "mnasnet", "--space", "fbnet-small", "--supernet", str(tmp_path)],
            "go together",
        ),
        (
            ["--strategy", "mnasnet", "--space", "fbnet-small", "--confirm", "2"],
            "--confirm: only for --strategy fbnet or evolution",
        ),
        (["--confirm-images", "1"], "--confirm-images must be 0 (all) or at least 2"),
        (["--target-ms", "inf"], "positive finite numbers"),
        (["--target-ms", "0.3,x"], "positive finite numbers"),
        (["--target-ms", "0.3,0.4"], "only for --strategy evolution"),
    ):
        target = [] if "--target-ms" in extra else ["--target-frac", "0.6"]
        with pytest.raises(SystemExit) as e:
            main(base + target + extra)
        err = capsys.readouterr().err
        assert e.value.code == 2 and said in err, err
        assert err.strip().splitlines()[-1].startswith("error:")
        assert not (tmp_path / "run").exists()


def test_several_targets_on_one_supernet_draw_a_front(trained, tmp_path):
    from hwnas.search.evolution import search_targets

    out, _ = trained
    table = synthetic_table(SPACE)
    lo, hi = table.bounds(SPACE)
    targets = [lo + f * (hi - lo) for f in (0.3, 0.7)]
    with pytest.raises(SearchError, match="below the fastest"):
        search_targets(_evo(tmp_path / "bad", out, 1.0), [targets[0], lo / 2], table, SPACE)
    assert not (tmp_path / "bad").exists()
    recs = search_targets(_evo(tmp_path / "f", out, 1.0), targets, table, SPACE)
    assert [r.target_ms for r in recs] == targets
    assert all(r.predicted_ms <= r.target_ms for r in recs)
    front = json.loads((tmp_path / "f" / "front.json").read_text())
    assert len(front) == 2 and (tmp_path / "f" / "front.png").exists()
    assert all((tmp_path / "f" / f"t{t:g}ms" / "arch.json").exists() for t in targets)


def test_cli_several_targets(trained, tmp_path, capsys, monkeypatch):
    """`hwnas search --strategy evolution --target-ms a,b`: one folder per target and the
    front, through the command a user types (its multi-target branch once failed to import)."""
    from hwnas.cli import main
    from hwnas.space import catalog

    monkeypatch.setenv("HWNAS_NO_PROGRESS", "1")
    monkeypatch.setitem(catalog.SPACES, SPACE.name, lambda **_: SPACE)
    out, _ = trained
    table = synthetic_table(SPACE)
    lo, hi = table.bounds(SPACE)
    targets = [round(lo + f * (hi - lo), 4) for f in (0.4, 0.8)]
    path = table.save(tmp_path / "t.csv")
    run = tmp_path / "run"
    argv = ["search", "--strategy", "evolution", "--supernet", str(out), "--table", str(path)]
    argv += ["--space", SPACE.name]
    argv += ["--target-ms", ",".join(map(str, targets)), "--population", "4"]
    with pytest.raises(SystemExit) as e:
        main(argv + ["--generations", "1", "--out", str(run)])
    assert e.value.code == 0
    assert "accuracy-latency front of 2 targets" in capsys.readouterr().out
    assert (run / "front.png").exists() and len(json.loads((run / "front.json").read_text())) == 2
    for t in targets:
        rec = json.loads((run / f"t{t:g}ms" / "arch.json").read_text())
        assert rec["predicted_ms"] <= t


def test_mnasnet_controller_scored_by_the_trained_supernet(trained, tmp_path):
    """MnasNet's controller with ``evaluator="supernet"``: every trial scored by the trained
    supernet (BN re-estimated), rewards recorded per batch, the winner under the target."""
    from hwnas.search.mnasnet import MnasConfig, search as mnas_search

    out, _ = trained
    table = synthetic_table(SPACE)
    lo, hi = table.bounds(SPACE)
    target = lo + 0.5 * (hi - lo)
    cfg = MnasConfig(
        target_ms=target,
        out=str(tmp_path / "m"),
        space=SPACE.name,
        evaluator="supernet",
        supernet=str(out),
        trials=8,
        batch=4,
    )
    rec = mnas_search(cfg, table=table, space=SPACE)
    assert rec.predicted_ms <= target
    summary = (tmp_path / "m" / "summary.md").read_text()
    assert "trained supernet" in summary, summary[:500]
    with pytest.raises(SearchError, match="go together"):
        mnas_search(
            MnasConfig(
                target_ms=target, out=str(tmp_path / "n"), space=SPACE.name, evaluator="supernet"
            ),
            table=table,
            space=SPACE,
        )
    assert not (tmp_path / "n").exists()


def test_parents_default_to_at_most_the_population():
    small = EvolutionConfig(target_ms=1.0, out="x", supernet="s", population=4)
    assert small.parents == 4
    assert EvolutionConfig(target_ms=1.0, out="x", supernet="s").parents == 6
    with pytest.raises(SearchError, match="--parents must be in 1..population"):
        EvolutionConfig(target_ms=1.0, out="x", supernet="s", population=4, parents=7)


def test_fbnet_on_a_trained_supernet_learns_theta_alone_on_its_held_out_split(trained, tmp_path):
    """FBNet started from a trained supernet leaves its weights as trained (θ alone learns,
    on the supernet's held-out images) unless told to tune them; the winner's score is the
    trained supernet's own held-out accuracy of that path."""
    from hwnas.search.fbnet import FBNetConfig
    from hwnas.search.fbnet import search as fbnet_search

    out, _ = trained
    table = synthetic_table(SPACE)
    lo, hi = table.bounds(SPACE)
    target = lo + 0.5 * (hi - lo)

    def run(name, **kw):
        cfg = FBNetConfig(
            target_ms=target,
            out=str(tmp_path / name),
            space=SPACE.name,
            supernet=str(out),
            epochs=2,
            warmup_epochs=0,
            select=4,
            refine=1,
            **kw,
        )
        assert cfg.mode == "hard"  # auto: a supernet's single paths, not the soft mixture
        rec = fbnet_search(cfg, table=table, space=SPACE)
        return rec, torch.load(tmp_path / name / "ckpt.pt", weights_only=True)

    trained_net, _, splits = open_supernet(out, SPACE, "fashion-mnist")
    rec, ckpt = run("frozen")
    assert rec.predicted_ms <= target
    start = trained_net.state_dict()
    assert all(torch.equal(start[k], v) for k, v in ckpt["net"].items() if k in start)
    assert any(t.abs().sum() > 0 for t in ckpt["theta"])  # θ moved from zero
    assert rec.extra["supernet"]["winner_acc"] == path_accuracy(
        trained_net, Arch.of(SPACE, rec.choices), splits, seed=0
    )
    _, tuned = run("tuned", tune_weights=True)
    assert any(not torch.equal(start[k], v) for k, v in tuned["net"].items() if k in start)
    # a supernet of other data: one line before anything is written
    with pytest.raises(SearchError, match="trained on fashion-mnist, not cifar10"):
        run("other-data", data="cifar10")
    assert not (tmp_path / "other-data").exists()
