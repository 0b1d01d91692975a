"""Image folders read lazily (DataLoader workers) against the in-memory path, on generated
JPEG trees with a corrupt file and a non-image file among them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hwnas.data import load_dataset
from hwnas.data.folder import FolderDataset
from hwnas.data.splits import ImageDataset
from hwnas.errors import HwnasError

CLASSES = ("ant", "bee", "cat")


def jpeg_tree(root, per_class: int, sizes=((224, 224), (256, 224), (224, 288))):
    """``per_class`` JPEGs per class (square and not), smooth enough to compress like photos."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1:320j, 0:1:320j]
    base = np.stack([xx, yy, (xx + yy) / 2], -1) * 160
    noise = rng.integers(0, 40, (320, 320, 3))
    for k, c in enumerate(CLASSES):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            dy, dx = rng.integers(0, 320 - h + 1), rng.integers(0, 320 - w + 1)
            arr = base[:h, :w] + noise[dy : dy + h, dx : dx + w] + 30 * k
            Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(
                root / c / f"{i:03d}.jpg", quality=85
            )
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = jpeg_tree(tmp_path_factory.mktemp("jpegs") / "photos", per_class=100)
    (root / "bee" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a JPEG at all" * 10)
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_lazy_folder_yields_the_in_memory_images(tree, capsys):
    mem = load_dataset("folder", tree, resolution=224, seed=1, lazy=False)
    err = capsys.readouterr().err
    lazy = load_dataset("folder", tree, resolution=224, seed=1, lazy=True)
    assert err.count("warning:") == 1 and "skipped 2 of 302 files" in err
    assert capsys.readouterr().err == err  # the same single warning, from the index
    assert isinstance(mem.train, ImageDataset) and isinstance(lazy.train, FolderDataset)
    assert (lazy.classes, lazy.mean, lazy.std) == (mem.classes, mem.mean, mem.std)
    assert [len(getattr(lazy, s)) for s in ("train", "val", "test")] == [
        len(getattr(mem, s)) for s in ("train", "val", "test")
    ]
    assert sum(len(getattr(lazy, s)) for s in ("train", "val", "test")) == 300
    for split in ("train", "val", "test"):  # the same batches, shuffled or not, bit for bit
        shuffle = split == "train"
        a = list(mem.loader(split, 64, shuffle=shuffle, augment=False, seed=4))
        b = list(lazy.loader(split, 64, shuffle=shuffle, augment=False, seed=4))
        assert len(a) == len(b)
        for (xa, ya), (xb, yb) in zip(a, b):
            assert torch.equal(ya, yb) and torch.equal(xa, xb)
    assert torch.equal(lazy.calibration(10, seed=2), mem.calibration(10, seed=2))
    assert lazy.train[3][0].shape == (3, 224, 224)


def test_training_crops_are_seeded_and_independent_of_workers(tree):
    lazy = load_dataset("folder", tree, resolution=64, seed=0, subset=48, lazy=True)
    with_workers = load_dataset(
        "folder", tree, resolution=64, seed=0, subset=48, lazy=True, workers=2
    )
    a = list(lazy.loader("train", 16, seed=9))
    b = list(with_workers.loader("train", 16, seed=9))
    assert [len(y) for _, y in a] == [16, 16, 6]
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    other = list(lazy.loader("train", 16, seed=10))
    assert not torch.equal(a[0][0], other[0][0])
    plain = list(lazy.loader("train", 16, seed=9, augment=False))
    assert torch.equal(a[0][1], plain[0][1]) and not torch.equal(a[0][0], plain[0][0])


def test_undecodable_file_mid_epoch_is_skipped_with_one_warning(tmp_path, capsys):
    root = jpeg_tree(tmp_path / "t", per_class=6, sizes=((96, 96),))
    good = (root / "ant" / "000.jpg").read_bytes()
    (root / "ant" / "zz_truncated.jpg").write_bytes(good[: len(good) * 2 // 3])  # header fine
    splits = load_dataset(
        "folder", root, resolution=32, seed=0, val_fraction=0.0, lazy=True, workers=1
    )
    assert capsys.readouterr().err == ""  # its header reads: nothing to say yet
    n = len(splits.train) + len(splits.test)
    assert n == 19
    seen = 0
    for _ in range(2):  # two epochs: still one warning
        for split in ("train", "test"):
            seen += sum(len(y) for _, y in splits.loader(split, 4, seed=1))
    assert seen == 2 * 18
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "zz_truncated.jpg could not be decoded" in err


def test_train_and_val_subfolders(tmp_path):
    jpeg_tree(tmp_path / "inet" / "train", per_class=4, sizes=((40, 40),))
    jpeg_tree(tmp_path / "inet" / "val", per_class=2, sizes=((40, 40),))
    for lazy in (False, True):
        s = load_dataset("folder", tmp_path / "inet", resolution=32, val_fraction=0.25, lazy=lazy)
        assert (len(s.train), len(s.val), len(s.test)) == (9, 3, 6)
        assert s.classes == list(CLASSES)


def test_trainer_runs_on_a_lazy_folder(tmp_path):
    from hwnas.space import build_model, get_space, reference_arch
    from hwnas.train import TrainConfig, train

    root = jpeg_tree(tmp_path / "t", per_class=8, sizes=((40, 40),))
    splits = load_dataset("folder", root, resolution=32, seed=0, lazy=True)
    space = get_space("fbnet-small", num_classes=3)
    model = build_model(space, reference_arch(space, "mobilenetv2"))
    result = train(model, splits, TrainConfig(epochs=1, batch_size=8), progress=False)
    assert np.isfinite(result.history[0]["train_loss"]) and 0 <= result.test_acc <= 1


def test_folder_bad_input_is_one_line(tmp_path):
    jpeg_tree(tmp_path / "one", per_class=2, sizes=((20, 20),))
    for c in CLASSES[1:]:
        for f in (tmp_path / "one" / c).iterdir():
            f.unlink()
        (tmp_path / "one" / c).rmdir()
    with pytest.raises(HwnasError) as e:
        load_dataset("folder", tmp_path / "one")
    assert str(e.value) == (
        f"{tmp_path / 'one'}: only one class subfolder (ant); a classifier needs at least two"
    )
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(HwnasError, match="no images found"):
        load_dataset("folder", tmp_path / "flat")
    with pytest.raises(HwnasError, match="workers must be at least 0"):
        load_dataset("folder", tmp_path / "flat", workers=-1)
