"""Shared test set-up: one torch thread (tiny tensors run ~60x slower with 2 on a busy 2-core box)."""

import os

import torch

os.environ.setdefault("HWNAS_NO_PROGRESS", "1")
torch.set_num_threads(1)
