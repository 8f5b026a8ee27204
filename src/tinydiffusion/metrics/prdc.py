"""Improved precision and recall by k-NN manifolds (Kynkäänniemi et al. 2019).

"Improved Precision and Recall Metric for Assessing Generative Models" (NeurIPS 2019, §2, eq. 1–2):
the manifold of a feature set Φ is the union of balls around each φ ∈ Φ whose radius is the distance
from φ to its k-th nearest neighbour in Φ (k = 3 in the paper);

    f(φ, Φ) = 1 if ‖φ − φ'‖₂ ≤ ‖φ' − NN_k(φ')‖₂ for some φ' ∈ Φ, else 0
    precision = mean_{φ_g ∈ Φ_g} f(φ_g, Φ_r)      (how many samples look real)
    recall    = mean_{φ_r ∈ Φ_r} f(φ_r, Φ_g)      (how much of the real data is covered)

Distances are computed in row chunks so that memory stays at chunk × N float64 numbers.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .arrays import ArrayLike, as_feature_matrix


def _squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """‖aᵢ − bⱼ‖² for rows of a (m, d) and b (n, d), clamped at 0 against round-off."""
    return ((a * a).sum(1, keepdim=True) + (b * b).sum(1) - 2 * a @ b.T).clamp(min=0)


def knn_radii_squared(features: Tensor, k: int, chunk_size: int) -> Tensor:
    """Squared distance from each row to its k-th nearest other row (the row itself excluded)."""
    n = features.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1..{n - 1} for {n} samples, got {k}")
    radii = []
    for start in range(0, n, chunk_size):
        d2 = _squared_distances(features[start:start + chunk_size], features)
        # the row's own distance (0) is the smallest, so the k-th neighbour is the (k+1)-th value
        radii.append(d2.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def manifold_coverage(queries: Tensor, support: Tensor, support_radii_sq: Tensor, chunk_size: int) -> float:
    """Fraction of query rows inside at least one ball (support row, its k-NN radius)."""
    inside = 0
    for start in range(0, queries.shape[0], chunk_size):
        d2 = _squared_distances(queries[start:start + chunk_size], support)
        inside += int((d2 <= support_radii_sq).any(dim=1).sum())
    return inside / queries.shape[0]


def precision_recall(real: ArrayLike, fake: ArrayLike, *, k: int = 3, chunk_size: int = 1024) -> tuple[float, float]:
    """(precision, recall) of fake features against real features (Kynkäänniemi et al. 2019, eq. 1–2).

    Both sets should have the same size: the k-NN radii shrink as a set grows, so unequal sizes tilt
    the two numbers against each other.
    """
    r, f = as_feature_matrix(real, "real features"), as_feature_matrix(fake, "fake features")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature dimensions differ: {r.shape[1]} (real) vs {f.shape[1]} (fake)")
    precision = manifold_coverage(f, r, knn_radii_squared(r, k, chunk_size), chunk_size)
    recall = manifold_coverage(r, f, knn_radii_squared(f, k, chunk_size), chunk_size)
    return precision, recall
