"""Noise schedules and the forward process q(x_t | x_0).

Notation follows Ho et al. 2020 ("DDPM"), with one convention for the whole package:

* timesteps are **0-based**: ``t = 0 .. T-1`` and ``alpha_bar[t] = prod_{s <= t} (1 - beta[s])``.
  "Clean data" is the virtual step ``t = -1`` with ``alpha_bar = 1``.
* Seed 002 (DeepLearning.AI) counts ``t = 1 .. T`` over ``T + 1`` linear betas with ``alpha_bar_0 = 1``.
  ``convention="one-based"`` maps it here: drop the first of the ``T + 1`` betas and keep the other
  ``T``; the network then sees ``(t + 1) / T`` through its ``t_offset = 1`` setting. (The seed also
  multiplies every ``alpha_bar`` by the dropped ``1 - beta_0 = 0.9999``; that factor is not kept.)

All schedule arithmetic is done in float64 and stored as float32 (the rule of improved-diffusion), so
``1 - alpha_bar`` near ``t = 0`` keeps its digits.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from .errors import ScheduleWarning, UserError

SCHEDULE_KINDS: tuple[str, ...] = ("linear", "scaled_linear", "cosine", "sigmoid", "custom")

#: ``alpha_bar[T-1]`` above this is "far from 0": x_T still carries a visible part of the image.
TERMINAL_ALPHA_BAR_WARN = 0.01


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """β_t evenly spaced from ``beta_start`` to ``beta_end`` (DDPM §4, Ho et al. 2020)."""
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def scaled_linear_betas(T: int, beta_start: float = 0.00085, beta_end: float = 0.012) -> Tensor:
    """β_t = (linspace(√β_start, √β_end))², the latent-diffusion ("scaled_linear") schedule."""
    return torch.linspace(math.sqrt(beta_start), math.sqrt(beta_end), T, dtype=torch.float64) ** 2


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Nichol & Dhariwal 2021, eq. 17: ᾱ(τ) = cos²((τ + s)/(1 + s) · π/2), β_t = 1 − ᾱ((t+1)/T)/ᾱ(t/T).

    Each β is capped at ``max_beta`` (0.999, as in the paper) so that the last step stays finite.
    This is diffusers' ``squaredcos_cap_v2``.
    """
    tau = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((tau + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


def sigmoid_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """β_t = β_start + (β_end − β_start)·sigmoid(linspace(−6, 6, T)) (GeoDiff, Xu et al. 2022; diffusers' "sigmoid")."""
    return torch.sigmoid(torch.linspace(-6, 6, T, dtype=torch.float64)) * (beta_end - beta_start) + beta_start


def rescale_zero_terminal_snr(betas: Tensor) -> Tensor:
    """Lin et al. 2024 ("Common diffusion noise schedules and sample steps are flawed"), Algorithm 1.

    Shift and scale √ᾱ so that √ᾱ_{T-1} = 0 while √ᾱ_0 is unchanged, then recover β. The last β
    becomes 1 (SNR exactly 0); :class:`NoiseSchedule` lifts ᾱ_{T-1} slightly above 0 (and lowers that
    β to match) so that an ε-model's x̂_0 stays finite there (v-prediction is the natural partner of
    this schedule).
    """
    sqrt_ab = torch.cumprod(1 - betas.double(), 0).sqrt()
    first, last = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
    sqrt_ab = (sqrt_ab - last) * first / (first - last)
    ab = sqrt_ab**2
    alphas = torch.cat([ab[:1], ab[1:] / ab[:-1]])
    return 1 - alphas


def beta_schedule(
    kind: str,
    T: int,
    *,
    beta_start: float | None = None,
    beta_end: float | None = None,
    betas: Sequence[float] | None = None,
    zero_terminal_snr: bool = False,
    convention: Literal["zero-based", "one-based"] = "zero-based",
) -> Tensor:
    """Build the float64 β of length ``T`` named by ``kind`` (see the module docstring for ``convention``)."""
    if T < 1:
        raise UserError(f"the schedule needs at least 1 timestep, got T={T}")
    if convention not in ("zero-based", "one-based"):
        raise UserError(f"unknown timestep convention {convention!r}; use 'zero-based' or 'one-based'")
    n = T + 1 if convention == "one-based" else T
    limits = {k: v for k, v in (("beta_start", beta_start), ("beta_end", beta_end)) if v is not None}
    if kind == "linear":
        out = linear_betas(n, **limits)
    elif kind == "scaled_linear":
        out = scaled_linear_betas(n, **limits)
    elif kind == "sigmoid":
        out = sigmoid_betas(n, **limits)
    elif kind == "cosine":
        out = cosine_betas(n)
    elif kind == "custom":
        if betas is None or len(betas) != n:
            got = "none" if betas is None else str(len(betas))
            raise UserError(f"a custom schedule needs a list of {n} betas, got {got}")
        out = torch.as_tensor(list(betas), dtype=torch.float64)
    else:
        raise UserError(f"unknown beta schedule {kind!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
    if convention == "one-based":
        out = out[1:]
    if not bool(((out > 0) & (out <= 1)).all()):
        raise UserError(f"every beta must lie in (0, 1]; the {kind} schedule gives {out.min():.3g}..{out.max():.3g}")
    if zero_terminal_snr:
        out = rescale_zero_terminal_snr(out)
    return out


def respaced_beta(alpha_bar: Any, alpha_bar_prev: Any) -> Any:
    """β' = 1 − ᾱ_t/ᾱ_{t'}: the β of one step t → t' of a respaced chain (Nichol & Dhariwal 2021, §4)."""
    return 1 - alpha_bar / alpha_bar_prev


def posterior(alpha_bar: Any, alpha_bar_prev: Any) -> tuple[Any, Any, Any]:
    """q(x_{t'} | x_t, x_0) for a step t → t' < t: ``(coef_x0, coef_xt, variance)`` with mean coef_x0·x_0 + coef_xt·x_t.

    DDPM eqs. 6–7 with the step's own β' = 1 − ᾱ_t/ᾱ_{t'} (Nichol & Dhariwal 2021, §4: on a sub-sequence
    of timesteps the chain is respaced; for t' = t − 1 it is the paper's β_t):

        coef_x0 = √ᾱ_{t'} β'/(1 − ᾱ_t),   coef_xt = √(1 − β') (1 − ᾱ_{t'})/(1 − ᾱ_t),   β̃' = (1 − ᾱ_{t'})/(1 − ᾱ_t) β'.

    Takes Python floats (a sampler's float64 scalars) or float64 tensors alike.
    """
    beta = respaced_beta(alpha_bar, alpha_bar_prev)
    coef_x0 = alpha_bar_prev**0.5 * beta / (1 - alpha_bar)
    coef_xt = (1 - beta) ** 0.5 * (1 - alpha_bar_prev) / (1 - alpha_bar)
    return coef_x0, coef_xt, (1 - alpha_bar_prev) / (1 - alpha_bar) * beta


def _gather(table: Tensor, t: Tensor, x: Tensor) -> Tensor:
    """``table[t]`` shaped (B, 1, 1, ...) on ``x``'s device, to broadcast against the batch ``x``."""
    return table[t.to(table.device)].reshape(t.shape + (1,) * (x.dim() - t.dim())).to(x.device)


class NoiseSchedule:
    """A discrete variance-preserving noise schedule and everything derived from it.

    Attributes (float32 tensors of length T, on :attr:`device`):

    ``betas`` β_t; ``alphas`` α_t = 1 − β_t; ``alpha_bar`` ᾱ_t = Π α_s; ``alpha_bar_prev`` ᾱ_{t−1} (1 at t = 0);
    ``sqrt_alpha_bar`` √ᾱ_t; ``sqrt_one_minus_alpha_bar`` √(1 − ᾱ_t);
    ``snr`` ᾱ_t/(1 − ᾱ_t); ``sigmas`` σ_t = √((1 − ᾱ_t)/ᾱ_t), the noise level of x_t/√ᾱ_t (Karras et al.
    2022, "VP" in σ form).

    ``betas64``, ``alpha_bar64`` and ``sigmas64`` keep β, ᾱ and σ in float64 on the CPU: samplers compute
    their per-step scalar coefficients from them once, before the loop, and never read a device table.

    Warnings (ᾱ_{T−1} far from 0) name the line that built the schedule: each public constructor
    calls :meth:`_warn_if_not_converged` itself, so the warning is always two frames below the caller.
    """

    def __init__(self, betas: Tensor | Sequence[float], config: dict[str, Any] | None = None, *, warn: bool = True):
        betas64 = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
        if betas64.dim() != 1 or betas64.numel() < 1:
            raise UserError("betas must be a non-empty 1-D sequence")
        if not bool(((betas64 > 0) & (betas64 <= 1)).all()):
            raise UserError("every beta must lie in (0, 1]")
        self.config: dict[str, Any] = dict(config) if config else {"kind": "custom", "timesteps": len(betas64),
                                                                   "betas": betas64.tolist()}
        alpha_bar = torch.cumprod(1 - betas64, 0)
        if float(betas64[-1]) == 1.0:
            # Zero terminal SNR makes ᾱ_{T−1} = 0; keep it at 2⁻²⁴ as diffusers' DPM/Euler schedulers do, so
            # x̂_0 stays finite, but below ᾱ_{T−2}/4 (√ᾱ halving again), so ᾱ stays strictly decreasing:
            # the rescaled ᾱ_{T−2} is often below 2⁻²⁴ (4.2e-9 for linear T=1000), and a rising ᾱ would give
            # a negative respaced β (NaN in DDPM) and an unsorted σ table. β_{T−1} = 1 − ᾱ_{T−1}/ᾱ_{T−2} then
            # follows from the lifted ᾱ, so that q_step, α and the posterior agree with ᾱ at T − 1 too.
            before = float(alpha_bar[-2]) if len(alpha_bar) > 1 else 1.0
            alpha_bar[-1] = min(2.0**-24, before / 4)
            betas64 = betas64.clone()
            betas64[-1] = 1 - float(alpha_bar[-1]) / before
        self.alpha_bar64 = alpha_bar
        self.betas64 = betas64
        self.sigmas64 = ((1 - alpha_bar) / alpha_bar).sqrt()
        self.device = torch.device("cpu")
        self._build_tables()
        if warn:
            self._warn_if_not_converged()

    # ------------------------------------------------------------------ construction
    @classmethod
    def linear(cls, T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        """Linear β from ``beta_start`` to ``beta_end`` over ``T`` steps (DDPM)."""
        s = cls.from_config({"kind": "linear", "timesteps": T, "beta_start": beta_start, "beta_end": beta_end},
                            warn=False)
        s._warn_if_not_converged()
        return s

    @classmethod
    def cosine(cls, T: int) -> "NoiseSchedule":
        """The cosine schedule of Nichol & Dhariwal 2021 (``squaredcos_cap_v2``)."""
        s = cls.from_config({"kind": "cosine", "timesteps": T}, warn=False)
        s._warn_if_not_converged()
        return s

    @classmethod
    def sigmoid(cls, T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        """The sigmoid β schedule (GeoDiff; diffusers' ``sigmoid``)."""
        s = cls.from_config({"kind": "sigmoid", "timesteps": T, "beta_start": beta_start, "beta_end": beta_end},
                            warn=False)
        s._warn_if_not_converged()
        return s

    @classmethod
    def scaled_linear(cls, T: int, beta_start: float = 0.00085, beta_end: float = 0.012) -> "NoiseSchedule":
        """β = (linspace(√β_start, √β_end))² (latent diffusion)."""
        s = cls.from_config({"kind": "scaled_linear", "timesteps": T, "beta_start": beta_start,
                             "beta_end": beta_end}, warn=False)
        s._warn_if_not_converged()
        return s

    @classmethod
    def from_betas(cls, betas: Sequence[float] | Tensor) -> "NoiseSchedule":
        """A schedule from an explicit list of β (a "custom" schedule)."""
        s = cls(betas, warn=False)
        s._warn_if_not_converged()
        return s

    @classmethod
    def from_config(cls, config: dict[str, Any], *, warn: bool = True) -> "NoiseSchedule":
        """Rebuild a schedule from its JSON-able config (the form stored in checkpoints and recipes).

        Keys: ``kind``, ``timesteps``, and as the kind needs ``beta_start``, ``beta_end``, ``betas``,
        ``zero_terminal_snr`` and ``convention``.
        """
        known = {"kind", "timesteps", "beta_start", "beta_end", "betas", "zero_terminal_snr", "convention"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise UserError(f"unknown schedule setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        cfg = {k: v for k, v in config.items() if v is not None}
        betas = beta_schedule(
            cfg.get("kind", "linear"),
            int(cfg.get("timesteps", 1000)),
            beta_start=cfg.get("beta_start"),
            beta_end=cfg.get("beta_end"),
            betas=cfg.get("betas"),
            zero_terminal_snr=bool(cfg.get("zero_terminal_snr", False)),
            convention=cfg.get("convention", "zero-based"),
        )
        s = cls(betas, cfg, warn=False)
        if warn:
            s._warn_if_not_converged()
        return s

    def _build_tables(self) -> None:
        b, ab = self.betas64, self.alpha_bar64
        tables = {
            "betas": b,
            "alphas": 1 - b,
            "alpha_bar": ab,
            "alpha_bar_prev": torch.cat([ab.new_ones(1), ab[:-1]]),
            "sqrt_alpha_bar": ab.sqrt(),
            "sqrt_one_minus_alpha_bar": (1 - ab).sqrt(),
            "snr": ab / (1 - ab),
            "sigmas": self.sigmas64,
        }
        for name, value in tables.items():
            setattr(self, name, value.to(dtype=torch.float32, device=self.device))

    def _warn_if_not_converged(self) -> None:
        """Warn (naming the caller of the public constructor that called this) when ᾱ_{T−1} is far from 0."""
        last = float(self.alpha_bar64[-1])
        if last > TERMINAL_ALPHA_BAR_WARN:
            warnings.warn(
                f"alpha_bar at the last step is {last:.3g} (T={self.num_timesteps}): x_T keeps "
                f"{math.sqrt(last):.0%} of the image, so sampling from pure noise starts off-distribution; "
                "use more timesteps, a larger beta_end, the cosine schedule or zero_terminal_snr",
                ScheduleWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ basics
    @property
    def num_timesteps(self) -> int:
        """T, the number of training timesteps."""
        return int(self.betas64.numel())

    def __len__(self) -> int:
        return self.num_timesteps

    def __repr__(self) -> str:
        desc = ", ".join(f"{k}={v}" for k, v in self.config.items() if k != "betas")
        return f"NoiseSchedule({desc})"

    def to(self, device: torch.device | str) -> "NoiseSchedule":
        """This schedule with its float32 tables on ``device`` (a new object; this one is unchanged)."""
        new = object.__new__(NoiseSchedule)
        new.__dict__.update(self.__dict__)
        new.device = torch.device(device)
        new._build_tables()
        return new

    def alpha_bar_at(self, t: int) -> float:
        """ᾱ_t in float64 for a scalar timestep, with ᾱ_{−1} = 1 (clean data)."""
        return 1.0 if t < 0 else float(self.alpha_bar64[t])

    # ------------------------------------------------------------------ forward process
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Sample q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) by reparameterisation (DDPM eq. 4)."""
        t = self._timesteps(t, x0)
        return _gather(self.sqrt_alpha_bar, t, x0) * x0 + _gather(self.sqrt_one_minus_alpha_bar, t, x0) * noise

    def q_step(self, x_prev: Tensor, t: Tensor | int, noise: Tensor) -> Tensor:
        """One forward step q(x_t | x_{t−1}) = N(√(1 − β_t) x_{t−1}, β_t I) (DDPM eq. 2)."""
        t = self._timesteps(t, x_prev)
        beta = _gather(self.betas, t, x_prev)
        return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of q(x_{t−1} | x_t, x_0) (DDPM eqs. 6–7; see :func:`posterior`), from float64 ᾱ."""
        t = self._timesteps(t, x_t).cpu()
        ab_prev = torch.cat([self.alpha_bar64.new_ones(1), self.alpha_bar64])[t]  # ᾱ_{t−1}, with ᾱ_{−1} = 1
        coefs = posterior(self.alpha_bar64[t], ab_prev)
        coef_x0, coef_xt, variance = (c.reshape(t.shape + (1,) * (x_t.dim() - t.dim())).to(x_t) for c in coefs)
        return coef_x0 * x0 + coef_xt * x_t, variance

    def t_from_sigma(self, sigma: Tensor) -> Tensor:
        """The fractional timestep whose σ_t = √((1−ᾱ_t)/ᾱ_t) equals ``sigma`` (linear in log σ between steps).

        This is how the σ-space samplers (Euler, Heun) choose evaluation points on the trained
        discrete schedule; σ outside the trained range is clamped to its ends.
        """
        log_sigmas = self.sigmas64.log()
        ls = torch.as_tensor(sigma, dtype=torch.float64).log().clamp(float(log_sigmas[0]), float(log_sigmas[-1]))
        if self.num_timesteps == 1:  # one trained noise level: every σ is clamped onto it
            return torch.zeros_like(ls)
        hi = torch.searchsorted(log_sigmas, ls).clamp(1, self.num_timesteps - 1)
        lo = hi - 1
        w = (ls - log_sigmas[lo]) / (log_sigmas[hi] - log_sigmas[lo])
        return lo.double() + w.clamp(0, 1)

    def sigma_at(self, t: Tensor | Sequence[float]) -> Tensor:
        """σ at fractional timesteps (float64, CPU): the inverse of :meth:`t_from_sigma` (log-linear between steps)."""
        t = torch.as_tensor(t, dtype=torch.float64)
        lo = t.floor().long().clamp(0, self.num_timesteps - 1)
        hi = (lo + 1).clamp(max=self.num_timesteps - 1)
        w = t - lo.double()
        log_sigmas = self.sigmas64.log()
        return ((1 - w) * log_sigmas[lo] + w * log_sigmas[hi]).exp()

    # ------------------------------------------------------------------ diffusers
    @classmethod
    def from_diffusers(cls, scheduler: Any) -> "NoiseSchedule":
        """The training schedule of a diffusers scheduler (``DDPMScheduler``, ``DDIMScheduler``, …) or its config."""
        from .interop.schedulers import schedule_from_diffusers

        return schedule_from_diffusers(scheduler)

    def to_diffusers(self, scheduler_class: type | str | None = None, **kwargs: Any) -> Any:
        """A diffusers scheduler on this schedule (``DDPMScheduler`` by default; ``kwargs`` go to its constructor)."""
        from .interop.schedulers import schedule_to_diffusers

        return schedule_to_diffusers(self, scheduler_class, **kwargs)

    def _timesteps(self, t: Tensor | int, x: Tensor) -> Tensor:
        t = torch.as_tensor(t, device=self.device)
        if t.dtype.is_floating_point:
            raise TypeError("timesteps for the forward process must be integers")
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        return t.to(self.device)
