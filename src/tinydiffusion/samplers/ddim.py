"""DDIM sampling (Song et al. 2021, eq. 12), deterministic at η = 0."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor

from ..errors import UserError
from ..schedule import NoiseSchedule
from .common import Callback, Denoise, Noise, emit_step, step_pairs


def ddim(
    denoise: Denoise,
    schedule: NoiseSchedule,
    x: Tensor,
    timesteps: Sequence[int],
    *,
    noise: Noise,
    callback: Callback | None = None,
    eta: float = 0.0,
) -> Tensor:
    """x_{t'} = √ᾱ_{t'} x̂_0 + √(1 − ᾱ_{t'} − σ²) ε̂ + σ z, with
    σ = η √((1 − ᾱ_{t'})/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_{t'})  (DDIM eqs. 12 and 16).

    η = 0 is the deterministic DDIM; η = 1 has DDPM's posterior variance β̃ (but keeps DDIM's mean form).
    """
    if eta < 0:
        raise UserError(f"eta must be ≥ 0, got {eta}")
    for i, (t, t_prev, ab, ab_prev) in enumerate(step_pairs(schedule, timesteps)):
        x0, eps = denoise(x, t, ab)
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
        x_next = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x_next = x_next + sigma * noise(x, i)
        emit_step(callback, i, t, x, x0, x_next)
        x = x_next
    return x
