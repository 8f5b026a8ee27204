"""Draw many samples from a network in fixed-size chunks, with per-sample seeds and conditions.

Used by previews during training, ``tinydiffusion sample``, ``eval`` and ``report``. Sample i always
uses seed ``seed + i``, so the result does not depend on the chunk size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from .errors import UserError
from .limits import check_memory
from .progress import progress_bar
from .rng import SeededNoise
from .samplers import SAMPLERS, SamplerStep, initial_noise, sample, sampler_timesteps
from .samplers.ancestral import VARIANCES
from .samplers.common import SPACINGS
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

    def sampler_options(self) -> dict[str, Any]:
        """eta, variance and spacing as far as the sampler uses them (a run's settings for another sampler drop out)."""
        return {name: getattr(self, name) for name in SAMPLERS[self.sampler].options}

    def check(self, label: Callable[[str], str], *, objective: str | None = None,
              prediction: str | None = None) -> None:
        """One line for a setting that cannot work, before any sampling; ``label(field)`` names the field the
        way the user gave it (``--steps``, ``sample.steps``, …). ``objective``/``prediction``: the model's."""
        if self.sampler not in SAMPLERS:
            raise UserError(f"{label('sampler')} must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int)
                                       or self.steps < 1):
            raise UserError(f"{label('steps')} must be at least 1, got {self.steps!r}")
        if not _finite(self.eta) or self.eta < 0:
            raise UserError(f"{label('eta')} must be a finite number of at least 0 (0: deterministic DDIM, 1: as "
                            f"much noise as DDPM), got {self.eta!r}")
        if self.guidance is not None and not _finite(self.guidance):
            raise UserError(f"{label('guidance')} must be a finite number (1: plain conditional), got {self.guidance!r}")
        if self.spacing not in SPACINGS:
            raise UserError(f"{label('spacing')} must be one of {', '.join(SPACINGS)}, got {self.spacing!r}")
        if self.variance not in VARIANCES:
            raise UserError(f"{label('variance')} must be one of {', '.join(VARIANCES)}, got {self.variance!r}")
        if not isinstance(self.clip_x0, bool):
            raise UserError(f"{label('clip_x0')} must be true or false, got {self.clip_x0!r}")
        if objective == "corrupt" and self.sampler != "x0-step":
            raise UserError(f"this model was trained with seed 001's corrupt objective; only x0-step fits it, not "
                            f"{label('sampler')} {self.sampler}")
        if self.sampler == "x0-step" and prediction is not None and prediction != "x0":
            raise UserError(f"{label('sampler')} x0-step needs a model that predicts x0 (seed 001's corrupt "
                            "objective)")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sample_shape(data: dict[str, Any]) -> tuple[int, ...]:
    """The per-sample shape from dataset facts: (C, H, W) for images, (D,) for points."""
    if data.get("kind") == "points":
        return (int(data["dim"]),)
    return (int(data["channels"]), int(data["image_size"]), int(data["image_size"]))


def class_rows(n: int, num_classes: int, *, one_hot: bool = False) -> tuple[Tensor, int]:
    """n conditions laid out one class per grid row, and the longest row ⌈n/C⌉.

    Class-major and as even as possible: ⌊n/C⌋ or ⌈n/C⌉ of each class (the first classes get the extra
    ones), so a grid with one row per class has no orphan row; with n < C, classes 0..n−1. As int64 class
    ids, or with ``one_hot`` as float one-hot context vectors (one context axis per row, seed 002's models).
    """
    labels = (torch.arange(n) % num_classes).sort().values
    per = max(1, -(-n // num_classes))
    return (torch.nn.functional.one_hot(labels, num_classes).float() if one_hot else labels), per


def check_sample_memory(n: int, shape: Sequence[int], frames: int = 0) -> None:
    """Refuse ``n`` samples of per-sample ``shape`` (plus ``frames`` kept steps of x_t, x̂_0 and x_t−1 each, for
    an animation) that cannot fit in memory (:mod:`tinydiffusion.limits`)."""
    per_sample = math.prod(shape) * 4  # float32
    what = f"-n {n}: {n:,} samples of shape {tuple(shape)}" + (f" with {frames} animation frames" if frames else "")
    check_memory((3 + 3 * frames) * n * per_sample, what, "ask for fewer samples")


@torch.no_grad()
def generate(
    model: nn.Module,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    n: int,
    *,
    settings: SampleSettings,
    prediction: str | None = None,
    seed: int = 0,
    cond: Tensor | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    callback: Callable[[SamplerStep], None] | None = None,
    progress: bool | None = None,
    data_range: tuple[float, float] = DEFAULT_RANGE,
) -> Tensor:
    """``n`` samples of per-sample ``shape`` (C, H, W) or (D,), as float; images in [−1, 1].

    ``cond`` holds one condition per sample (class ids or context rows) or is None. The callback, if
    any, sees the steps of every chunk in turn (use one chunk for animations). ``prediction`` defaults
    to the model's declared one (see :func:`~tinydiffusion.samplers.sample`). ``progress``: one bar of
    network calls over all chunks (``None``: when stderr is a terminal). ``data_range`` is the value
    range the model was trained in (a run's ``data.range``, see :mod:`tinydiffusion.value_range`):
    uniform starting noise fills it, ``clip_x0`` clamps to it, and the samples and the callback's
    tensors are mapped from it to [−1, 1], the convention of every picture and metric.
    """
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    if batch_size < 1:
        raise UserError(f"the batch size must be at least 1, got {batch_size}")
    if settings.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {settings.sampler!r}; choose one of {', '.join(SAMPLERS)}")
    check_sample_memory(n, shape)
    seeds = SeededNoise.range(seed, n)
    clip: bool | tuple[float, float] = data_range if settings.clip_x0 else False
    if callback is not None and data_range != DEFAULT_RANGE:
        callback = _mapped(callback, data_range)
    out = []
    with progress_bar(network_calls(schedule, settings, n, batch_size), settings.sampler, progress) as bar:
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            noise = seeds[start:stop].to(device)
            x_T = initial_noise(settings.sampler, shape, noise, device, data_range)
            kwargs: dict[str, Any] = {}
            if cond is not None:
                kwargs["cond"] = cond[start:stop].to(device)
            x = sample(model, schedule, x_T, sampler=settings.sampler, steps=settings.steps, generator=noise,
                       callback=callback, prediction=prediction, clip_x0=clip,
                       guidance=settings.guidance if cond is not None else None, progress=bar,
                       **settings.sampler_options(), **kwargs)
            out.append(to_signed_unit(x.float(), data_range).cpu())
    x = torch.cat(out)
    if not bool(torch.isfinite(x).all()):
        raise UserError("the samples came out NaN or infinite: the network's predictions blew up with these "
                        "settings; try a smaller guidance, eta or another sampler")
    return x


def _mapped(callback: Callable[[SamplerStep], None], data_range: tuple[float, float]) -> Callable[[SamplerStep], None]:
    """``callback`` fed steps whose tensors are mapped from ``data_range`` to [−1, 1]."""

    def mapped(step: SamplerStep) -> None:
        callback(replace(step, x_t=to_signed_unit(step.x_t, data_range),
                         x0_hat=to_signed_unit(step.x0_hat, data_range),
                         x_next=to_signed_unit(step.x_next, data_range)))

    return mapped


def sampler_steps(schedule: NoiseSchedule, settings: SampleSettings) -> int:
    """How many steps ``settings`` take on ``schedule`` (the sampler's default when ``steps`` is None)."""
    return len(sampler_timesteps(schedule, settings.sampler, settings.steps, settings.spacing))


def network_calls(schedule: NoiseSchedule, settings: SampleSettings, n: int = 1, batch_size: int = 256) -> int:
    """The network calls :func:`generate` makes for ``n`` samples: calls per chunk × ⌈n / batch_size⌉ chunks."""
    per_chunk = SAMPLERS[settings.sampler].network_calls(sampler_steps(schedule, settings))
    return per_chunk * -(-n // batch_size)
