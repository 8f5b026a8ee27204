"""DPM-Solver++(2M): the multistep second-order data-prediction solver of Lu et al. 2022 (Algorithm 2)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor

from ..schedule import NoiseSchedule
from .common import Callback, Denoise, Noise, emit_step, step_pairs


def dpmpp_2m(
    denoise: Denoise,
    schedule: NoiseSchedule,
    x: Tensor,
    timesteps: Sequence[int],
    *,
    noise: Noise,
    callback: Callback | None = None,
) -> Tensor:
    """Solve the probability-flow ODE in λ = log(α/σ) with α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t):

        x_{t'} = (σ_{t'}/σ_t) x_t − α_{t'}(e^{−h} − 1) D,   h = λ_{t'} − λ_t,
        D = x̂_0(t)                                       (first order: the first step, and the last),
        D = (1 + 1/(2r)) x̂_0(t) − 1/(2r) x̂_0(t_before),   r = h_before/h   (second order otherwise).

    The model is evaluated only at the trained integer timesteps of the list; the last step goes to
    σ = 0 (clean data), where the update reduces to x = x̂_0 — the choices of diffusers'
    ``DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero")``.
    One network call per step.
    """
    x0_before: Tensor | None = None
    h_before = 0.0
    for i, (t, t_prev, ab, ab_prev) in enumerate(step_pairs(schedule, timesteps)):
        x0, _ = denoise(x, t, ab)
        if t_prev < 0:
            x_next = x0  # σ_{t'} = 0: the ODE solution at clean data is the data prediction
        else:
            lam, lam_prev = _lambda(ab), _lambda(ab_prev)
            h = lam_prev - lam
            alpha_prev = math.sqrt(ab_prev)
            ratio = math.sqrt((1 - ab_prev) / (1 - ab))
            if x0_before is None:
                d = x0
            else:
                r = h_before / h
                d = (1 + 0.5 / r) * x0 - (0.5 / r) * x0_before
            x_next = ratio * x - alpha_prev * math.expm1(-h) * d
            h_before = h
        x0_before = x0
        emit_step(callback, i, t, x, x0, x_next)
        x = x_next
    return x


def _lambda(alpha_bar: float) -> float:
    """λ = log(α/σ) = ½ log(ᾱ/(1 − ᾱ)), the half log-SNR."""
    return 0.5 * math.log(alpha_bar / (1 - alpha_bar))
