"""What the network predicts, how to convert between predictions, and the training losses.

A network's output is one of three parameterisations of the same denoiser (Salimans & Ho 2022, §4):

* ``"epsilon"``: ε̂, the noise in x_t = √ᾱ x_0 + √(1−ᾱ) ε (DDPM eq. 4 read backwards);
* ``"x0"``: x̂_0 directly (seed 001, Karras-style denoisers);
* ``"v"``: v̂ = √ᾱ ε − √(1−ᾱ) x_0 (Salimans & Ho 2022, eq. 14 area).

:func:`split_prediction` turns any of them into the pair (x̂_0, ε̂) that samplers use. The losses are
small callables ``loss(model, x0, cond, rng) -> (B,)`` per-sample losses: they draw what they need from
``rng`` (a :class:`~tinydiffusion.rng.BatchRandom`), so the training loop never touches the math.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor, nn

from .conditioning import drop_condition
from .errors import UserError
from .rng import BatchRandom, Stream
from .schedule import NoiseSchedule, _gather

PREDICTIONS: tuple[str, ...] = ("epsilon", "x0", "v")

#: The attribute through which a network declares its prediction type: :func:`tinydiffusion.load` sets it
#: from ``model.safetensors``, and :func:`tinydiffusion.sample` refuses a contradicting ``prediction=``.
PREDICTION_ATTR = "tinydiffusion_prediction"


def split_prediction(output: Tensor, x_t: Tensor, alpha_bar: Tensor | float, prediction: str) -> tuple[Tensor, Tensor]:
    """(x̂_0, ε̂) from a network output, given x_t and ᾱ_t (a scalar or a broadcastable tensor).

    ε:  x̂_0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ                     (DDPM eq. 15)
    x0: ε̂ = (x_t − √ᾱ x̂_0)/√(1−ᾱ)
    v:  x̂_0 = √ᾱ x_t − √(1−ᾱ) v̂,  ε̂ = √(1−ᾱ) x_t + √ᾱ v̂   (Salimans & Ho 2022, App. D)
    """
    if isinstance(alpha_bar, Tensor):
        ab = alpha_bar.to(dtype=x_t.dtype, device=x_t.device)
        a, s = ab.sqrt(), (1 - ab).sqrt()
    else:  # a sampler's float64 ᾱ: take the roots before rounding, so 1 − ᾱ near t = 0 keeps its digits
        a, s = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
    if prediction == "epsilon":
        return (x_t - s * output) / a, output
    if prediction == "x0":
        return output, (x_t - a * output) / s
    if prediction == "v":
        return a * x_t - s * output, s * x_t + a * output
    raise UserError(f"unknown prediction type {prediction!r}; choose one of {', '.join(PREDICTIONS)}")


def prediction_target(x0: Tensor, noise: Tensor, alpha_bar: Tensor, prediction: str) -> Tensor:
    """The regression target for a prediction type: ε, x_0 or v = √ᾱ ε − √(1−ᾱ) x_0."""
    if prediction == "epsilon":
        return noise
    if prediction == "x0":
        return x0
    if prediction == "v":
        return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0
    raise UserError(f"unknown prediction type {prediction!r}; choose one of {', '.join(PREDICTIONS)}")


def min_snr_weight(snr: Tensor, gamma: float, prediction: str) -> Tensor:
    """Min-SNR-γ loss weights (Hang et al. 2023, eq. 8), expressed for each prediction type.

    The x_0-space weight min(SNR, γ) becomes min(SNR, γ)/SNR for ε and min(SNR, γ)/(SNR + 1) for v.
    """
    clipped = snr.clamp(max=gamma)
    if prediction == "epsilon":
        return clipped / snr
    if prediction == "x0":
        return clipped
    return clipped / (snr + 1)


def uniform_timesteps(rng: BatchRandom, T: int) -> Tensor:
    """t ~ U{0, …, T−1} per sample (DDPM Algorithm 1)."""
    return rng.randint(T, Stream.TIMESTEP)


def antithetic_timesteps(rng: BatchRandom, T: int) -> Tensor:
    """Seed 004's antithetic pairs: samples 2k and 2k+1 get t and T−1−t (lower-variance loss estimates).

    The pairs are formed inside the batch, so the batch (and every per-process shard) must be even.
    """
    t = rng.randint(T, Stream.TIMESTEP)
    if t.numel() % 2:
        raise UserError("antithetic timestep sampling needs an even batch size per process")
    t = t.view(-1, 2).clone()
    t[:, 1] = T - 1 - t[:, 0]
    return t.view(-1)


class Objective(Protocol):
    """A training loss: per-sample losses for a batch of clean data."""

    def __call__(self, model: nn.Module, x0: Tensor, cond: Tensor | None, rng: BatchRandom) -> Tensor: ...


@dataclass
class DiffusionLoss:
    """L_simple of DDPM (eq. 14) generalised: E_t,ε ‖f_θ(x_t, t, c) − target‖², one value per sample.

    ``prediction`` chooses the target (ε, x_0 or v); ``min_snr_gamma`` turns on Min-SNR-γ weighting;
    ``antithetic`` pairs t with T−1−t (seed 004); ``cond_drop_prob`` replaces each sample's condition by
    the null condition with that probability (classifier-free guidance training, Ho & Salimans 2022).
    """

    schedule: NoiseSchedule
    prediction: str = "epsilon"
    min_snr_gamma: float | None = None
    antithetic: bool = False
    cond_drop_prob: float = 0.0

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise UserError(f"unknown prediction type {self.prediction!r}; choose one of {', '.join(PREDICTIONS)}")
        if not 0.0 <= self.cond_drop_prob <= 1.0:
            raise UserError(f"cond_drop_prob must lie in [0, 1], got {self.cond_drop_prob}")

    def __call__(self, model: nn.Module, x0: Tensor, cond: Tensor | None, rng: BatchRandom) -> Tensor:
        T = self.schedule.num_timesteps
        t = (antithetic_timesteps if self.antithetic else uniform_timesteps)(rng, T).to(x0.device)
        noise = rng.randn(x0.shape[1:], Stream.NOISE).to(x0)
        x_t = self.schedule.q_sample(x0, t, noise)
        if cond is not None and self.cond_drop_prob > 0:
            keep = rng.rand((), Stream.COND_DROP).to(x0.device) >= self.cond_drop_prob
            cond = drop_condition(cond, keep)
        output = model(x_t, t) if cond is None else model(x_t, t, cond)
        alpha_bar = _gather(self.schedule.alpha_bar, t, x0)
        target = prediction_target(x0, noise, alpha_bar, self.prediction)
        per_sample = (output.float() - target.float()).square().flatten(1).mean(1)
        if self.min_snr_gamma is not None:
            snr = self.schedule.snr.to(x0.device)[t]
            per_sample = per_sample * min_snr_weight(snr, self.min_snr_gamma, self.prediction)
        return per_sample


def corrupt(x0: Tensor, amount: Tensor, noise: Tensor) -> Tensor:
    """Seed 001's ``corrupt``: x̃ = (1 − a)·x_0 + a·u, per sample amount a (B,) and noise u shaped like x_0.

    a = 0 returns the data, a = 1 the noise. The seed draws u ~ U(0, 1) for its [0, 1] images.
    """
    a = amount.view(-1, *([1] * (x0.dim() - 1)))
    return x0 * (1 - a) + noise * a


@dataclass
class CorruptLoss:
    """Seed 001's first objective: predict x_0 from a mix with uniform noise, no noise schedule.

    x̃ = (1 − a)·x_0 + a·u (:func:`corrupt`) with a ~ U(0, 1) per sample and u uniform per pixel over
    the data's value range ``data_range``; loss ‖f(x̃) − x_0‖². The seed's recipe trains in its own
    [0, 1] range with u ~ U(0, 1) (``data.range = "0,1"``). The network receives t = a·(T − 1) so that
    the one model contract holds; seed 001's ``BasicUNet`` ignores it.
    """

    num_timesteps: int = 1000
    data_range: tuple[float, float] = (-1.0, 1.0)

    def __call__(self, model: nn.Module, x0: Tensor, cond: Tensor | None, rng: BatchRandom) -> Tensor:
        low, high = self.data_range
        amount = rng.rand((), Stream.AMOUNT).to(x0)
        u = rng.rand(x0.shape[1:], Stream.NOISE).to(x0) * (high - low) + low
        noisy = corrupt(x0, amount, u)
        t = amount * (self.num_timesteps - 1)
        output = model(noisy, t) if cond is None else model(noisy, t, cond)
        return (output.float() - x0.float()).square().flatten(1).mean(1)
