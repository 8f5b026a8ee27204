"""Fréchet distance: closed forms, sample estimates, symmetry and non-negativity."""

import math

import numpy as np
import pytest
import torch

from tinydiffusion.metrics import feature_statistics, frechet_distance, frechet_distance_from_features


def test_one_dimensional_by_hand():
    # N(1, 4) vs N(-2, 9): (1 - (-2))² + (2 - 3)² = 9 + 1
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(10.0, abs=1e-12)


def test_diagonal_covariances():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)  # 1 + 9 + (4 + 1 + 0)
    assert expected == pytest.approx(15.0)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-12)


def _two_by_two_trace_sqrt(s1: np.ndarray, s2: np.ndarray) -> float:
    # the eigenvalues λ₁, λ₂ of Σ₁Σ₂ are those of Σ₁^½Σ₂Σ₁^½, and for a 2×2 matrix with non-negative
    # eigenvalues (√λ₁ + √λ₂)² = tr + 2 √det
    product = s1 @ s2
    return math.sqrt(np.trace(product) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))


def test_non_commuting_two_by_two_closed_form():
    s1 = np.array([[2.0, 0.9], [0.9, 1.0]])
    s2 = np.array([[1.0, -0.4], [-0.4, 3.0]])
    assert not np.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = np.array([0.5, -1.0]), np.array([0.0, 2.0])
    expected = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * _two_by_two_trace_sqrt(s1, s2))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, abs=1e-12)


def test_scaled_covariance_closed_form():
    # Σ₂ = c²Σ₁ ⇒ tr(Σ₁^½Σ₂Σ₁^½)^½ = c·tr Σ₁ ⇒ FD = ‖Δμ‖² + (1 − c)² tr Σ₁
    rng = np.random.default_rng(1)
    a = rng.normal(size=(16, 16))
    s1 = a @ a.T / 16 + 0.1 * np.eye(16)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    c = 1.7
    expected = np.sum((mu1 - mu2) ** 2) + (1 - c) ** 2 * np.trace(s1)
    assert frechet_distance(mu1, s1, mu2, c * c * s1) == pytest.approx(expected, rel=1e-10)


def test_matches_scipy_sqrtm_on_random_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(32, 40)), rng.normal(size=(32, 40))
    s1, s2 = a @ a.T / 40, b @ b.T / 40
    mu1, mu2 = rng.normal(size=32), rng.normal(size=32)
    expected = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
                - 2 * np.trace(linalg.sqrtm(s1 @ s2)).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_large_samples_converge_to_the_closed_form():
    s1 = np.array([[2.0, 0.9], [0.9, 1.0]])
    s2 = np.array([[1.0, -0.4], [-0.4, 3.0]])
    mu1, mu2 = np.array([0.5, -1.0]), np.array([0.0, 2.0])
    exact = frechet_distance(mu1, s1, mu2, s2)
    rng = np.random.default_rng(3)
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    mu_x, sigma_x = feature_statistics(x)
    np.testing.assert_allclose(mu_x, mu1, atol=0.01)
    np.testing.assert_allclose(sigma_x, s1, atol=0.02)
    assert frechet_distance_from_features(x, y) == pytest.approx(exact, rel=0.01)


def test_symmetric_non_negative_and_zero_for_identical_statistics():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 8))
    y = rng.normal(size=(300, 8)) * 1.5 + 0.3
    assert frechet_distance_from_features(x, y) == pytest.approx(frechet_distance_from_features(y, x), rel=1e-9)
    assert frechet_distance_from_features(x, y) > 0
    assert frechet_distance_from_features(x, x) == pytest.approx(0.0, abs=1e-9)
    # a rank-deficient covariance (more dimensions than samples) must not break the square roots
    z = rng.normal(size=(5, 8))
    assert frechet_distance_from_features(z, z) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance_from_features(z, x) >= 0


def test_accepts_torch_tensors_and_checks_shapes():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    assert frechet_distance_from_features(x, x.numpy()) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="statistics do not match"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match=r"must have shape \(N, d\) with N >= 2"):
        feature_statistics(np.zeros((1, 4)))
