"""Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2), seed 002's noise-free "incorrect" variant and
seed 000's off-by-one (both kept as demonstrations of a mistake beside the correct sampler)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor

from ..errors import UserError
from ..schedule import NoiseSchedule, posterior, respaced_beta
from .common import Callback, Denoise, Noise, emit_step, step_pairs

VARIANCES = ("beta", "beta_tilde")
#: Seed 000's σ_t = √β_{t−1}: accepted by :func:`ddpm` for :func:`ddpm_off_by_one`, not offered as a choice.
OFF_BY_ONE = "beta_prev"


def ddpm(
    denoise: Denoise,
    schedule: NoiseSchedule,
    x: Tensor,
    timesteps: Sequence[int],
    *,
    noise: Noise,
    callback: Callback | None = None,
    variance: str = "beta_tilde",
    add_noise: bool = True,
) -> Tensor:
    """x_{t'} ~ N(μ̃(x_t, x̂_0), σ² I) for each step t → t' of the list (DDPM eqs. 6–7, Algorithm 2).

    On a sub-sequence of timesteps the step uses the respaced β' = 1 − ᾱ_t/ᾱ_{t'} (Nichol & Dhariwal
    2021, §4); with every timestep it is exactly the paper's chain. ``variance`` picks σ² = β' (the
    paper's "fixed large", seed 003 option 1, seed 004) or σ² = β̃' = (1 − ᾱ_{t'})/(1 − ᾱ_t)·β' ("fixed
    small", seed 003 option 2). The last step (to clean data) adds no noise (Algorithm 2: z = 0 at t = 1).

    Seed 000 scaled its noise by √β_{t−1} instead of √β_t; seed 002 uses σ² = β_t over its 1..T chain.
    Both are this function with ``variance="beta"`` on their (mapped) schedules.

    ``add_noise=False`` is seed 002's "incorrect" sampler: the posterior mean alone, which collapses
    towards the average image — shown in the course to explain why the noise is needed.
    """
    if variance not in VARIANCES + (OFF_BY_ONE,):
        raise UserError(f"unknown DDPM variance {variance!r}; choose 'beta' (σ²=β) or 'beta_tilde' (σ²=β̃)")
    pairs = step_pairs(schedule, timesteps)
    for i, (t, t_prev, ab, ab_prev) in enumerate(pairs):
        x0, _ = denoise(x, t, ab)
        coef_x0, coef_xt, beta_tilde = posterior(ab, ab_prev)
        x_next = coef_x0 * x0 + coef_xt * x
        if add_noise and t_prev >= 0:
            if variance == OFF_BY_ONE:  # the β of the next step of the list: β_{t−1} on the full chain
                var = respaced_beta(*pairs[i + 1][2:])
            else:
                var = respaced_beta(ab, ab_prev) if variance == "beta" else beta_tilde
            x_next = x_next + math.sqrt(var) * noise(x, i)
        emit_step(callback, i, t, x, x0, x_next)
        x = x_next
    return x


def ddpm_no_noise(
    denoise: Denoise,
    schedule: NoiseSchedule,
    x: Tensor,
    timesteps: Sequence[int],
    *,
    noise: Noise,
    callback: Callback | None = None,
) -> Tensor:
    """Seed 002's teaching demo: DDPM without the added noise (it collapses; do not use for real samples)."""
    return ddpm(denoise, schedule, x, timesteps, noise=noise, callback=callback, add_noise=False)


def ddpm_off_by_one(
    denoise: Denoise,
    schedule: NoiseSchedule,
    x: Tensor,
    timesteps: Sequence[int],
    *,
    noise: Noise,
    callback: Callback | None = None,
) -> Tensor:
    """Seed 000's ``reverse_q``: DDPM with σ² = β but the noise of step t scaled by √β_{t−1} (``B[t-1]``).

    A demonstration: on seed 000's schedule β_{t−1} differs from β_t by less than 1 %, except in the
    last steps, so its samples look like those of the correct sampler, which is why the slip survived.
    """
    return ddpm(denoise, schedule, x, timesteps, noise=noise, callback=callback, variance=OFF_BY_ONE)
