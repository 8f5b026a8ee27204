"""What every sampler shares: the denoiser view of a network, timestep lists, noise, and callbacks.

Every sampler is a pure function with one signature (the k-diffusion rule):

    sampler(denoise, schedule, x, timesteps, *, noise, callback, **options) -> x_0

* ``denoise(x, t, alpha_bar) -> (x̂_0, ε̂)`` wraps the network: prediction type, condition,
  classifier-free guidance and x̂_0 clipping live here, not in the samplers;
* ``timesteps`` is a descending list of training timesteps (ints; the σ-space samplers may use
  fractional ones); the step after the last one is always clean data (t = −1, ᾱ = 1), and the
  previous timestep of a step is always the next entry of the list, never stride arithmetic;
* ``noise(x, k)`` returns the fresh noise of step k (per-sample seeds or a torch.Generator);
* ``callback(SamplerStep)`` sees every step, for trajectories and animations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..conditioning import null_condition
from ..errors import UserError
from ..objectives import split_prediction
from ..rng import SeededNoise, Stream, stream
from ..schedule import NoiseSchedule

SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace")


@dataclass(frozen=True)
class SamplerStep:
    """One step of a sampler, as passed to ``callback``.

    ``index`` counts steps from 0; ``t`` is the timestep the network saw (float for σ-space samplers);
    ``x_t`` the input of the step, ``x0_hat`` the denoiser's estimate of the clean image, ``x_next`` the
    output of the step (the input of the next one, or the final sample after the last step).
    """

    index: int
    t: float
    x_t: Tensor
    x0_hat: Tensor
    x_next: Tensor


Callback = Callable[[SamplerStep], None]


class Denoise(Protocol):
    def __call__(self, x: Tensor, t: float, alpha_bar: float) -> tuple[Tensor, Tensor]: ...


class Noise(Protocol):
    def __call__(self, like: Tensor, step: int) -> Tensor: ...


def spaced_timesteps(T: int, steps: int, spacing: str = "trailing") -> list[int]:
    """A descending list of ``steps`` training timesteps out of 0..T−1 (Lin et al. 2024, Table 2).

    ``leading``: 0, T//n, 2·T//n, …  (DDIM paper; never reaches T−1).
    ``trailing``: round(T − k·T/n) − 1 for k = 0..n−1  (starts at T−1, Lin et al. 2024 §3.3; seed 002's DDIM).
    ``linspace``: round(k·(T−1)/(n−1)) for k = 0..n−1  (ends at t = 0).

    The ratios are exact fractions and ``round`` takes exact halves to the even neighbour, so the list
    does not depend on floating-point luck; diffusers' ``set_timesteps`` gives the same lists except
    where its float arithmetic tips an exact half the other way (or, for ``trailing``, makes
    ``np.arange`` emit an extra timestep −1).
    """
    if not 1 <= steps <= T:
        raise UserError(f"the number of sampling steps must be between 1 and T={T}, got {steps}")
    if spacing == "leading":
        ratio = T // steps
        ts = [k * ratio for k in range(steps)]
    elif spacing == "trailing":
        ts = [round(Fraction(T * (steps - k), steps)) - 1 for k in range(steps)]
    elif spacing == "linspace":
        ts = [round(Fraction(k * (T - 1), max(steps - 1, 1))) for k in range(steps)]
    else:
        raise UserError(f"unknown timestep spacing {spacing!r}; choose one of {', '.join(SPACINGS)}")
    out = sorted(set(ts), reverse=True)
    if len(out) != steps:
        raise UserError(f"{spacing} spacing cannot place {steps} distinct steps in T={T}")
    return out


def check_timesteps(timesteps: Sequence[float], T: int, *, integer: bool = True) -> list:
    """Validate an explicit timestep list: strictly descending, inside [0, T−1], integers where required."""
    ts = [float(t) for t in timesteps]
    if not ts:
        raise UserError("the timestep list is empty")
    if integer and any(t != int(t) for t in ts):
        raise UserError("this sampler needs integer timesteps")
    if any(not 0 <= t <= T - 1 for t in ts):
        raise UserError(f"timesteps must lie in [0, {T - 1}], got {min(ts):g}..{max(ts):g}")
    if any(a <= b for a, b in zip(ts, ts[1:])):
        raise UserError("timesteps must be strictly descending (from noisy to clean)")
    return [int(t) for t in ts] if integer else ts


def make_noise(generator: torch.Generator | SeededNoise | None) -> Noise:
    """A step-noise function from a torch.Generator (batch-dependent) or per-sample seeds."""
    if isinstance(generator, SeededNoise):
        seeded = generator

        def seeded_noise(like: Tensor, step: int) -> Tensor:
            return seeded.randn(like.shape[1:], stream(Stream.STEP_NOISE, step)).to(like)

        return seeded_noise

    def torch_noise(like: Tensor, step: int) -> Tensor:
        device = generator.device if generator is not None else like.device
        return torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype).to(like.device)

    return torch_noise


def make_denoiser(
    model: nn.Module | Callable[..., Tensor],
    *,
    prediction: str = "epsilon",
    guidance: float | None = None,
    clip_x0: bool | tuple[float, float] = False,
    cond: dict[str, Any] | None = None,
) -> Denoise:
    """Wrap ``model(x, t, **cond)`` as ``denoise(x, t, alpha_bar) -> (x̂_0, ε̂)``.

    With ``guidance = w`` and a condition, the conditional and null-conditional passes run as one
    batched forward and combine as ε̂_u + w (ε̂_c − ε̂_u) (equivalently on x̂_0 or v̂, which are affine in
    the output with weights summing to 1). ``clip_x0`` clamps x̂_0 to [−1, 1] (or the given range)
    and recomputes ε̂ from the clamped x̂_0, so the pair stays consistent.
    """
    cond = {k: v for k, v in (cond or {}).items() if v is not None}
    guided = guidance is not None and guidance != 1.0 and bool(cond)
    if guidance is not None and guidance != 1.0 and not cond:
        raise UserError("classifier-free guidance needs a condition (class labels or context vectors)")
    if guided:
        pair = {k: torch.cat([v, null_condition(v)]) if isinstance(v, Tensor) else v for k, v in cond.items()}
    lo, hi = (clip_x0 if isinstance(clip_x0, tuple) else (-1.0, 1.0))

    def denoise(x: Tensor, t: float, alpha_bar: float) -> tuple[Tensor, Tensor]:
        dtype = torch.long if float(t) == int(t) else torch.float32
        # The sampler's working precision: float32 at least (autocast outputs bf16), float64 if x is.
        work = torch.promote_types(x.dtype, torch.float32)
        if guided:
            tt = torch.full((2 * x.shape[0],), t, device=x.device, dtype=dtype)
            out_c, out_u = _tensor(model(torch.cat([x, x]), tt, **pair)).to(work).chunk(2)
            output = out_u + guidance * (out_c - out_u)
        else:
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=dtype)
            output = _tensor(model(x, tt, **cond)).to(work)
        x0, eps = split_prediction(output, x, alpha_bar, prediction)
        if clip_x0:
            x0 = x0.clamp(lo, hi)
            _, eps = split_prediction(x0, x, alpha_bar, "x0")
        return x0, eps

    return denoise


def _tensor(output: Any) -> Tensor:
    """A network's output as a tensor: diffusers' models return a ``BaseOutput`` holding it as ``.sample``."""
    if isinstance(output, Tensor):
        return output
    sample = getattr(output, "sample", None)
    if isinstance(sample, Tensor):
        return sample
    raise UserError(f"the model returned a {type(output).__name__}; it must return a tensor shaped like x "
                    "(or a diffusers output with .sample)")


def emit_step(callback: Callback | None, index: int, t: float, x_t: Tensor, x0_hat: Tensor, x_next: Tensor) -> None:
    """Hand one :class:`SamplerStep` to ``callback``, if there is a callback."""
    if callback is not None:
        callback(SamplerStep(index, float(t), x_t, x0_hat, x_next))


def step_pairs(schedule: NoiseSchedule, timesteps: Sequence[int]) -> list[tuple[int, int, float, float]]:
    """(t, t_prev, ᾱ_t, ᾱ_prev) for every step, t_prev taken from the list (−1 after the last)."""
    prevs = list(timesteps[1:]) + [-1]
    return [(t, p, schedule.alpha_bar_at(t), schedule.alpha_bar_at(p)) for t, p in zip(timesteps, prevs)]
