"""Seed 001's first sampler: move a fraction of the way towards the predicted clean image each step."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from ..schedule import NoiseSchedule
from .common import Callback, Denoise, Noise, emit_step


def x0_step(
    denoise: Denoise,
    schedule: NoiseSchedule,
    x: Tensor,
    timesteps: Sequence[int],
    *,
    noise: Noise,
    callback: Callback | None = None,
) -> Tensor:
    """x ← x + (x̂_0 − x)/(n − i) for i = 0..n−1: after step i the start is weighted (n−i−1)/n.

    Made for x_0-predicting models trained with :class:`~tinydiffusion.objectives.CorruptLoss`
    (start from uniform noise, seed 001). The last step lands exactly on the model's prediction.
    The timesteps only tell the network where it is; no noise schedule enters the update.
    """
    n = len(timesteps)
    for i, t in enumerate(timesteps):
        # ᾱ only converts between prediction types; an x̂_0-predicting model does not use it.
        x0, _ = denoise(x, t, schedule.alpha_bar_at(round(t)))
        mix = 1.0 / (n - i)
        x_next = x * (1 - mix) + x0 * mix
        emit_step(callback, i, t, x, x0, x_next)
        x = x_next
    return x
