"""2-D point clouds: seed 004's S-curve and four other classic toy distributions.

Every generator takes ``(n, seed)`` and returns float32 points (n, 2) plus int64 labels (n,) or None;
the same (n, seed) always gives the same points. Scales (standard deviation per coordinate, measured
on 10⁵ points) are chosen so a network sees values of order one:

* ``s-curve`` — seed 004 exactly: scikit-learn's ``make_s_curve(n, noise=0.1, random_state=seed)``,
  reimplemented (t = 3π(u − ½), x = (sin t, 2v, sign(t)(cos t − 1)) + 0.1·N(0, I₃)), columns 0 and 2,
  divided by 10. Std ≈ (0.071, 0.139): the seed's own small scale, kept so its β schedule fits.
* ``moons`` — two interleaved half circles (the upper (cos θ, sin θ), the lower (1 − cos θ, ½ − sin θ),
  θ ~ U[0, π]) plus 0.05·N(0, I), shifted by −(½, ¼) to centre them; labels 0 upper, 1 lower.
  Std ≈ (0.87, 0.50).
* ``swiss-roll`` — the spiral (t cos t, t sin t), t = 1.5π(1 + 2u), plus 0.5·N(0, I), divided by 10.
  Std ≈ (0.66, 0.70).
* ``circles`` — radius 1 (label 0) and radius ½ (label 1), angle uniform, radius jittered by
  0.05·N(0, 1) along the normal. Std ≈ (0.56, 0.56).
* ``checkerboard`` — uniform on the 8 dark squares of a 4×4 board covering [−1, 1]² (squares whose
  row + column is even). Std ≈ (0.58, 0.58).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Generator2D = Callable[[int, int], tuple[np.ndarray, "np.ndarray | None"]]


def s_curve(n: int, seed: int) -> tuple[np.ndarray, None]:
    """Seed 004's data: ``make_s_curve(n, noise=0.1, random_state=seed)[0][:, [0, 2]] / 10``.

    Draws in scikit-learn's order from ``np.random.RandomState(seed)``, so the points equal
    scikit-learn's for the same seed.
    """
    random = np.random.RandomState(seed)
    t = 3 * np.pi * (random.uniform(size=(1, n)) - 0.5)
    x = np.empty((n, 3), dtype=np.float64)
    x[:, 0] = np.sin(t)
    x[:, 1] = 2.0 * random.uniform(size=n)
    x[:, 2] = np.sign(t) * (np.cos(t) - 1)
    x += 0.1 * random.standard_normal(size=(3, n)).T
    return (x[:, [0, 2]] / 10.0).astype(np.float32), None


def moons(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles with noise 0.05, centred; labels 0 (upper) and 1 (lower)."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) >= (n + 1) // 2).astype(np.int64)
    theta = rng.uniform(0, np.pi, size=n)
    upper = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    lower = np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], axis=1)
    points = np.where(labels[:, None] == 0, upper, lower) + 0.05 * rng.standard_normal((n, 2))
    return (points - [0.5, 0.25]).astype(np.float32), labels


def swiss_roll(n: int, seed: int) -> tuple[np.ndarray, None]:
    """The 2-D Swiss roll (t cos t, t sin t), t = 1.5π(1 + 2u), noise 0.5, divided by 10."""
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + 0.5 * rng.standard_normal((n, 2))
    return (points / 10.0).astype(np.float32), None


def circles(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Concentric circles of radius 1 (label 0) and ½ (label 1) with radial noise 0.05."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) >= (n + 1) // 2).astype(np.int64)
    angle = rng.uniform(0, 2 * np.pi, size=n)
    radius = np.where(labels == 0, 1.0, 0.5) + 0.05 * rng.standard_normal(n)
    points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return points.astype(np.float32), labels


def checkerboard(n: int, seed: int) -> tuple[np.ndarray, None]:
    """Uniform on the dark squares ((row + column) even) of a 4×4 board on [−1, 1]²."""
    rng = np.random.default_rng(seed)
    dark = np.array([(r, c) for r in range(4) for c in range(4) if (r + c) % 2 == 0])
    cell = dark[rng.integers(0, len(dark), size=n)]
    points = (cell + rng.uniform(size=(n, 2))) * 0.5 - 1.0
    return points.astype(np.float32), None


TOY_SETS: dict[str, tuple[Generator2D, list[str] | None, str]] = {
    "s-curve": (s_curve, None, "seed 004's S-curve: 10,000 2-D points (sklearn make_s_curve, columns 0 and 2, /10)"),
    "moons": (moons, ["upper", "lower"], "two interleaved half moons, 2 classes"),
    "swiss-roll": (swiss_roll, None, "2-D Swiss-roll spiral"),
    "circles": (circles, ["outer", "inner"], "two concentric circles, 2 classes"),
    "checkerboard": (checkerboard, None, "uniform on the dark squares of a 4x4 checkerboard"),
}
