"""Raw dataset readers: Fashion-MNIST IDX (.gz), CIFAR-10 binary batches, image folders.

Each reader returns ``Raw`` arrays: uint8 images (N, C, H, W) at their stored size, int64
labels (N,), and class names.  Every malformed input raises ``HwnasError`` with one line.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hwnas.errors import HwnasError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte + 32x32 RGB planes
CIFAR_TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Raw:
    """Images (N, C, H, W) uint8 and labels (N,) int64 of one split."""

    images: torch.Tensor
    labels: torch.Tensor


def require_dir(root: Path, what: str, hint: str = "") -> Path:
    if not root.is_dir():
        raise HwnasError(f"{what}: {root} is not a directory{hint}")
    return root


# --------------------------------------------------------------------------- IDX


def fashion_mnist(root: Path | None) -> tuple[Raw, Raw, list[str]]:
    """Fashion-MNIST train and test splits from its four IDX files (gzipped or not)."""
    hint = "" if root else " (install it: apt-get install dataset-fashion-mnist)"
    root = require_dir(Path(root) if root else FASHION_MNIST_DIR, "fashion-mnist", hint)
    splits = []
    for prefix in ("train", "t10k"):
        images = read_idx(_idx_file(root, f"{prefix}-images-idx3-ubyte"), IDX_IMAGES_MAGIC)
        labels_path = _idx_file(root, f"{prefix}-labels-idx1-ubyte")
        labels = read_idx(labels_path, IDX_LABELS_MAGIC)
        if len(labels) != len(images):
            raise HwnasError(f"{labels_path}: {len(labels)} labels for {len(images)} images")
        splits.append(Raw(torch.from_numpy(images).unsqueeze(1), _labels(labels, 10, labels_path)))
    return splits[0], splits[1], list(FASHION_MNIST_CLASSES)


def _idx_file(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    raise HwnasError(f"{root / (stem + '.gz')}: no such file")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX array of unsigned bytes; ``magic`` is the expected type/dimension word."""
    data = _read_maybe_gzip(path)
    if len(data) < 4:
        raise HwnasError(f"{path}: truncated: {len(data)} bytes, not even an IDX header")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise HwnasError(
            f"{path}: not an IDX file of the expected kind "
            f"(magic 0x{found:08x}, expected 0x{magic:08x})"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise HwnasError(f"{path}: truncated: {len(data)} bytes, header needs {header}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    need = int(np.prod(shape))
    if len(data) - header != need:
        raise HwnasError(
            f"{path}: truncated: {len(data) - header} data bytes, "
            f"shape {'x'.join(map(str, shape))} needs {need}"
        )
    return np.frombuffer(data, np.uint8, need, header).reshape(shape).copy()


def _read_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    if not path.name.endswith(".gz"):
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise HwnasError(f"{path}: truncated: the gzip stream ends early") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise HwnasError(f"{path}: not a readable gzip file ({e})") from None


def _labels(values: np.ndarray, num_classes: int, path: Path) -> torch.Tensor:
    labels = torch.from_numpy(values.astype(np.int64))
    if len(labels) and int(labels.max()) >= num_classes:
        raise HwnasError(f"{path}: label {int(labels.max())} is out of range 0..{num_classes - 1}")
    return labels


# --------------------------------------------------------------------------- CIFAR-10


def cifar10(root: Path) -> tuple[Raw, Raw, list[str]]:
    """CIFAR-10 binary version: ``data_batch_1..5.bin``, ``test_batch.bin``,
    ``batches.meta.txt``; ``root`` is that folder or its parent (``cifar-10-batches-bin``)."""
    root = require_dir(Path(root), "cifar10")
    if not (root / "test_batch.bin").exists() and (root / "cifar-10-batches-bin").is_dir():
        root = root / "cifar-10-batches-bin"
    meta = root / "batches.meta.txt"
    if not meta.is_file():
        raise HwnasError(f"{meta}: no such file (expected the CIFAR-10 binary version)")
    classes = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
    train = _concat([read_cifar_batch(root / name, len(classes)) for name in CIFAR_TRAIN])
    test = read_cifar_batch(root / "test_batch.bin", len(classes))
    return train, test, classes


def read_cifar_batch(path: Path, num_classes: int) -> Raw:
    if not path.is_file():
        raise HwnasError(f"{path}: no such file")
    data = path.read_bytes()
    if len(data) == 0 or len(data) % CIFAR_RECORD:
        raise HwnasError(
            f"{path}: truncated: {len(data)} bytes is not a whole number of "
            f"{CIFAR_RECORD}-byte records"
        )
    records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR_RECORD)
    images = torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).copy())
    return Raw(images, _labels(records[:, 0], num_classes, path))


def _concat(parts: list[Raw]) -> Raw:
    return Raw(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


# --------------------------------------------------------------------------- folders


def image_folder(
    root: Path, resolution: int, channels: int, seed: int, test_fraction: float = 0.2
) -> tuple[Raw, Raw, list[str]]:
    """Images in one subfolder per class.  With ``train/`` and ``test/`` subfolders those
    are the splits; otherwise a seeded ``test_fraction`` of the images becomes the test set.
    Images are converted to RGB (or L for one channel) and resized to ``resolution``."""
    root = require_dir(Path(root), "folder")
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = _class_dirs(root / "train")
        return (
            _read_tree(root / "train", classes, resolution, channels),
            _read_tree(root / "test", classes, resolution, channels),
            classes,
        )
    classes = _class_dirs(root)
    raw = _read_tree(root, classes, resolution, channels)
    perm = torch.randperm(len(raw.labels), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(test_fraction * len(perm)))
    test, train = perm[:n_test], perm[n_test:]
    return (
        Raw(raw.images[train], raw.labels[train]),
        Raw(raw.images[test], raw.labels[test]),
        classes,
    )


def _class_dirs(root: Path) -> list[str]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not any(_images_in(root / c) for c in classes):
        raise HwnasError(
            f"{root}: no images found (expected one subfolder per class "
            f"holding {'/'.join(sorted(IMAGE_SUFFIXES))} files)"
        )
    return classes


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_tree(root: Path, classes: list[str], resolution: int, channels: int) -> Raw:
    from PIL import Image, UnidentifiedImageError

    mode = {1: "L", 3: "RGB"}[channels]
    images, labels = [], []
    for label, cls in enumerate(classes):
        for path in _images_in(root / cls):
            try:
                with Image.open(path) as im:
                    im = im.convert(mode).resize((resolution, resolution), Image.BILINEAR)
                    arr = np.asarray(im, dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as e:
                raise HwnasError(f"{path}: not a readable image ({e})") from None
            images.append(arr.reshape(resolution, resolution, channels).transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise HwnasError(
            f"{root}: no images found (expected one subfolder per class "
            f"holding {'/'.join(sorted(IMAGE_SUFFIXES))} files)"
        )
    return Raw(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64))
