"""Weight-sharing supernets built from the one walker, and their per-path evaluation."""

from .evaluate import CALIBRATION_BATCHES, accuracy, calibrate, path_accuracy
from .fbnet import FBNetSupernet, SupernetError, slice_like, widest_arch

__all__ = [
    "FBNetSupernet",
    "SupernetError",
    "slice_like",
    "widest_arch",
    "calibrate",
    "accuracy",
    "path_accuracy",
    "CALIBRATION_BATCHES",
]
