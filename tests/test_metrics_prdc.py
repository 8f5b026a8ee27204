"""Precision and recall by k-NN manifolds: a hand-worked case, identical sets, far sets, mode dropping."""

import numpy as np
import pytest

from tinydiffusion.metrics import precision_recall
from tinydiffusion.metrics.prdc import knn_radii_squared
import torch


def test_hand_worked_one_dimensional_case():
    # k = 1. Real radii: 0→1, 1→1, 2→1, 10→8; fakes 0.5 (inside the ball of 0), 5 (inside 10's ball of
    # radius 8), 20 (10 away from 10 > 8) → precision 2/3. Fake radii: 0.5→4.5, 5→4.5, 20→15; reals 0, 1,
    # 2 lie within 4.5 of 0.5, and 10 lies within 15 of 20 → recall 1.
    real = np.array([[0.0], [1.0], [2.0], [10.0]])
    fake = np.array([[0.5], [5.0], [20.0]])
    np.testing.assert_allclose(knn_radii_squared(torch.from_numpy(real), 1, 2).numpy(), [1, 1, 1, 64])
    for chunk in (1, 2, 1024):
        precision, recall = precision_recall(real, fake, k=1, chunk_size=chunk)
        assert precision == pytest.approx(2 / 3)
        assert recall == 1.0


def test_identical_sets_score_one():
    x = np.random.default_rng(0).normal(size=(500, 16))
    assert precision_recall(x, x.copy(), chunk_size=128) == (1.0, 1.0)


def test_far_apart_sets_score_zero():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 100
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_dropping_a_mode_keeps_precision_and_halves_recall():
    rng = np.random.default_rng(2)
    mode_a, mode_b = rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 50
    real = np.concatenate([mode_a, mode_b])
    fake = rng.normal(size=(1000, 2))  # only mode A
    precision, recall = precision_recall(real, fake)
    assert precision > 0.95
    assert 0.45 < recall <= 0.5


def test_k_must_leave_a_neighbour():
    with pytest.raises(ValueError, match="k must be in 1..2 for 3 samples"):
        precision_recall(np.zeros((3, 2)), np.ones((3, 2)), k=3)
