"""KID: the estimator against a brute-force sum, unbiasedness, and its behaviour on shifted data."""

import itertools
import math

import numpy as np
import pytest
import torch

from tinydiffusion.metrics import kernel_inception_distance
from tinydiffusion.metrics.kid import mmd2_unbiased, polynomial_kernel


def _brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    m, d = x.shape
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)


def test_estimator_equals_the_brute_force_sum():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(7, 5)) + 0.5
    assert mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(_brute_force_mmd2(x, y), rel=1e-12)
    assert polynomial_kernel(torch.ones(1, 4, dtype=torch.float64), torch.ones(1, 4, dtype=torch.float64)).item() == 8.0


def test_unbiased_for_samples_of_one_distribution():
    # over many independent draws the U-statistic averages to the true MMD² = 0, while the V-statistic
    # (diagonal terms kept) is biased upwards
    rng = np.random.default_rng(1)
    m, trials = 16, 3000
    unbiased, biased = [], []
    for _ in range(trials):
        x, y = torch.from_numpy(rng.normal(size=(m, 4))), torch.from_numpy(rng.normal(size=(m, 4)))
        unbiased.append(mmd2_unbiased(x, y))
        v = polynomial_kernel(x, x).mean() + polynomial_kernel(y, y).mean() - 2 * polynomial_kernel(x, y).mean()
        biased.append(float(v))
    se = np.std(unbiased, ddof=1) / math.sqrt(trials)
    assert abs(np.mean(unbiased)) < 4 * se
    assert np.mean(biased) > 20 * se


def test_near_zero_for_same_distribution_and_positive_for_different():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(3000, 16))
    same = rng.normal(size=(3000, 16))
    shifted = rng.normal(size=(3000, 16)) + 0.3
    kid_same, se_same = kernel_inception_distance(real, same, num_subsets=30, subset_size=500, seed=0)
    kid_diff, se_diff = kernel_inception_distance(real, shifted, num_subsets=30, subset_size=500, seed=0)
    assert math.isfinite(se_same) and se_same > 0 and math.isfinite(se_diff) and se_diff > 0
    assert abs(kid_same) < 4 * se_same
    assert kid_diff > 20 * se_diff and kid_diff > 100 * abs(kid_same)


def test_seeded_and_subset_size_capped_by_the_data():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(60, 8)), rng.normal(size=(40, 8)) + 1
    a = kernel_inception_distance(real, fake, num_subsets=10, seed=5)
    assert a == kernel_inception_distance(real, fake, num_subsets=10, seed=5)
    assert a != kernel_inception_distance(real, fake, num_subsets=10, seed=6)
    # with subsets as large as the smaller set, every round uses all 40 fakes
    full = mmd2_unbiased(torch.from_numpy(real[:40]), torch.from_numpy(fake))
    assert math.isfinite(full)
    with pytest.raises(ValueError, match="feature dimensions differ"):
        kernel_inception_distance(real, fake[:, :4])
