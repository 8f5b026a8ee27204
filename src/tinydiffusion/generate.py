"""Draw many samples from a network in fixed-size chunks, with per-sample seeds and conditions.

Used by previews during training, ``tinydiffusion sample``, ``eval`` and ``report``. Sample i always
uses seed ``seed + i``, so the result does not depend on the chunk size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from .errors import UserError
from .rng import SeededNoise
from .samplers import SAMPLERS, SamplerStep, initial_noise, sample
from .schedule import NoiseSchedule
from .value_range import DEFAULT_RANGE, to_signed_unit


@dataclass
class SampleSettings:
    """How to sample: the fields of a run's ``[sample]`` section."""

    sampler: str = "ddim"
    steps: int | None = 50
    eta: float = 0.0
    guidance: float | None = None
    spacing: str = "trailing"
    variance: str = "beta_tilde"
    clip_x0: bool = False

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "SampleSettings":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def sample_shape(data: dict[str, Any]) -> tuple[int, ...]:
    """The per-sample shape from dataset facts: (C, H, W) for images, (D,) for points."""
    if data.get("kind") == "points":
        return (int(data["dim"]),)
    return (int(data["channels"]), int(data["image_size"]), int(data["image_size"]))


def class_grid_labels(n: int, num_classes: int) -> Tensor:
    """n labels laid out one class per row: ⌈n/C⌉ of each class, class-major, cut to n."""
    per = max(1, -(-n // num_classes))
    return torch.arange(num_classes).repeat_interleave(per)[:n]


@torch.no_grad()
def generate(
    model: nn.Module,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    n: int,
    *,
    settings: SampleSettings,
    prediction: str = "epsilon",
    seed: int = 0,
    cond: Tensor | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    callback: Callable[[SamplerStep], None] | None = None,
    data_range: tuple[float, float] = DEFAULT_RANGE,
) -> Tensor:
    """``n`` samples of per-sample ``shape`` (C, H, W) or (D,), as float; images in [−1, 1].

    ``cond`` holds one condition per sample (class ids or context rows) or is None. The callback, if
    any, sees the steps of every chunk in turn (use one chunk for animations). ``data_range`` is the
    value range the model was trained in (a run's ``data.range``, see :mod:`tinydiffusion.value_range`):
    uniform starting noise fills it, ``clip_x0`` clamps to it, and the samples and the callback's
    tensors are mapped from it to [−1, 1], the convention of every picture and metric.
    """
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    if settings.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {settings.sampler!r}; choose one of {', '.join(SAMPLERS)}")
    seeds = SeededNoise.range(seed, n)
    clip: bool | tuple[float, float] = data_range if settings.clip_x0 else False
    if callback is not None and data_range != DEFAULT_RANGE:
        callback = _mapped(callback, data_range)
    out = []
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        noise = seeds[start:stop].to(device)
        x_T = initial_noise(settings.sampler, shape, noise, device, data_range)
        kwargs: dict[str, Any] = {}
        if cond is not None:
            kwargs["cond"] = cond[start:stop].to(device)
        x = sample(model, schedule, x_T, sampler=settings.sampler, steps=settings.steps, eta=settings.eta,
                   generator=noise, callback=callback, spacing=settings.spacing, prediction=prediction,
                   variance=settings.variance, clip_x0=clip,
                   guidance=settings.guidance if cond is not None else None, **kwargs)
        out.append(to_signed_unit(x.float(), data_range).cpu())
    return torch.cat(out)


def _mapped(callback: Callable[[SamplerStep], None], data_range: tuple[float, float]) -> Callable[[SamplerStep], None]:
    """``callback`` fed steps whose tensors are mapped from ``data_range`` to [−1, 1]."""

    def mapped(step: SamplerStep) -> None:
        callback(replace(step, x_t=to_signed_unit(step.x_t, data_range),
                         x0_hat=to_signed_unit(step.x0_hat, data_range),
                         x_next=to_signed_unit(step.x_next, data_range)))

    return mapped
