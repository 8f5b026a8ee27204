"""Samplers: one signature, one registry, and the public :func:`sample` entry point.

| name          | method                                             | network calls | stochastic |
|---------------|----------------------------------------------------|---------------|------------|
| ``ddpm``      | ancestral DDPM, σ² = β̃ or β (Ho et al. 2020)       | n             | yes        |
| ``ddim``      | DDIM with η (Song et al. 2021)                     | n             | if η > 0   |
| ``dpm++``     | DPM-Solver++(2M) (Lu et al. 2022)                  | n             | no         |
| ``euler``     | Euler on Karras σ's (Karras et al. 2022)           | n             | no         |
| ``heun``      | Heun on Karras σ's (Karras et al. 2022)            | 2n − 1        | no         |
| ``ddpm-no-noise`` | seed 002's "incorrect" DDPM without noise (demo) | n           | no         |
| ``ddpm-off-by-one`` | seed 000's DDPM with σ_t = √β_{t−1} (demo)     | n             | yes        |
| ``x0-step``   | seed 001: step 1/(n−i) towards x̂_0 (demo)          | n             | no         |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..errors import UserError
from ..objectives import PREDICTION_ATTR
from ..progress import Progress, progress_bar
from ..rng import SeededNoise, Stream
from ..schedule import NoiseSchedule
from ..value_range import DEFAULT_RANGE
from . import ancestral, ddim, dpm_solver, karras, x0_step
from .common import (SPACINGS, Callback, SamplerStep, check_timesteps, make_denoiser, make_noise,
                     spaced_timesteps)

__all__ = ["SAMPLERS", "SamplerSpec", "SamplerStep", "sample", "sampler_options", "sampler_timesteps", "initial_noise",
           "spaced_timesteps"]

#: The options of :func:`sample` that only some samplers use, with their defaults.
OPTION_DEFAULTS: dict[str, Any] = {"eta": 0.0, "variance": "beta_tilde", "spacing": "trailing"}


@dataclass(frozen=True)
class SamplerSpec:
    """What the CLI and :func:`sample` need to know about a sampler."""

    fn: Callable[..., Tensor]
    description: str
    default_steps: int | None  # None: all T training steps
    karras: bool = False  # evaluates at Karras σ's (fractional timesteps) by default
    start: str = "gaussian"  # the distribution of x_T: "gaussian" or "uniform" (seed 001)
    second_order: bool = False  # two network calls per step but the last
    options: tuple[str, ...] = ("spacing",)  # which of OPTION_DEFAULTS it uses

    def network_calls(self, steps: int) -> int:
        """How many network evaluations ``steps`` steps cost (guidance doubles the batch, not the calls)."""
        return 2 * steps - 1 if self.second_order else steps


SAMPLERS: dict[str, SamplerSpec] = {
    "ddpm": SamplerSpec(ancestral.ddpm, "ancestral DDPM (σ²=β̃ by default, --variance beta for σ²=β)", None,
                        options=("spacing", "variance")),
    "ddim": SamplerSpec(ddim.ddim, "DDIM; deterministic at eta=0, eta=1 adds DDPM-like noise", 50,
                        options=("spacing", "eta")),
    "dpm++": SamplerSpec(dpm_solver.dpmpp_2m, "DPM-Solver++(2M), good samples in 10-20 network calls", 20),
    "euler": SamplerSpec(karras.euler, "Euler on Karras noise levels (probability-flow ODE)", 20, karras=True,
                         options=()),
    "heun": SamplerSpec(karras.heun, "Heun on Karras noise levels (2n-1 network calls)", 10, karras=True,
                        second_order=True, options=()),
    "ddpm-no-noise": SamplerSpec(ancestral.ddpm_no_noise, "seed 002's incorrect DDPM without added noise (a demo)", None),
    "x0-step": SamplerSpec(x0_step.x0_step, "seed 001: move 1/(n-i) towards the predicted image (x0 models)", 5,
                           start="uniform", options=()),
    "ddpm-off-by-one": SamplerSpec(ancestral.ddpm_off_by_one, "seed 000's DDPM whose noise is sqrt(beta[t-1]), "
                                   "an off-by-one (a demo)", None),
}


def _spec(name: str) -> SamplerSpec:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise UserError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}") from None


def sampler_options(sampler: str, **given: Any) -> dict[str, Any]:
    """The options of ``given`` (None: not given) that ``sampler`` uses, defaults filled in.

    An option the sampler does not use is refused when it is set to anything but its default (DDIM's
    ``eta`` for DDPM, DDPM's ``variance`` elsewhere, a ``spacing`` for the Karras-σ samplers would
    otherwise be ignored in silence); left at its default it is dropped.
    """
    spec = _spec(sampler)
    used: dict[str, Any] = {}
    for name, value in given.items():
        if name in spec.options:
            used[name] = OPTION_DEFAULTS[name] if value is None else value
        elif value is not None and value != OPTION_DEFAULTS[name]:
            users = ", ".join(n for n, s in SAMPLERS.items() if name in s.options)
            raise UserError(f"{name} {value!r} does not apply to the {sampler} sampler (only to {users}); "
                            f"leave {name} out or choose another sampler")
    return used


def sampler_timesteps(schedule: NoiseSchedule, sampler: str, steps: int | None = None,
                      spacing: str = "trailing") -> list:
    """The default descending timestep list of ``sampler`` with ``steps`` steps."""
    spec = _spec(sampler)
    T = schedule.num_timesteps
    n = steps if steps is not None else (spec.default_steps or T)
    if n < 1:
        raise UserError(f"the number of sampling steps must be at least 1, got {n}")
    if spec.karras:
        return karras.karras_timesteps(schedule, n)
    if sampler == "x0-step":  # the noise amount 1 − i/n of seed 001, on the timestep scale
        return [(1 - i / n) * (T - 1) for i in range(n)]
    return spaced_timesteps(T, n, spacing)


def initial_noise(sampler: str, shape: Sequence[int], generator: torch.Generator | SeededNoise | None = None,
                  device: torch.device | str = "cpu", value_range: tuple[float, float] = DEFAULT_RANGE) -> Tensor:
    """x_T for ``sampler``: N(0, I), or for seed 001's x0-step sampler uniform over the data's ``value_range``.

    (U(−1, 1) by default; U(0, 1) for seed 001's own [0, 1] data, where the course starts.) With
    :class:`SeededNoise`, ``shape`` is per sample and row i depends only on seed i.
    """
    uniform = _spec(sampler).start == "uniform"
    low, high = value_range
    if isinstance(generator, SeededNoise):
        g = generator.to(device)
        x = g.rand(shape, Stream.INITIAL_NOISE) * (high - low) + low if uniform else g.randn(shape, Stream.INITIAL_NOISE)
        return x
    gen_device = generator.device if generator is not None else device
    if uniform:
        return (torch.rand(tuple(shape), generator=generator, device=gen_device) * (high - low) + low).to(device)
    return torch.randn(tuple(shape), generator=generator, device=gen_device).to(device)


@torch.no_grad()
def sample(
    model: nn.Module | Callable[..., Tensor],
    schedule: NoiseSchedule,
    x_T: Tensor,
    *,
    sampler: str = "ddim",
    steps: int | None = None,
    timesteps: Sequence[float] | None = None,
    eta: float | None = None,
    generator: torch.Generator | SeededNoise | None = None,
    callback: Callback | None = None,
    spacing: str | None = None,
    prediction: str | None = None,
    variance: str | None = None,
    clip_x0: bool | tuple[float, float] = False,
    guidance: float | None = None,
    progress: Progress = None,
    **cond: Any,
) -> Tensor:
    """Run ``sampler`` from ``x_T`` down to clean data and return x_0.

    ``model(x, t, **cond)`` predicts ε (or x_0 / v, see ``prediction``), with ``t`` an int64 tensor of
    training timesteps of shape (B,) (float for the σ-space samplers ``euler``/``heun``).
    ``timesteps`` is an explicit descending list of training timesteps; otherwise ``steps`` steps are
    placed by ``spacing`` (``trailing``, ``leading`` or ``linspace``; see :func:`spaced_timesteps`).
    ``eta`` (DDIM), ``variance`` (DDPM) and ``spacing`` (not the Karras-σ samplers) are refused with a
    :class:`UserError` where the sampler does not use them (see :func:`sampler_options`).
    ``generator`` is a ``torch.Generator`` or a :class:`~tinydiffusion.rng.SeededNoise` (per-sample
    seeds: the same seed gives the same image at any batch size). ``guidance = w`` applies
    classifier-free guidance ε̂_u + w(ε̂_c − ε̂_u) to the condition passed in ``cond``.
    ``callback`` receives a :class:`SamplerStep` after every step. The model's train/eval mode is left
    as it is: call ``model.eval()`` first.

    ``prediction`` defaults to what the model declares (networks loaded by :func:`tinydiffusion.load`
    carry the prediction type of their ``model.safetensors``), else ``"epsilon"``; a prediction type
    that contradicts the declared one is refused. A model may return a tensor or a diffusers
    ``BaseOutput`` (its ``.sample`` is used). ``progress`` shows a bar of network calls: ``None`` when
    stderr is a terminal, ``True``/``False`` always/never, or a tqdm bar to advance (shared by chunks).
    """
    spec = _spec(sampler)
    prediction = _prediction(model, prediction)
    options = sampler_options(sampler, eta=eta, variance=variance, spacing=spacing)
    spacing = options.pop("spacing", OPTION_DEFAULTS["spacing"])
    if spacing not in SPACINGS:
        raise UserError(f"unknown timestep spacing {spacing!r}; choose one of {', '.join(SPACINGS)}")
    if sampler == "x0-step" and prediction != "x0":
        raise UserError("the x0-step sampler needs a model that predicts x0 (seed 001's corrupt objective)")
    if timesteps is not None and steps is not None:
        raise UserError("give either steps or timesteps, not both")
    T = schedule.num_timesteps
    if timesteps is not None:
        ts = check_timesteps(timesteps, T, integer=not spec.karras and sampler != "x0-step")
    else:
        ts = sampler_timesteps(schedule, sampler, steps, spacing)
    if isinstance(generator, SeededNoise) and len(generator) != x_T.shape[0]:
        raise UserError(f"{len(generator)} seeds for a batch of {x_T.shape[0]}")
    if isinstance(generator, SeededNoise):
        generator = generator.to(x_T.device)
    denoise = make_denoiser(model, prediction=prediction, guidance=guidance, clip_x0=clip_x0, cond=cond)
    own_bar = not isinstance(progress, tqdm)
    bar = progress_bar(spec.network_calls(len(ts)), sampler, progress) if own_bar else progress

    def counted(x: Tensor, t: float, alpha_bar: float) -> tuple[Tensor, Tensor]:
        out = denoise(x, t, alpha_bar)
        bar.update(1)
        return out

    try:
        return spec.fn(counted, schedule, x_T, ts, noise=make_noise(generator), callback=callback, **options)
    finally:
        if own_bar:
            bar.close()


def _prediction(model: object, prediction: str | None) -> str:
    """The prediction type to sample with: the one asked for, checked against the one the model declares."""
    declared = getattr(model, PREDICTION_ATTR, None)
    if prediction is None:
        return declared or "epsilon"
    if declared is not None and prediction != declared:
        raise UserError(f"prediction={prediction!r} contradicts this model, which was trained to predict "
                        f"{declared!r} (its model.safetensors says so); leave prediction out or pass "
                        f"prediction={declared!r}")
    return prediction
