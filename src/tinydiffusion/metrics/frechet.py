"""Fréchet distance between two Gaussians fitted to feature sets (the "F" of FID).

Heusel et al. 2017 ("GANs trained by a two time-scale update rule…", eq. 6) define, for
N(μ₁, Σ₁) and N(μ₂, Σ₂),

    FD = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}.

The last term equals tr (Σ₁Σ₂)^{1/2} (the two matrices are similar), but Σ₁^{1/2} Σ₂ Σ₁^{1/2} is
symmetric positive semi-definite, so both square roots come from symmetric eigendecompositions
(``torch.linalg.eigh``) with eigenvalues clamped at 0, in float64. That avoids the complex parts and
the ill-conditioned ``sqrtm`` of a non-symmetric product that other implementations patch with an
ε·I offset. The distance is symmetric in its two arguments and 0 for identical statistics.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .arrays import ArrayLike, as_feature_matrix, as_float64


def feature_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean μ (d,) and unbiased covariance Σ (d, d) of features (N, d), in float64 (N ≥ 2)."""
    f = as_feature_matrix(features, "features")
    mu = f.mean(dim=0)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)
    return mu.numpy(), sigma.numpy()


def _psd_sqrt(matrix: Tensor) -> Tensor:
    """Σ^{1/2} of a symmetric PSD matrix by eigendecomposition (negative round-off eigenvalues → 0)."""
    sym = (matrix + matrix.T) / 2
    eigenvalues, eigenvectors = torch.linalg.eigh(sym)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) (Heusel et al. 2017, eq. 6), float64.

    tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2} is the sum of the square roots of the (clamped) eigenvalues of the
    symmetric matrix Σ₁^{1/2} Σ₂ Σ₁^{1/2}. Round-off can make the result a tiny negative number for
    (nearly) identical statistics; it is clamped at 0.
    """
    m1, m2 = as_float64(mu1).reshape(-1), as_float64(mu2).reshape(-1)
    s1, s2 = as_float64(sigma1), as_float64(sigma2)
    d = m1.shape[0]
    if m2.shape[0] != d or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"statistics do not match: mu {tuple(m1.shape)} / {tuple(m2.shape)}, "
                         f"sigma {tuple(s1.shape)} / {tuple(s2.shape)}")
    root1 = _psd_sqrt(s1)
    middle = root1 @ s2 @ root1
    middle_eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0)
    trace_sqrt = middle_eigenvalues.sqrt().sum()
    diff = m1 - m2
    fd = diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * trace_sqrt
    return max(float(fd), 0.0)


def frechet_distance_from_features(features1: ArrayLike, features2: ArrayLike) -> float:
    """FD between Gaussians fitted (mean, unbiased covariance) to two feature sets (N₁, d) and (N₂, d)."""
    mu1, sigma1 = feature_statistics(features1)
    mu2, sigma2 = feature_statistics(features2)
    return frechet_distance(mu1, sigma1, mu2, sigma2)
