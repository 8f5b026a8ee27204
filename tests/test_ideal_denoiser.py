"""Samplers driven by the exact optimal denoiser of a 5-point dataset must end on the data points,
whichever of ε, x₀ or v the denoiser answers with."""

from __future__ import annotations

import pytest
import torch
from oracle_models import IdealDenoiser, alpha_bar_at, spread_points, single_thread  # noqa: F401 (module fixture)

from tinydiffusion import NoiseSchedule, SeededNoise, sample
from tinydiffusion.samplers import initial_noise

SCHEDULE = NoiseSchedule.linear(1000)
SHAPE = (1, 3, 3)  # five tiny 3×3 "images"
POINTS = spread_points(5, SHAPE, seed=0, min_distance=2.0)
DENOISER = IdealDenoiser(SCHEDULE, POINTS)
N = 64


class IdealAs:
    """The ideal denoiser as an x₀- or v-model: x̂₀ = E[x₀ | x_t], v̂ = √ᾱ ε̂ − √(1 − ᾱ) x̂₀ (Salimans & Ho 2022)."""

    def __init__(self, prediction: str):
        self.prediction = prediction

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x0 = DENOISER.x0_hat(x, t)
        if self.prediction == "x0":
            return x0.to(x.dtype)
        ab = alpha_bar_at(SCHEDULE, t).reshape(-1, *([1] * (x.dim() - 1)))
        return (ab.sqrt() * DENOISER(x.double(), t) - (1 - ab).sqrt() * x0).to(x.dtype)


MODELS = {"epsilon": DENOISER, "x0": IdealAs("x0"), "v": IdealAs("v")}


def start(seed: int = 0) -> tuple[torch.Tensor, SeededNoise]:
    g = SeededNoise.range(seed, N)
    return initial_noise("ddim", SHAPE, g), g


def test_the_three_parameterisations_agree():
    x = torch.randn(50, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.full((50,), 400)
    ab = float(SCHEDULE.alpha_bar64[400])
    eps, x0, v = (MODELS[p](x, t) for p in ("epsilon", "x0", "v"))
    torch.testing.assert_close(ab**0.5 * x0 + (1 - ab) ** 0.5 * eps, x, rtol=0, atol=1e-9)  # x_t from (x̂₀, ε̂)
    torch.testing.assert_close(ab**0.5 * x - (1 - ab) ** 0.5 * v, x0, rtol=0, atol=1e-9)  # x̂₀ = √ᾱ x_t − √(1−ᾱ) v̂


def test_ideal_denoiser_is_the_posterior_mean():
    # far from any noise, x̂_0 is the nearest point; at t = T − 1, x_T carries almost nothing: x̂_0 ≈ the data mean
    t0 = torch.zeros(5, dtype=torch.long)
    torch.testing.assert_close(DENOISER.x0_hat(POINTS.float() * SCHEDULE.sqrt_alpha_bar[0], t0), POINTS,
                               rtol=0, atol=1e-9)
    x = torch.randn(200, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    far = DENOISER.x0_hat(x, torch.full((200,), 999))
    torch.testing.assert_close(far.mean(0), POINTS.mean(0), rtol=0, atol=0.05)
    # and ε̂ is consistent with x̂_0 through x_t = √ᾱ x̂_0 + √(1 − ᾱ) ε̂
    t = torch.full((200,), 300)
    ab = float(SCHEDULE.alpha_bar64[300])
    eps = DENOISER(x, t)
    torch.testing.assert_close(ab**0.5 * DENOISER.x0_hat(x, t) + (1 - ab) ** 0.5 * eps, x, rtol=0, atol=1e-9)


@pytest.mark.parametrize("sampler, steps, kwargs, tol", [
    ("ddim", 50, dict(eta=0.0), 1e-2),
    ("dpm++", 20, {}, 1e-2),
    ("heun", 10, {}, 1e-2),
    ("euler", 20, {}, 1e-2),
    ("ddim", 50, dict(eta=1.0), 2e-2),
    ("ddpm", None, {}, 2e-2),
    ("ddpm", None, dict(variance="beta"), 2e-2),
])
@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_samplers_land_on_the_data_points(sampler, steps, kwargs, tol, prediction):
    x, g = start()
    out = sample(MODELS[prediction], SCHEDULE, x, sampler=sampler, steps=steps, generator=g, prediction=prediction,
                 **kwargs)
    dist, nearest = DENOISER.distance_to_data(out)
    assert float(dist.max()) < tol, f"{sampler}: worst RMS distance {float(dist.max()):.3g}"
    # and the 64 samples spread over the points rather than collapsing onto one
    assert len(set(nearest.tolist())) >= 4


def test_without_the_noise_ddpm_collapses():
    # seed 002's "incorrect" sampler: the posterior-mean chain without noise sends every start towards the
    # data average first, so the 64 samples end on fewer points than DDPM's (the course's "collapse")
    x, g = start()
    _, nearest_no_noise = DENOISER.distance_to_data(sample(DENOISER, SCHEDULE, x, sampler="ddpm-no-noise"))
    _, nearest = DENOISER.distance_to_data(sample(DENOISER, SCHEDULE, x, sampler="ddpm", generator=g))
    assert len(set(nearest_no_noise.tolist())) <= 2 < len(set(nearest.tolist()))


def test_ode_samplers_send_each_start_to_the_same_point():
    # DDIM(η=0), DPM-Solver++(2M), Heun and Euler all solve the one probability-flow ODE: from the same x_T an
    # accurate solver reaches the same data point (only starts near a basin boundary may differ).
    x, _ = start(seed=1000)
    ends = {name: DENOISER.distance_to_data(sample(DENOISER, SCHEDULE, x, sampler=name, steps=steps))[1]
            for name, steps in (("ddim", 100), ("dpm++", 20), ("heun", 10), ("euler", 30))}
    reference = ends.pop("ddim")
    for name, nearest in ends.items():
        assert int((nearest == reference).sum()) >= N - 3, name
