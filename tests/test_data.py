"""Data: the real Fashion-MNIST files, generated CIFAR-binary and image-folder trees, bad input."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from hwnas.data import augment_batch, load_dataset
from hwnas.data.readers import FASHION_MNIST_DIR
from hwnas.errors import HwnasError

needs_fmnist = pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="Fashion-MNIST not installed (make test installs it)"
)


@pytest.fixture(scope="module")
def fmnist():
    return load_dataset("fashion-mnist", subset=1000, seed=3)


@needs_fmnist
def test_fashion_mnist(fmnist):
    s = fmnist
    assert (len(s.train), len(s.val), len(s.test)) == (800, 200, 10_000)
    assert s.classes[:2] == ["T-shirt/top", "Trouser"] and len(s.classes) == 10
    x, y = s.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)
    assert torch.equal(x[0], x[1]) and torch.equal(x[0], x[2])  # grayscale replicated
    assert len(s.mean) == len(s.std) == 3
    # zero padding 28 → 32: the border is the normalised black level
    assert torch.allclose(x[:, :2, :], torch.full((3, 2, 32), -s.mean[0] / s.std[0]))
    # normalisation: the training split has mean ~0 and std ~1 per channel
    xb, _ = next(iter(s.loader("train", 800, augment=False)))
    assert abs(float(xb.mean())) < 1e-3 and abs(float(xb.std()) - 1) < 1e-2


@needs_fmnist
def test_splits_are_seeded_and_disjoint():
    a = load_dataset("fashion-mnist", subset=600, seed=1, val_fraction=0.25)
    b = load_dataset("fashion-mnist", subset=600, seed=1, val_fraction=0.25)
    c = load_dataset("fashion-mnist", subset=600, seed=2, val_fraction=0.25)
    assert (len(a.train), len(a.val)) == (450, 150)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels, b.val.labels)
    assert not torch.equal(a.train.images, c.train.images)
    train_rows = {bytes(x.numpy()) for x in a.train.images}
    assert not any(bytes(x.numpy()) in train_rows for x in a.val.images)


@needs_fmnist
def test_loader_and_calibration(fmnist):
    s = fmnist
    batches = list(s.loader("train", 128, seed=5))
    assert len(batches) == 7 and sum(len(y) for _, y in batches) == 800
    again = list(s.loader("train", 128, seed=5))
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(batches, again))
    other = next(iter(s.loader("train", 128, seed=6)))[0]
    assert not torch.equal(batches[0][0], other)
    xt, yt = next(iter(s.loader("test", 16)))  # test: in order, not augmented
    assert torch.equal(xt[3], s.test[3][0]) and int(yt[3]) == s.test[3][1]
    cal = s.calibration(32, seed=1)
    assert cal.shape == (32, 3, 32, 32) and torch.equal(cal, s.calibration(32, seed=1))
    with pytest.raises(HwnasError) as e:
        s.calibration(801)
    assert str(e.value) == "asked for 801 calibration images; the training split has 800"


def test_augment_is_crop_and_flip():
    x = torch.randint(0, 256, (64, 1, 6, 6), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = augment_batch(x, g)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    crops = [padded[:, :, i : i + 6, j : j + 6] for i in range(9) for j in range(9)]
    flipped = 0
    for n in range(64):
        plain = any(torch.equal(out[n], c[n]) for c in crops)
        mirrored = any(torch.equal(out[n], c[n].flip(-1)) for c in crops)
        assert plain or mirrored
        flipped += mirrored and not plain
    assert 10 < flipped < 54


# --------------------------------------------------------------------------- CIFAR-10 binary


def _cifar_tree(root, per_batch=6, classes=("airplane", "automobile", "bird")):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    (root / "batches.meta.txt").write_text("\n".join(classes) + "\n\n")
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, len(classes), per_batch, dtype=np.uint8)
        pixels = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        (root / name).write_bytes(np.concatenate([labels[:, None], pixels], 1).tobytes())
    return root


def test_cifar10_binary(tmp_path):
    root = _cifar_tree(tmp_path / "cifar-10-batches-bin")
    s = load_dataset("cifar10", tmp_path, val_fraction=0.2, seed=0)  # parent folder works too
    assert s.classes == ["airplane", "automobile", "bird"]
    assert (len(s.train), len(s.val), len(s.test)) == (24, 6, 6)
    raw = np.frombuffer((root / "test_batch.bin").read_bytes(), np.uint8).reshape(6, 3073)
    assert torch.equal(s.test.images[0], torch.from_numpy(raw[0, 1:].reshape(3, 32, 32).copy()))
    assert s.test[0][1] == int(raw[0, 0])
    s16 = load_dataset("cifar10", root, resolution=16, in_channels=1)
    x, _ = s16.train[0]
    assert x.shape == (1, 16, 16) and len(s16.mean) == 1


def test_cifar10_truncated(tmp_path):
    root = _cifar_tree(tmp_path / "c")
    path = root / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(HwnasError) as e:
        load_dataset("cifar10", root)
    assert str(e.value) == (
        f"{path}: truncated: 18428 bytes is not a whole number of 3073-byte records"
    )


# --------------------------------------------------------------------------- image folders


def _folder_tree(root, n=5, classes=("cat", "dog")):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")
    return root


def test_image_folder(tmp_path):
    root = _folder_tree(tmp_path / "imgs")
    (root / "notes.txt").write_text("not an image")
    s = load_dataset("folder", root, resolution=16, val_fraction=0.25, seed=0)
    assert s.classes == ["cat", "dog"]
    assert (len(s.train) + len(s.val), len(s.test)) == (8, 2)
    assert s.train[0][0].shape == (3, 16, 16)


def test_image_folder_with_train_and_test(tmp_path):
    _folder_tree(tmp_path / "t" / "train", n=4)
    _folder_tree(tmp_path / "t" / "test", n=2)
    s = load_dataset("folder", tmp_path / "t", resolution=12, val_fraction=0.0)
    assert (len(s.train), len(s.val), len(s.test)) == (8, 0, 4)


# --------------------------------------------------------------------------- bad input


def _idx_copy(tmp_path):
    """A Fashion-MNIST-shaped IDX tree with 5 train and 3 test images."""

    def images(n):
        return struct.pack(">IIII", 0x803, n, 28, 28) + bytes(n * 784)

    def labels(n):
        return struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n))

    for prefix, n in (("train", 5), ("t10k", 3)):
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images(n)))
        (tmp_path / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels(n)))
    return tmp_path


def _err(*args, **kwargs) -> str:
    with pytest.raises(HwnasError) as e:
        load_dataset(*args, **kwargs)
    return str(e.value)


def test_generated_idx_loads(tmp_path):
    s = load_dataset("fashion-mnist", _idx_copy(tmp_path), val_fraction=0.4)
    assert (len(s.train), len(s.val), len(s.test)) == (3, 2, 3)


def test_missing_directory(tmp_path):
    assert (
        _err("fashion-mnist", tmp_path / "nope")
        == f"fashion-mnist: {tmp_path / 'nope'} is not a directory"
    )
    assert _err("cifar10", tmp_path / "nope") == f"cifar10: {tmp_path / 'nope'} is not a directory"
    assert _err("folder", tmp_path / "nope") == f"folder: {tmp_path / 'nope'} is not a directory"


def test_missing_file(tmp_path):
    root = _idx_copy(tmp_path)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    assert _err("fashion-mnist", root) == f"{root / 't10k-labels-idx1-ubyte.gz'}: no such file"


def test_wrong_idx_magic(tmp_path):
    root = _idx_copy(tmp_path)
    # labels where images belong
    shutil.copy(root / "train-labels-idx1-ubyte.gz", root / "train-images-idx3-ubyte.gz")
    assert _err("fashion-mnist", root) == (
        f"{root / 'train-images-idx3-ubyte.gz'}: not an IDX file of the expected kind "
        "(magic 0x00000801, expected 0x00000803)"
    )


def test_truncated_idx(tmp_path):
    root = _idx_copy(tmp_path)
    path = root / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-100]))
    assert _err("fashion-mnist", root) == (
        f"{path}: truncated: 3820 data bytes, shape 5x28x28 needs 3920"
    )
    path.write_bytes(gzip.compress(data)[:-30])  # the gzip stream itself cut short
    assert _err("fashion-mnist", root) == f"{path}: truncated: the gzip stream ends early"


def test_mismatched_label_count(tmp_path):
    root = _idx_copy(tmp_path)
    path = root / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">II", 0x801, 4) + bytes(4)))
    assert _err("fashion-mnist", root) == f"{path}: 4 labels for 3 images"


def test_folder_without_images(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "cat" / "readme.txt").write_text("x")
    assert _err("folder", tmp_path / "empty") == (
        f"{tmp_path / 'empty'}: no images found (expected one subfolder per class holding "
        ".bmp/.gif/.jpeg/.jpg/.png/.tif/.tiff/.webp files)"
    )


def test_bad_arguments(tmp_path):
    assert _err("mnist") == "unknown dataset 'mnist'; choose one of fashion-mnist, cifar10, folder"
    assert _err("cifar10") == "dataset cifar10 needs a root folder (--data-root)"
    assert (
        _err("fashion-mnist", _idx_copy(tmp_path), val_fraction=1.0)
        == "val_fraction must be in [0, 1), got 1.0"
    )
