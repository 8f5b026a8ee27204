"""Kernel Inception Distance: the unbiased MMD² with a cubic polynomial kernel (Bińkowski et al. 2018).

"Demystifying MMD GANs" (ICLR 2018, §4 and eq. 3) compares feature sets X (real) and Y (generated)
of dimension d with the kernel

    k(x, y) = (xᵀy / d + 1)³

and the unbiased estimator on m samples of each

    MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(xᵢ, xⱼ) + 1/(m(m−1)) Σ_{i≠j} k(yᵢ, yⱼ) − 2/m² Σ_{i,j} k(xᵢ, yⱼ).

Unlike FD it has no bias from the sample size (its mean is the true MMD², which can be slightly
negative on one draw), so it suits the small N a CPU can afford. As in the authors' code, clean-fid
and StyleGAN2-ADA's ``kid50k``, the estimate is averaged over random subsets (100 of size ≤ 1000).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .arrays import ArrayLike, as_feature_matrix


def polynomial_kernel(x: Tensor, y: Tensor) -> Tensor:
    """k(x, y) = (xᵀy / d + 1)³ for all row pairs of x (m, d) and y (n, d) → (m, n)."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: Tensor, y: Tensor) -> float:
    """The unbiased MMD² estimate (Bińkowski et al. 2018, eq. 3) of two equal-size samples (m, d)."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(real: ArrayLike, fake: ArrayLike, *, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID of two feature sets (Bińkowski et al. 2018): mean and standard error over subsets.

    Each of ``num_subsets`` rounds draws m = min(subset_size, N_real, N_fake) rows of each set without
    replacement (a ``numpy`` generator seeded with ``seed``) and computes :func:`mmd2_unbiased`. The
    standard error is the sample standard deviation of the rounds divided by √num_subsets; when the
    subsets overlap (N not much larger than m) the rounds are correlated and it understates the error
    of the mean, so read it as a floor.
    """
    x, y = as_feature_matrix(real, "real features"), as_feature_matrix(fake, "fake features")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} (real) vs {y.shape[1]} (fake)")
    if num_subsets < 2:
        raise ValueError(f"num_subsets must be at least 2 to estimate an error, got {num_subsets}")
    m = min(subset_size, x.shape[0], y.shape[0])
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        rows_x = torch.from_numpy(rng.choice(x.shape[0], m, replace=False))
        rows_y = torch.from_numpy(rng.choice(y.shape[0], m, replace=False))
        values.append(mmd2_unbiased(x[rows_x], y[rows_y]))
    mean = sum(values) / num_subsets
    variance = sum((v - mean) ** 2 for v in values) / (num_subsets - 1)
    return mean, math.sqrt(variance / num_subsets)
