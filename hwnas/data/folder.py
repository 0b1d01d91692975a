"""Image folders that do not fit in memory: decoded per image, by DataLoader workers.

A ``FolderDataset`` holds file paths and labels only.  Evaluation images are those of the
in-memory path (``readers.load_image``: resize + centre-crop at the space's resolution);
training images are random-resized crops, flipped half of the time, drawn from a generator
seeded by (loader seed, image index), so a seed gives the same batches whatever the number
of workers.  Batches travel as uint8 and are normalised as ``ImageDataset``'s are.  A file
that fails to decode mid-epoch is dropped from its batch and counted in one warning.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from .readers import Files, load_image
from .splits import STATS_IMAGES, DataSplits, _per_channel, _stats, normalise

logger = logging.getLogger(__name__)


class FolderDataset(Dataset):
    """Image files + labels of one split, decoded lazily at ``resolution`` (Pillow ``mode``
    ``RGB`` or ``L``); the same interface as ``ImageDataset`` (``batch``, ``subset``,
    ``loader``, ``labels``)."""

    def __init__(
        self,
        files: Files,
        resolution: int,
        mode: str,
        mean: tuple,
        std: tuple,
        channels: int,
        workers: int = 0,
    ):
        self.files, self.labels = files, files.labels
        self.resolution, self.mode, self.channels, self.workers = (
            resolution,
            mode,
            channels,
            workers,
        )
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.skipped: set[str] = set()  # files that failed to decode, seen by a loader
        self._warned = False

    def __len__(self) -> int:
        return len(self.files)

    def image(self, i: int, rng: np.random.Generator | None = None) -> torch.Tensor | None:
        """Image ``i`` as uint8 (C, H, W): evaluation crop, or a training one with ``rng``;
        None when the file cannot be decoded."""
        arr = load_image(self.files.paths[i], self.resolution, self.mode, rng)
        return None if arr is None else torch.from_numpy(np.ascontiguousarray(arr))

    def __getitem__(self, i):
        x, y = self.batch([i])
        return x[0], int(y[0])

    def batch(self, indices, augment: bool = False, generator: torch.Generator | None = None):
        """Normalised images (B, C, H, W) and labels (B,) for ``indices`` (files that fail
        to decode are left out)."""
        idx = torch.as_tensor(indices, dtype=torch.int64).tolist()
        seed = int(torch.randint(2**62, (), generator=generator)) if augment else 0
        samples = [_Samples(self, augment, seed)[i] for i in idx]
        x, y, bad = _collate(samples, self._mean, self._std, self.channels)
        self._note(bad)
        return x, y

    def subset(self, indices) -> "FolderDataset":
        mean = tuple(self._mean.flatten().tolist())
        std = tuple(self._std.flatten().tolist())
        return FolderDataset(
            self.files.take(indices),
            self.resolution,
            self.mode,
            mean,
            std,
            self.channels,
            self.workers,
        )

    def loader(
        self, batch_size: int, shuffle: bool, augment: bool, seed: int, pin_memory: bool = False
    ):
        """Batches decoded by ``self.workers`` processes (0: in this one)."""
        order = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(self, generator=order) if shuffle else SequentialSampler(self)
        dl = DataLoader(
            _Samples(self, augment, seed + 0x9E3779B9),
            batch_sampler=BatchSampler(sampler, batch_size, drop_last=False),
            num_workers=self.workers,
            collate_fn=functools.partial(
                _collate, mean=self._mean, std=self._std, channels=self.channels
            ),
            pin_memory=pin_memory,
            prefetch_factor=4 if self.workers else None,
        )
        return FolderLoader(dl, self)

    def _note(self, bad: list[str]) -> None:
        new = set(bad) - self.skipped
        self.skipped |= new
        if new and not self._warned:
            self._warned = True
            logger.warning(
                f"{new.pop()} could not be decoded; it and any other such file are "
                "skipped (left out of their batches)"
            )


class FolderLoader:
    """A DataLoader over a ``FolderDataset`` yielding (images, labels): batches whose files
    all failed to decode are skipped, the files noted on the dataset (one warning)."""

    def __init__(self, dl: DataLoader, ds: FolderDataset):
        self.dl, self.ds = dl, ds

    def __len__(self) -> int:
        return len(self.dl)

    def __iter__(self):
        for x, y, bad in self.dl:
            if bad:
                self.ds._note(bad)
            if len(y):
                yield x, y


class _Samples(Dataset):
    """Item ``i``: (uint8 image, label), or (None, path) when it cannot be decoded."""

    def __init__(self, ds: FolderDataset, augment: bool, seed: int):
        self.ds, self.augment, self.seed = ds, augment, seed & (2**64 - 1)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, int(i)]) if self.augment else None
        img = self.ds.image(int(i), rng)
        return (
            (img, int(self.ds.labels[i]))
            if img is not None
            else (None, str(self.ds.files.paths[i]))
        )


def _collate(samples, mean, std, channels):
    ok = [s for s in samples if s[0] is not None]
    bad = [s[1] for s in samples if s[0] is None]
    if not ok:
        return torch.empty(0), torch.empty(0, dtype=torch.int64), bad
    x = torch.stack([s[0] for s in ok])
    y = torch.tensor([s[1] for s in ok], dtype=torch.int64)
    return normalise(x, mean, std, channels), y, bad


def lazy_splits(
    train_f: Files,
    test_f: Files,
    classes: list[str],
    split: tuple[torch.Tensor, torch.Tensor],
    resolution: int,
    mode: str,
    channels: int,
    workers: int,
) -> DataSplits:
    """``DataSplits`` of a lazy folder: the in-memory path's seeded train/val split; mean and
    std from up to ``STATS_IMAGES`` training images (all of them in a small folder, where
    they equal the in-memory path's)."""
    train_idx, val_idx = split
    sample = train_idx
    if len(sample) > STATS_IMAGES:
        pick = torch.randperm(len(sample), generator=torch.Generator().manual_seed(0))
        sample = sample[pick[:STATS_IMAGES]].sort().values
    probe = FolderDataset(train_f.take(sample), resolution, mode, (0.0,), (1.0,), channels)
    images = [probe.image(i) for i in range(len(probe))]
    images = [im for im in images if im is not None]
    mean, std = _stats(torch.stack(images))
    mean, std = _per_channel(mean, channels), _per_channel(std, channels)

    def ds(files: Files) -> FolderDataset:
        return FolderDataset(files, resolution, mode, mean, std, channels, workers)

    return DataSplits(
        train=ds(train_f.take(train_idx)),
        val=ds(train_f.take(val_idx)),
        test=ds(test_f),
        classes=classes,
        mean=mean,
        std=std,
        name="folder",
    )


__all__ = ["FolderDataset", "FolderLoader", "lazy_splits"]
