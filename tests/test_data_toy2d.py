"""2-D point sets: seed 004's S-curve against scikit-learn's numbers and its closed-form moments,
the geometry and documented spread of the other sets, determinism per seed."""

from __future__ import annotations

import numpy as np
import pytest

from tinydiffusion.data import load_dataset
from tinydiffusion.data.toy2d import TOY_SETS
from tinydiffusion.errors import UserError

# make_s_curve(10**4, noise=0.1, random_state=0)[0][:, [0, 2]] / 10 with scikit-learn 1.9.1 (computed once,
# outside this project; scikit-learn is not a dependency).
SKLEARN_SEED0_FIRST = [[0.03966980312935693, -0.017061079418820225],
                       [0.08861254391361788, -0.1476564145651934],
                       [0.08077171764403515, -0.05800745389940208]]
SKLEARN_SEED0_LAST = [0.02002188421610491, -0.20307126995022506]
SKLEARN_N5_SEED123 = [[0.10874049104550662, -0.11767979208255644], [-0.09893738100659068, 0.14688896307266502],
                      [-0.06051850576054981, 0.19171303202971446], [0.04555252905082209, 0.003438588526218439],
                      [0.10278457585100323, -0.1570945269318687]]


def test_s_curve_equals_scikit_learn_for_the_same_seed():
    d = load_dataset("s-curve")
    assert d.points.shape == (10_000, 2) and d.points.dtype == np.float32 and d.labels is None
    np.testing.assert_allclose(d.points[:3], SKLEARN_SEED0_FIRST, rtol=1e-6)
    np.testing.assert_allclose(d.points[-1], SKLEARN_SEED0_LAST, rtol=1e-6)
    np.testing.assert_allclose(load_dataset("s-curve", n=5, seed=123).points, SKLEARN_N5_SEED123, rtol=1e-6)


def test_s_curve_moments_match_the_seed_construction():
    """t ~ U[−3π/2, 3π/2]; x = sin t, z = sign(t)(cos t − 1), each + 0.1·N(0,1), then /10.

    E[sin² t] = ½ − sin(3π)/(6π) = ½;  E[(cos t − 1)²] = ½ + 1 − 2·E[cos t] = 3/2 + 2/(3π/2);
    E[x z] = (1/(3π/2)) ∫₀^{3π/2} sin t (cos t − 1) dt = (1/(3π/2)) [sin²t/2 + cos t]₀^{3π/2} = −1/(3π);
    both means are 0 by symmetry; the noise adds 0.01 to each variance.
    """
    p = load_dataset("s-curve", n=200_000, seed=7).points.astype(np.float64)
    var_x = (0.5 + 0.01) / 100
    var_z = (1.5 + 2 / (1.5 * np.pi) + 0.01) / 100
    np.testing.assert_allclose(p.var(axis=0), [var_x, var_z], rtol=0.02)
    np.testing.assert_allclose(p.mean(axis=0), [0, 0], atol=1e-3)
    np.testing.assert_allclose(np.cov(p.T)[0, 1], -1 / (3 * np.pi) / 100, rtol=0.03)


@pytest.mark.parametrize("name", list(TOY_SETS))
def test_sets_are_deterministic_per_seed(name):
    a, b, c = (load_dataset(name, n=500, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.array_equal(a.points, c.points)
    assert a.points.shape == (500, 2) and a.points.dtype == np.float32 and a.kind == "points"
    assert load_dataset(name).points.shape == (10_000, 2)


@pytest.mark.parametrize("name, std", [
    ("s-curve", (0.071, 0.139)), ("moons", (0.87, 0.50)), ("swiss-roll", (0.66, 0.70)),
    ("circles", (0.56, 0.56)), ("checkerboard", (0.58, 0.58)),
])
def test_documented_spread(name, std):
    np.testing.assert_allclose(load_dataset(name, n=100_000, seed=1).points.std(axis=0), std, rtol=0.03)


def test_moons_lie_on_their_half_circles():
    d = load_dataset("moons", n=20_000)
    p = d.points.astype(np.float64) + [0.5, 0.25]
    assert np.bincount(d.labels).tolist() == [10_000, 10_000] and d.class_names == ["upper", "lower"]
    upper, lower = p[d.labels == 0], p[d.labels == 1]
    np.testing.assert_allclose(np.hypot(*upper.T).mean(), 1, atol=0.01)
    np.testing.assert_allclose(np.hypot(*(lower - [1, 0.5]).T).mean(), 1, atol=0.01)
    assert upper[:, 1].mean() > 0.5 > -0.5 > (lower[:, 1] - 0.5).mean()


def test_circles_radii_and_checkerboard_squares():
    d = load_dataset("circles", n=20_000)
    r = np.hypot(*d.points.T.astype(np.float64))
    np.testing.assert_allclose([r[d.labels == 0].mean(), r[d.labels == 1].mean()], [1.0, 0.5], atol=0.005)
    np.testing.assert_allclose([r[d.labels == 0].std(), r[d.labels == 1].std()], [0.05, 0.05], rtol=0.05)
    board = load_dataset("checkerboard", n=20_000).points
    assert board.min() >= -1 and board.max() <= 1
    cells = np.floor((board + 1) / 0.5).astype(int)
    assert ((cells[:, 0] + cells[:, 1]) % 2 == 0).all()
    assert len({tuple(c) for c in cells}) == 8


def test_swiss_roll_radius_follows_its_angle():
    p = load_dataset("swiss-roll", n=5_000).points.astype(np.float64) * 10
    r = np.hypot(*p.T)
    assert 1.5 * np.pi - 2 < r.min() and r.max() < 4.5 * np.pi + 2


def test_image_options_do_not_apply_to_points():
    with pytest.raises(UserError) as error:
        load_dataset("moons", image_size=16)
    assert str(error.value) == "moons is a set of 2-D points; image_size, channels and center_crop do not apply"
