"""The trainer: a real small model learns on Fashion-MNIST; resume is exact; files and errors."""

from __future__ import annotations

import csv

import math

import pytest
import torch
from torch import nn

from hwnas.data import load_dataset
from hwnas.data.readers import FASHION_MNIST_DIR
from hwnas.errors import HwnasError
from hwnas.train import (
    TrainConfig,
    config_changes,
    evaluate,
    load_checkpoint,
    make_optimizer,
    make_scheduler,
    train,
)

pytestmark = pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="Fashion-MNIST missing")


@pytest.fixture(scope="module")
def splits():
    s = load_dataset("fashion-mnist", subset=512, seed=0)
    return s.with_test(s.test.subset(range(256)))


def tiny(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, 2, 1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def test_loss_decreases(splits, tmp_path):
    model = tiny()
    before, _ = evaluate(model, splits.loader("train", 256, augment=False))
    cfg = TrainConfig(epochs=6, batch_size=32, lr=0.1, label_smoothing=0.1)
    result = train(model, splits, cfg, tmp_path, progress=False)
    after, acc = evaluate(model, splits.loader("train", 256, augment=False))
    assert after < before - 0.5 and acc > 0.35, (before, after, acc)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert 0 <= result.test_acc <= 1 and result.val_acc == result.history[-1]["val_acc"]
    assert {p.name for p in tmp_path.iterdir()} >= {
        "checkpoint.pt",
        "log.csv",
        "model.pt",
        "result.json",
    }
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    fresh = tiny(1)
    fresh.load_state_dict(state)
    assert all(
        torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values())
    )


def test_training_scored_on_val_can_skip_the_test_set(splits):
    """``test=False`` (the confirmation's and MnasNet's children's trainings): the same
    weights and validation accuracy, and no pass over the test set."""
    cfg = TrainConfig(epochs=1, batch_size=64, seed=0)
    a, b = tiny(), tiny()
    with_test = train(a, splits, cfg, progress=False)
    without = train(b, splits, cfg, progress=False, test=False)
    assert without.val_acc == with_test.val_acc and not math.isnan(with_test.test_acc)
    assert math.isnan(without.test_acc)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_resume_is_exact(splits, tmp_path, schedule):
    cfg = TrainConfig(epochs=2, batch_size=64, schedule=schedule, warmup_epochs=0.5)
    whole = tiny()
    full = train(whole, splits, cfg, tmp_path / "a", progress=False)
    first = train(tiny(), splits, cfg, tmp_path / "b", progress=False, stop_after_epoch=1)
    assert len(first.history) == 1
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1
    resumed_model = tiny(seed=9)  # different init: everything must come from the checkpoint
    resumed = train(resumed_model, splits, cfg, tmp_path / "b", resume=True, progress=False)
    for (k, a), b in zip(whole.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), k
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in full.history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history]
    assert full.test_acc == resumed.test_acc


def test_resume_with_other_settings_is_refused(splits, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=128)
    train(tiny(), splits, cfg, tmp_path, progress=False, stop_after_epoch=1)
    with pytest.raises(HwnasError) as e:
        train(
            tiny(),
            splits,
            TrainConfig(epochs=2, batch_size=64),
            tmp_path,
            resume=True,
            progress=False,
        )
    assert str(e.value) == (
        f"{tmp_path / 'checkpoint.pt'}: written with different settings "
        "(batch_size: 128 -> 64); resume with the same settings or use a "
        "new --out"
    )


def test_bad_checkpoint(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(HwnasError, match="not a readable hwnas checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"epochs": 0}, "epochs must be at least 1, got 0"),
        ({"schedule": "step"}, "unknown schedule 'step'; choose one of cosine, onecycle"),
        ({"warmup_epochs": 3}, "warmup_epochs must be in [0, epochs=3), got 3"),
        ({"momentum": 0.0}, "nesterov needs momentum > 0"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(HwnasError) as e:
        TrainConfig(**kwargs)
    assert str(e.value) == message


def test_config_changes_names_what_changed_and_ignores_threads():
    import dataclasses

    saved = dataclasses.asdict(TrainConfig(epochs=3, lr=0.1, threads=2))
    assert config_changes(saved, TrainConfig(epochs=3, lr=0.1, threads=1)) == []
    assert config_changes(saved, TrainConfig(epochs=4, lr=0.05)) == [
        "epochs: 3 -> 4",
        "lr: 0.1 -> 0.05",
    ]
    # a result written before a field existed counts as different, never as the same
    assert config_changes({"epochs": 3}, TrainConfig(epochs=3)) != []


def test_channels_last_layout_computes_the_same_and_is_undone_after_training(splits):
    """train() runs in NHWC (faster convolutions on this CPU) and hands back a model in the
    default layout whose outputs are those of an NCHW copy of it."""
    from hwnas.space import build_model, get_space, reference_arch
    from hwnas.train import nhwc

    space = get_space("fbnet-small")
    torch.manual_seed(0)
    model = build_model(space, reference_arch(space, "mobilenetv2")).eval()
    x = torch.randn(4, 3, 32, 32)
    want = model(x)
    fast = nhwc(build_model(space, reference_arch(space, "mobilenetv2")).eval())
    fast.load_state_dict(model.state_dict())
    assert fast[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(x), want, atol=1e-5, rtol=1e-4)

    m = tiny()
    train(m, splits, TrainConfig(epochs=1, batch_size=128), progress=False)
    convs = [p for p in m.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous() for p in convs)


def test_the_default_recipe_warms_the_learning_rate_up_then_decays_it():
    """lr 0.1 from the first step swung a 4-epoch run by up to 3 points between seeds: by
    default the rate ramps up linearly over the first 0.3 epoch, peaks at ``lr``, then
    follows the cosine down to 0."""
    cfg = TrainConfig(epochs=4)
    model = tiny()
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch=100)
    lrs = []
    for _ in range(400):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(cfg.lr / 30)
    assert lrs[:30] == sorted(lrs[:30]) and lrs[29] == pytest.approx(cfg.lr)
    assert lrs[30:] == sorted(lrs[30:], reverse=True) and lrs[-1] < cfg.lr / 1000
