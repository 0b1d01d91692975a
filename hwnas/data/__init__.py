"""Datasets: Fashion-MNIST (IDX), CIFAR-10 binary batches, image folders — in memory, split, loaded."""

from .splits import DATASETS, DataSplits, ImageDataset, augment_batch, load_dataset

__all__ = ["DATASETS", "DataSplits", "ImageDataset", "augment_batch", "load_dataset"]
