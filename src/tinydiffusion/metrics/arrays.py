"""Conversion of feature arrays (numpy or torch) to the float64 CPU tensors the metrics compute in."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

ArrayLike = np.ndarray | Tensor


def as_float64(x: ArrayLike) -> Tensor:
    """A float64 CPU tensor holding ``x`` (a numpy array, a tensor on any device, or a nested list)."""
    if isinstance(x, Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.from_numpy(np.array(x, dtype=np.float64))


def as_feature_matrix(x: ArrayLike, what: str) -> Tensor:
    """``as_float64`` checked to be a (N, d) matrix with N ≥ 2 (``what`` names it in the error)."""
    f = as_float64(x)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"{what} must have shape (N, d) with N >= 2, got {tuple(f.shape)}")
    return f
