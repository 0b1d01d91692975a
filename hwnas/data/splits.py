"""In-memory image datasets, seeded train/val/test splits, batched loaders with tensor augmentation.

Whole datasets stay uint8 tensors (N, C, H, W) at the target resolution; normalisation,
channel replication and augmentation (random crop with zero padding 4, horizontal flip)
happen per *batch* with torch ops — per-image Python work is too slow on a small CPU.
Image folders too large for memory (``IN_MEMORY_BYTES``) are read lazily instead:
``hwnas.data.folder.FolderDataset``, decoded per image by DataLoader workers.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from hwnas.errors import HwnasError

from . import readers

logger = logging.getLogger(__name__)

DATASETS = ("fashion-mnist", "cifar10", "folder")
CROP_PADDING = 4
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, for RGB → one channel
IN_MEMORY_BYTES = 2**30  # an image folder larger than this (uint8 at the resolution) is lazy
STATS_IMAGES = 500  # training images a lazy folder's mean/std is estimated from


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, channels: int):
    """uint8 (B, C0, H, W) → float32 (B, channels, H, W), ``(x/255 - mean) / std``; one
    stored channel is replicated."""
    x = x.expand(-1, channels, -1, -1).float().div_(255.0)
    return (x - mean) / std


class ImageDataset(Dataset):
    """uint8 images (N, C0, H, W) + labels; yields normalised float32 (C, H, W) and an int.

    ``C0`` (stored) is 1 or ``channels``; one stored channel is replicated on the fly.
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, mean: tuple, std: tuple, channels: int
    ):
        self.images, self.labels, self.channels = images, labels, channels
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        if isinstance(i, (list, tuple, torch.Tensor)):
            return self.batch(i)
        x, _ = self.batch([i])
        return x[0], int(self.labels[i])

    def batch(self, indices, augment: bool = False, generator: torch.Generator | None = None):
        """Normalised images (B, C, H, W) and labels (B,) for ``indices``."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        x = self.images[idx]
        if augment:
            x = augment_batch(x, generator)
        return normalise(x, self._mean, self._std, self.channels), self.labels[idx]

    def subset(self, indices) -> "ImageDataset":
        idx = torch.as_tensor(indices, dtype=torch.int64)
        mean = tuple(self._mean.flatten().tolist())
        std = tuple(self._std.flatten().tolist())
        return ImageDataset(self.images[idx], self.labels[idx], mean, std, self.channels)

    def loader(
        self,
        batch_size: int,
        shuffle: bool,
        augment: bool,
        seed: int,
        pin_memory: bool = False,
    ) -> DataLoader:
        """Whole batches cut from memory in the calling process (``DataSplits.loader``)."""
        order = torch.Generator().manual_seed(seed)
        aug = torch.Generator().manual_seed(seed + 0x9E3779B9)
        sampler = RandomSampler(self, generator=order) if shuffle else SequentialSampler(self)
        return DataLoader(
            _Batches(self, augment, aug),
            batch_size=None,
            sampler=BatchSampler(sampler, batch_size, drop_last=False),
            pin_memory=pin_memory,
        )


def augment_batch(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop (zero padding ``CROP_PADDING``) and horizontal flip of a uint8 batch."""
    n, _, h, w = x.shape
    p = CROP_PADDING
    padded = F.pad(x, (p, p, p, p))
    oy = torch.randint(0, 2 * p + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * p + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = oy[:, None] + torch.arange(h)  # (n, h)
    cols = ox[:, None] + torch.arange(w)  # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    nhwc = padded.permute(0, 2, 3, 1)
    out = nhwc[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


class _Batches(Dataset):
    """A view of an ImageDataset indexed by lists of indices (one batch per item)."""

    def __init__(self, ds: ImageDataset, augment: bool, generator: torch.Generator):
        self.ds, self.augment, self.generator = ds, augment, generator

    def __getitem__(self, indices):
        return self.ds.batch(indices, self.augment, self.generator)

    def __len__(self) -> int:
        return len(self.ds)


@dataclass(frozen=True)
class DataSplits:
    """Seeded train/val split of the original training set, plus its test set."""

    train: ImageDataset  # or, for a lazy image folder, hwnas.data.folder.FolderDataset
    val: ImageDataset
    test: ImageDataset
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str = ""

    def split(self, split: str) -> ImageDataset:
        if split not in ("train", "val", "test"):
            raise HwnasError(f"unknown split {split!r}; choose train, val or test")
        return getattr(self, split)

    def loader(
        self,
        split: str,
        batch_size: int,
        shuffle: bool | None = None,
        augment: bool | None = None,
        seed: int = 0,
        pin_memory: bool = False,
    ):
        """Batches (images, labels) of ``split``; shuffling and augmentation default to on for
        train only.  The same ``seed`` gives the same batches and the same augmentation
        (for a lazy folder whatever its number of workers).  ``pin_memory``: batches in
        page-locked memory, for non-blocking copies to a GPU."""
        ds = self.split(split)
        if batch_size < 1:
            raise HwnasError(f"batch size must be at least 1, got {batch_size}")
        shuffle = split == "train" if shuffle is None else shuffle
        augment = split == "train" if augment is None else augment
        return ds.loader(batch_size, shuffle, augment, seed, pin_memory)

    def calibration(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` real training images (N, C, H, W), normalised, not augmented."""
        if not 1 <= n <= len(self.train):
            raise HwnasError(
                f"asked for {n} calibration images; the training split has {len(self.train)}"
            )
        idx = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(seed))[:n]
        return self.train.batch(idx.sort().values)[0]

    def with_test(self, test: ImageDataset) -> "DataSplits":
        return dataclasses.replace(self, test=test)


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    resolution: int = 32,
    in_channels: int = 3,
    seed: int = 0,
    val_fraction: float = 0.2,
    subset: int | None = None,
    lazy: bool | None = None,
    workers: int = 0,
) -> DataSplits:
    """Load a dataset into memory at ``resolution`` with ``in_channels`` channels.

    ``subset`` keeps that many training images (a seeded random choice) before the seeded
    train/val split, where val is ``val_fraction`` of them.  The test set is always whole.
    An image folder is read lazily (decoded per batch by ``workers`` DataLoader processes)
    when ``lazy``, or, by default, when it would take more than ``IN_MEMORY_BYTES``;
    the splits and the evaluation images are those of the in-memory path.
    """
    _check_args(in_channels, val_fraction, resolution, subset, workers)
    if name == "fashion-mnist":
        train, test, classes = readers.fashion_mnist(Path(root) if root else None)
    elif name in ("cifar10", "folder"):
        if root is None:
            raise HwnasError(f"dataset {name} needs a root folder (--data-root)")
        if name == "cifar10":
            train, test, classes = readers.cifar10(Path(root))
        else:
            mode = "L" if in_channels == 1 else "RGB"
            train_f, test_f, classes = readers.folder_files(Path(root), seed)
            size = (len(train_f) + len(test_f)) * in_channels * resolution**2
            if lazy or (lazy is None and size > IN_MEMORY_BYTES):
                from .folder import lazy_splits

                split = _split_indices(len(train_f), name, seed, subset, val_fraction)
                return lazy_splits(
                    train_f, test_f, classes, split, resolution, mode, in_channels, workers
                )
            train = readers.decode_files(train_f, resolution, mode, Path(root))
            test = readers.decode_files(test_f, resolution, mode, Path(root))
    else:
        raise HwnasError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")

    split = _split_indices(len(train.labels), name, seed, subset, val_fraction)
    return _in_memory(name, train, test, classes, split, resolution, in_channels)


def _in_memory(name, train, test, classes, split, resolution, in_channels) -> DataSplits:
    """Decoded images and labels as normalised splits (``split``: train and val indices)."""
    train_x = _prepare(train.images, resolution, in_channels)
    test_x = _prepare(test.images, resolution, in_channels)
    train_idx, val_idx = split
    mean, std = _stats(train_x[train_idx])
    mean, std = _per_channel(mean, in_channels), _per_channel(std, in_channels)

    def ds(x, y):
        return ImageDataset(x, y, mean, std, in_channels)

    return DataSplits(
        train=ds(train_x[train_idx], train.labels[train_idx]),
        val=ds(train_x[val_idx], train.labels[val_idx]),
        test=ds(test_x, test.labels),
        classes=classes,
        mean=mean,
        std=std,
        name=name,
    )


def _check_args(in_channels, val_fraction, resolution, subset, workers) -> None:
    if in_channels not in (1, 3):
        raise HwnasError(f"in_channels must be 1 or 3, got {in_channels}")
    if not 0.0 <= val_fraction < 1.0:
        raise HwnasError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if resolution < 8:
        raise HwnasError(f"resolution must be at least 8 px, got {resolution}")
    if subset is not None and subset < 2:
        raise HwnasError(f"subset must be at least 2 images, got {subset}")
    if workers < 0:
        raise HwnasError(f"workers must be at least 0, got {workers}")


def load_for_space(name: str, root, space, seed: int, subset, workers: int = 0) -> DataSplits:
    """``load_dataset`` at a search space's input (its resolution and channels): the data
    of search, supernet training, ``hwnas train`` and export."""
    return load_dataset(
        name,
        root,
        resolution=space.resolution,
        in_channels=space.in_channels,
        seed=seed,
        subset=subset,
        workers=workers,
    )


def _split_indices(n: int, name: str, seed: int, subset, val_fraction: float):
    """Seeded (train, val) indices (sorted) into the ``n`` original training images."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if subset is not None:
        if subset > len(perm):
            logger.info(
                f"note: --subset {subset} is more than the {len(perm)} training images of "
                f"{name}; using all {len(perm)}"
            )
        perm = perm[:subset]
    n_val = round(val_fraction * len(perm))
    val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
    if len(train_idx) == 0:
        raise HwnasError(f"no training images left after taking {n_val} for validation")
    return train_idx, val_idx


def _prepare(images: torch.Tensor, resolution: int, in_channels: int) -> torch.Tensor:
    """Resize (or zero-pad, for small upsizing like 28 → 32) and fix the stored channels."""
    if images.shape[1] == 3 and in_channels == 1:
        luma = torch.tensor(_LUMA).view(1, 3, 1, 1)
        images = (images.float() * luma).sum(1, keepdim=True).round().clamp(0, 255).byte()
    return _resize(images, resolution)


def _resize(images: torch.Tensor, resolution: int) -> torch.Tensor:
    n, c, h, w = images.shape
    if (h, w) == (resolution, resolution):
        return images.contiguous()
    grow = resolution - h
    if h == w and 0 < grow <= 2 * CROP_PADDING and grow % 2 == 0:
        return F.pad(images, (grow // 2,) * 4).contiguous()
    out = torch.empty(n, c, resolution, resolution, dtype=torch.uint8)
    for s in range(0, n, 4096):  # chunks bound the float copy's memory
        chunk = images[s : s + 4096].float()
        resized = F.interpolate(
            chunk,
            size=(resolution, resolution),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        out[s : s + 4096] = resized.round().clamp(0, 255).byte()
    return out


def _stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.double().div(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    std = x.std(dim=1).clamp_min(1e-3)
    mean = tuple(round(v, 6) for v in x.mean(dim=1).tolist())
    return mean, tuple(round(v, 6) for v in std.tolist())


def _per_channel(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    return values * channels if len(values) == 1 else values
