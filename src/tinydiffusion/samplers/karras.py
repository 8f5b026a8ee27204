"""Euler and Heun on the Karras et al. 2022 ("EDM") noise levels, for a discrete VP model.

A VP model sees x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε; dividing by √ᾱ_t gives the variance-exploding variable
x̃ = x_t/√ᾱ_t = x_0 + σ_t ε with σ_t = √((1 − ᾱ_t)/ᾱ_t), whose probability-flow ODE is
dx̃/dσ = (x̃ − D(x̃; σ))/σ (EDM eq. 4 with s = 1). The noise levels are EDM eq. 5,

    σ_i = (σ_max^{1/ρ} + i/(n−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,  σ_n = 0,  ρ = 7,

between the trained σ_min = σ_0 and σ_max = σ_{T−1}; each σ_i is evaluated at the fractional training
timestep whose σ matches it (log-σ interpolation, :meth:`NoiseSchedule.t_from_sigma`), so the network
is asked about noise levels it was trained on. Every σ comes from the float64 table on the CPU
(``NoiseSchedule.sigmas64``) before the loop: no step reads a device tensor back to the host.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..schedule import NoiseSchedule
from .common import Callback, Denoise, Noise, emit_step


def karras_sigmas(schedule: NoiseSchedule, steps: int, rho: float = 7.0) -> list[float]:
    """EDM eq. 5 noise levels between the schedule's smallest and largest σ (without the final 0)."""
    s_min, s_max = float(schedule.sigmas64[0]), float(schedule.sigmas64[-1])
    if steps == 1:
        return [s_max]
    a, b = s_max ** (1 / rho), s_min ** (1 / rho)
    return [(a + i / (steps - 1) * (b - a)) ** rho for i in range(steps)]


def karras_timesteps(schedule: NoiseSchedule, steps: int, rho: float = 7.0) -> list[float]:
    """The fractional training timesteps of :func:`karras_sigmas` (what the network is evaluated at)."""
    return schedule.t_from_sigma(torch.tensor(karras_sigmas(schedule, steps, rho), dtype=torch.float64)).tolist()


def _euler_or_heun(denoise: Denoise, schedule: NoiseSchedule, x: Tensor, timesteps: Sequence[float],
                   noise: Noise, callback: Callback | None, second_order: bool) -> Tensor:
    sigmas = schedule.sigma_at(list(timesteps)).tolist() + [0.0]

    def d_at(x_ve: Tensor, sigma: float, t: float) -> tuple[Tensor, Tensor]:
        ab = 1 / (1 + sigma**2)
        x0, _ = denoise(x_ve * math.sqrt(ab), t, ab)
        return (x_ve - x0) / sigma, x0

    x_ve = x * math.sqrt(1 + sigmas[0] ** 2)  # x̃ = x_t/√ᾱ
    for i, t in enumerate(timesteps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        d, x0 = d_at(x_ve, sigma, t)
        x_new = x_ve + (sigma_next - sigma) * d  # Euler step (EDM Algorithm 1, line 5)
        if second_order and sigma_next > 0:  # Heun correction (lines 7–8)
            d_next, _ = d_at(x_new, sigma_next, timesteps[i + 1])
            x_new = x_ve + (sigma_next - sigma) * 0.5 * (d + d_next)
        x_next = x_new / math.sqrt(1 + sigma_next**2)
        emit_step(callback, i, t, x_ve / math.sqrt(1 + sigma**2), x0, x_next)
        x_ve = x_new
    return x_ve


def euler(denoise: Denoise, schedule: NoiseSchedule, x: Tensor, timesteps: Sequence[float], *, noise: Noise,
          callback: Callback | None = None) -> Tensor:
    """Euler steps of the probability-flow ODE in σ (EDM Algorithm 1 without the correction); n calls."""
    return _euler_or_heun(denoise, schedule, x, timesteps, noise, callback, second_order=False)


def heun(denoise: Denoise, schedule: NoiseSchedule, x: Tensor, timesteps: Sequence[float], *, noise: Noise,
         callback: Callback | None = None) -> Tensor:
    """Heun's second-order method (EDM Algorithm 1, deterministic); 2n − 1 network calls for n steps."""
    return _euler_or_heun(denoise, schedule, x, timesteps, noise, callback, second_order=True)
