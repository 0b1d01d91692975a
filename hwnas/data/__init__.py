"""Datasets: Fashion-MNIST (IDX), CIFAR-10 binary, image folders — in memory, split, batched."""

from .splits import (
    DATASETS,
    DataSplits,
    ImageDataset,
    augment_batch,
    load_dataset,
    load_for_space,
)

__all__ = [
    "DATASETS",
    "DataSplits",
    "ImageDataset",
    "augment_batch",
    "load_dataset",
    "load_for_space",
]
