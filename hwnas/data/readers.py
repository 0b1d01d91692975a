"""Raw dataset readers: Fashion-MNIST IDX (.gz), CIFAR-10 binary batches, image folders.

Each reader returns ``Raw`` arrays: uint8 images (N, C, H, W) at their stored size, int64
labels (N,), and class names.  Every malformed input raises ``HwnasError`` with one line.
"""

from __future__ import annotations

import gzip
import logging
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hwnas.errors import HwnasError

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Files:
    """The image files of one split of a folder dataset and their labels (not decoded)."""

    paths: list[Path]
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, indices) -> "Files":
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return Files([self.paths[i] for i in idx.tolist()], self.labels[idx])


def image_folder(
    root: Path, resolution: int, channels: int, seed: int, test_fraction: float = 0.2
) -> tuple[Raw, Raw, list[str]]:
    """A folder dataset (``folder_files``) decoded into memory at ``resolution``
    (``load_image``: RGB, or L for one channel; resize + centre-crop)."""
    train, test, classes = folder_files(root, seed, test_fraction)
    mode = {1: "L", 3: "RGB"}[channels]
    return (
        decode_files(train, resolution, mode, Path(root)),
        decode_files(test, resolution, mode, Path(root)),
        classes,
    )


def folder_files(
    root: Path, seed: int, test_fraction: float = 0.2
) -> tuple[Files, Files, list[str]]:
    """Images in one subfolder per class, as files.  With ``train/`` and ``test/`` (or
    ImageNet's ``val/``) subfolders those are the splits; otherwise a seeded
    ``test_fraction`` of the images becomes the test set.  Files that are not readable
    images (other suffixes, or a header Pillow cannot identify) are skipped, counted in
    one warning on stderr; no class subfolders, or only one class, is a one-line error."""
    root = require_dir(Path(root), "folder")
    held = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and held is not None:
        classes = _class_dirs(root / "train")
        (train, bad_train, n_train), (test, bad_test, n_test) = (
            _index(root / "train", classes),
            _index(held, classes),
        )
        _warn_skipped(root, bad_train + bad_test, n_train + n_test)
        _require_images(root / "train", train)
        _require_images(held, test)
        return train, test, classes
    classes = _class_dirs(root)
    files, bad, n = _index(root, classes)
    _warn_skipped(root, bad, n)
    _require_images(root, files)
    perm = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(test_fraction * len(perm)))
    return files.take(perm[n_test:]), files.take(perm[:n_test]), classes


def _no_images(root: Path) -> HwnasError:
    return HwnasError(
        f"{root}: no images found (expected one subfolder per class "
        f"holding {'/'.join(sorted(IMAGE_SUFFIXES))} files)"
    )


def _class_dirs(root: Path) -> list[str]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not any(_images_in(root / c) for c in classes):
        raise _no_images(root)
    if len(classes) < 2:
        raise HwnasError(
            f"{root}: only one class subfolder ({classes[0]}); a classifier needs at least two"
        )
    return classes


def _require_images(root: Path, files: Files) -> None:
    if not len(files):
        raise _no_images(root)


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _readable(path: Path) -> bool:
    """Pillow identifies ``path`` from its header (cheap: nothing is decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def _index(root: Path, classes: list[str]) -> tuple[Files, list[Path], int]:
    """The readable images under ``root/<class>/`` (sorted), the skipped files, and how many
    files there were."""
    from concurrent.futures import ThreadPoolExecutor

    candidates, labels, others = [], [], []
    for label, cls in enumerate(classes):
        folder = root / cls
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.name.startswith(".") or not p.is_file():
                continue
            if p.suffix.lower() in IMAGE_SUFFIXES:
                candidates.append(p)
                labels.append(label)
            else:
                others.append(p)
    with ThreadPoolExecutor(8) as pool:  # header checks are file opens: I/O bound
        ok = list(pool.map(_readable, candidates, chunksize=256))
    bad = others + [p for p, good in zip(candidates, ok) if not good]
    keep = [i for i, good in enumerate(ok) if good]
    files = Files([candidates[i] for i in keep], torch.tensor(labels, dtype=torch.int64)[keep])
    return files, bad, len(candidates) + len(others)


def _warn_skipped(root: Path, bad: list[Path], total: int) -> None:
    if bad:
        logger.warning(
            f"skipped {len(bad)} of {total} files under {root} that are not readable "
            f"images (first: {bad[0]})"
        )


def load_image(path: Path, resolution: int, mode: str, rng=None) -> np.ndarray | None:
    """One image file as uint8 (C, H, W) at ``resolution``, or None when it cannot be
    decoded.  Without ``rng`` (evaluation): the centred square of the shorter side, resized
    (bilinear, antialiased) to ``resolution`` — a square image is simply resized.  With a
    numpy ``rng`` (training): a random-resized crop (area 8-100%, aspect 3/4-4/3) and a
    horizontal flip half of the time."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            box = centre_box(*im.size) if rng is None else random_box(*im.size, rng)
            im = im.resize((resolution, resolution), Image.BILINEAR, box=box)
            if rng is not None and rng.random() < 0.5:
                im = im.transpose(Image.FLIP_LEFT_RIGHT)
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None  # truncated or corrupt data behind a readable header
    return arr.reshape(resolution, resolution, -1).transpose(2, 0, 1)


def centre_box(w: int, h: int) -> tuple[float, float, float, float]:
    side = min(w, h)
    left, top = (w - side) / 2, (h - side) / 2
    return (left, top, left + side, top + side)


def random_box(w: int, h: int, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """Inception's random-resized-crop box (10 tries, then the centre square)."""
    area = w * h
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return (left, top, left + cw, top + ch)
    return centre_box(w, h)


def decode_files(files: Files, resolution: int, mode: str, root: Path) -> Raw:
    """Every file of ``files`` decoded (``load_image``) into one uint8 tensor; files that
    fail to decode are skipped and counted in one warning."""
    images, keep = [], []
    for i, path in enumerate(files.paths):
        arr = load_image(path, resolution, mode)
        if arr is not None:
            images.append(arr)
            keep.append(i)
    kept = set(keep)
    bad = [p for i, p in enumerate(files.paths) if i not in kept]
    _warn_skipped(root, bad, len(files))
    if not images:
        raise _no_images(root)
    return Raw(torch.from_numpy(np.stack(images)), files.labels[keep])
