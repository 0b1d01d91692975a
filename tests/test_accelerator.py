"""--accelerator: resolution, the CPU path unchanged, checkpoints that move between devices."""

from __future__ import annotations

import io
import math
import zipfile

import pytest
import torch
from torch import nn

from hwnas.accelerator import Accelerator, present, resolve, to_cpu
from hwnas.cli import main
from hwnas.data.splits import DataSplits, ImageDataset
from hwnas.errors import HwnasError
from hwnas.train import (
    CHECKPOINT,
    TrainConfig,
    _seed_everything,
    config_changes,
    make_optimizer,
    make_scheduler,
    nhwc,
    train,
)

cpu_only = pytest.mark.skipif(present() != ["cpu"], reason="this machine has a GPU")


def toy_splits(n=160, seed=0) -> DataSplits:
    """4 classes of 3x16x16 noise with one bright quadrant per class."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    images = (torch.rand(n, 3, 16, 16, generator=g) * 60).to(torch.uint8)
    for i, c in enumerate(labels.tolist()):
        r, q = divmod(c, 2)
        images[i, :, r * 8 : r * 8 + 8, q * 8 : q * 8 + 8] += 150
    ds = ImageDataset(images, labels, (0.4, 0.4, 0.4), (0.3, 0.3, 0.3), 3)
    cut = int(0.75 * n)
    return DataSplits(
        train=ds.subset(range(cut)),
        val=ds.subset(range(cut, n)),
        test=ds.subset(range(cut, n)),
        classes=[str(i) for i in range(4)],
        mean=(0.4,) * 3,
        std=(0.3,) * 3,
    )


def tiny(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, 2, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    )


# --------------------------------------------------------------------------- resolving


@cpu_only
def test_auto_is_the_cpu_here_and_says_so(capsys):
    acc = resolve("auto")
    assert (acc.name, acc.device, acc.amp_dtype, acc.pin_memory) == (
        "cpu",
        torch.device("cpu"),
        None,
        False,
    )
    err = capsys.readouterr().err.splitlines()
    assert err == ["accelerator: cpu, float32 (no CUDA or MPS found)"]
    assert resolve("cpu", say=True).name == "cpu" and capsys.readouterr().err == ""


@cpu_only
def test_absent_accelerator_is_one_line():
    with pytest.raises(HwnasError) as e:
        resolve("cuda")
    assert str(e.value) == (
        "--accelerator cuda: CUDA is not available on this machine (present: cpu)"
    )
    with pytest.raises(HwnasError, match="choose one of auto, cpu, cuda, mps"):
        resolve("tpu")


def test_policies():
    """bf16 autocast on a GPU that has it, fp16 + scaler otherwise, nothing on the CPU
    (the policies, read without a GPU)."""
    assert Accelerator.for_device("cpu").autocast().__class__.__name__ == "nullcontext"
    assert Accelerator.for_device("cpu").scaler() is None
    mps = Accelerator.for_device("mps")
    assert (mps.amp_dtype, mps.needs_scaler, mps.pin_memory) == (torch.float16, True, False)
    state = to_cpu({"a": [torch.ones(2)], "b": (1, torch.zeros(1))})
    assert state["a"][0].device.type == "cpu" and state["b"][0] == 1


@cpu_only
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "nope.json", "--out", "{tmp}/run"],
        ["supernet", "train", "--out", "{tmp}/sn"],
        ["export", "nope.json", "--out", "{tmp}/exp"],
    ],
)
def test_cli_cuda_absent_is_one_line(capsys, tmp_path, argv):
    args = [a.format(tmp=tmp_path) for a in argv] + ["--accelerator", "cuda"]
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert (
        err == "error: --accelerator cuda: CUDA is not available on this machine (present: cpu)\n"
    )
    assert not any(tmp_path.iterdir())  # nothing created


# --------------------------------------------------------------------------- the trainer


def _old_trainer_first_epoch(model, splits, cfg):
    """The trainer's first epoch as it was before --accelerator (commit 9c93bdb): plain
    float32 on the CPU, channels-last, the same seeds, optimiser, schedule and batches."""
    _seed_everything(cfg.seed)
    nhwc(model)
    steps = math.ceil(len(splits.train) / cfg.batch_size)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    model.train()
    loss_sum, seen = 0.0, 0
    loader = splits.loader(
        "train", cfg.batch_size, shuffle=True, augment=True, seed=cfg.seed * 100_003
    )
    for x, y in loader:
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += float(loss.detach()) * len(y)
        seen += len(y)
    return loss_sum / seen, model.state_dict()


@pytest.mark.parametrize("accelerator", ["cpu", "auto"])
def test_cpu_step_gives_the_loss_of_the_old_code(accelerator):
    if accelerator == "auto" and present() != ["cpu"]:
        pytest.skip("auto is a GPU here")
    splits = toy_splits()
    cfg = TrainConfig(epochs=2, batch_size=40, lr=0.05, seed=3, label_smoothing=0.1)
    want_loss, want_state = _old_trainer_first_epoch(tiny(), splits, cfg)
    model = tiny()
    run = TrainConfig(**{**cfg.__dict__, "accelerator": accelerator})
    result = train(model, splits, run, progress=False, stop_after_epoch=1)
    assert result.history[0]["train_loss"] == want_loss  # bit-identical, not close
    got = model.state_dict()
    assert all(torch.equal(got[k], want_state[k]) for k in want_state)


def test_accelerator_is_free_to_change_on_resume():
    saved = {**TrainConfig(epochs=2).__dict__, "accelerator": "cuda"}
    assert config_changes(saved, TrainConfig(epochs=2, accelerator="cpu")) == []
    old = {k: v for k, v in saved.items() if k != "accelerator"}  # written before the field
    assert config_changes(old, TrainConfig(epochs=2)) == []


def as_if_written_on_cuda(path) -> None:
    """Rewrite a checkpoint's storage locations to ``cuda:0``: what a run on a GPU leaves
    when its tensors are not moved first.  Such a file loads here only with
    ``map_location``."""
    zin = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name in zin.namelist():
            data = zin.read(name)
            if name.endswith("data.pkl"):
                assert b"X\x03\x00\x00\x00cpu" in data
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            z.writestr(name, data)
    path.write_bytes(out.getvalue())


def test_checkpoint_resumes_across_a_device_change(tmp_path):
    """A run stopped after epoch 1, its checkpoint made to look written on a GPU, resumes on
    the CPU through map_location to the weights of an uninterrupted run."""
    splits = toy_splits()
    cfg = TrainConfig(epochs=2, batch_size=40, lr=0.05, seed=1)
    whole = tiny()
    train(whole, splits, cfg, tmp_path / "whole", progress=False)

    train(tiny(), splits, cfg, tmp_path / "split", progress=False, stop_after_epoch=1)
    ckpt = tmp_path / "split" / CHECKPOINT
    as_if_written_on_cuda(ckpt)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(ckpt, weights_only=True)  # the simulation is real: needs map_location
    resumed = tiny(seed=7)  # other initial weights: everything must come from the checkpoint
    result = train(resumed, splits, cfg, tmp_path / "split", resume=True, progress=False)
    assert [r["epoch"] for r in result.history] == [1, 2]
    want = whole.state_dict()
    assert all(torch.equal(resumed.state_dict()[k], want[k]) for k in want)
    # what the trainer writes holds CPU tensors: it loads anywhere without map_location
    state = torch.load(tmp_path / "split" / "model.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in state.values())


def test_supernet_checkpoint_resumes_across_a_device_change(tmp_path):
    """The supernet trainer: the same, on a generated image folder and a tiny space."""
    import json

    import numpy as np
    from PIL import Image

    from hwnas.supernet.store import CKPT
    from hwnas.supernet.train import SupernetConfig, train_supernet
    from spaces import tiny_space

    rng = np.random.default_rng(0)
    for c in ("a", "b", "c"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(16):
            arr = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / "data" / c / f"{i}.png")
    space = tiny_space("tiny-accel")

    def cfg(out, **kw):
        return SupernetConfig(
            out=str(tmp_path / out),
            space=space.name,
            data="folder",
            data_root=str(tmp_path / "data"),
            subset=None,
            epochs=2,
            batch_size=8,
            eval_paths=1,
            **kw,
        )

    whole = train_supernet(cfg("whole"), space, progress=False)
    assert train_supernet(cfg("split"), space, stop_after_epochs=1, progress=False) is None
    as_if_written_on_cuda(tmp_path / "split" / CKPT)
    # resumed with another accelerator setting: allowed, it does not change the recipe
    split = train_supernet(cfg("split", resume=True, accelerator="auto"), space, progress=False)
    assert split["random_paths"] == whole["random_paths"]
    a = torch.load(tmp_path / "whole" / CKPT, weights_only=True)["net"]
    b = torch.load(tmp_path / "split" / CKPT, weights_only=True)["net"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "split" / "config.json").read_text())["accelerator"] == "auto"


def test_supernet_templates_follow_the_supernet_to_another_device():
    """The supernet keeps its per-shape templates (their BatchNorm buffers run in every
    path) outside the module tree: ``.to(device)`` must move those made so far and new ones
    must be made there.  The ``meta`` device stands in for a GPU (a CPU buffer in a meta
    forward fails as it would on CUDA)."""
    from hwnas.supernet import FBNetSupernet
    from hwnas.supernet.train import uniform_path
    from spaces import tiny_space

    space = tiny_space("tiny-accel-meta")
    net = FBNetSupernet(space)
    gen = torch.Generator().manual_seed(0)
    seen = uniform_path(space, gen)
    net(torch.randn(2, 3, 8, 8), seen)  # makes templates on the CPU
    net.to("meta")
    assert {b.device.type for t in net._templates.values() for b in t.buffers()} == {"meta"}
    x = torch.empty(2, 3, 8, 8, device="meta")
    for arch in (seen, uniform_path(space, gen), uniform_path(space, gen)):  # old and new
        logits, mse = net.forward_anchored(x, arch, 0.5, gen)
        assert logits.device.type == mse.device.type == "meta" and logits.shape == (2, 3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_precision_path_runs_with_a_cpu_stand_in(monkeypatch, tmp_path, dtype):
    """The GPU-only branches (autocast; for fp16 the grad scaler, saved and resumed) run
    here with CPU autocast standing in for the GPU's: losses near float32's, not equal."""
    import hwnas.train

    fake = Accelerator("cpu", torch.device("cpu"), dtype)
    splits = toy_splits()
    cfg = TrainConfig(epochs=2, batch_size=40, lr=0.05, seed=2)
    plain = train(tiny(), splits, cfg, progress=False, stop_after_epoch=1).history[0]
    monkeypatch.setattr(hwnas.train, "resolve", lambda name, say=True: fake)
    out = tmp_path / "run"
    first = train(tiny(), splits, cfg, out, progress=False, stop_after_epoch=1).history[0]
    assert first["train_loss"] != plain["train_loss"]
    assert abs(first["train_loss"] - plain["train_loss"]) < 0.02
    state = torch.load(out / CHECKPOINT, weights_only=True)
    assert ("scaler" in state) == (dtype == torch.float16)
    result = train(tiny(), splits, cfg, out, resume=True, progress=False)
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert all(math.isfinite(r["train_loss"]) for r in result.history)


def test_supernet_weight_step_with_autocast_and_scaler():
    from hwnas.supernet import FBNetSupernet
    from hwnas.supernet.train import uniform_path, weight_step
    from spaces import tiny_space

    space = tiny_space("tiny-accel-amp")
    torch.manual_seed(0)
    net = FBNetSupernet(space)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))
    fake = Accelerator("cpu", torch.device("cpu"), torch.float16)
    before = [p.detach().clone() for p in net.parameters()]
    loss, mse, correct = weight_step(
        net, opt, x, y, uniform_path(space, gen), 0.5, gen, acc=fake, scaler=fake.scaler()
    )
    assert math.isfinite(loss) and math.isfinite(mse) and 0 <= correct <= 8
    assert any(not torch.equal(a, p) for a, p in zip(before, net.parameters()))
