"""Noise schedules to and from diffusers' schedulers, and the diffusers scheduler of a run's sampler.

A diffusers scheduler holds the training schedule in its config (``num_train_timesteps``,
``beta_schedule`` with ``beta_start``/``beta_end``, or ``trained_betas``, and
``rescale_betas_zero_snr``); :class:`~tinydiffusion.schedule.NoiseSchedule` holds the same facts in
its ``config``. The names map one to one (our ``cosine`` is their ``squaredcos_cap_v2``); anything else
travels as an explicit β list. ``tests/test_interop.py`` checks that ᾱ agrees both ways.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import UserError
from ..generate import SampleSettings
from ..schedule import NoiseSchedule, linear_betas, scaled_linear_betas, sigmoid_betas

#: Our schedule kinds -> diffusers' ``beta_schedule`` names.
BETA_SCHEDULES = {"linear": "linear", "scaled_linear": "scaled_linear", "cosine": "squaredcos_cap_v2",
                  "sigmoid": "sigmoid"}
BETA_FUNCTIONS = {"linear": linear_betas, "scaled_linear": scaled_linear_betas, "sigmoid": sigmoid_betas}
#: Our prediction types -> diffusers' ``prediction_type``.
PREDICTION_TYPES = {"epsilon": "epsilon", "x0": "sample", "v": "v_prediction"}


def require_diffusers() -> Any:
    """The diffusers module, or a one-line UserError that says how to install it."""
    try:
        import diffusers
    except ImportError:
        raise UserError("this needs the diffusers package, which is not installed; pip install diffusers") from None
    return diffusers


def schedule_from_diffusers(scheduler: Any) -> NoiseSchedule:
    """The :class:`NoiseSchedule` a diffusers scheduler (or its config dict) trains and samples with."""
    config = dict(getattr(scheduler, "config", scheduler))
    T = int(config.get("num_train_timesteps", 1000))
    ours: dict[str, Any] = {"timesteps": T, "zero_terminal_snr": bool(config.get("rescale_betas_zero_snr", False))}
    if config.get("trained_betas") is not None:
        ours.update(kind="custom", betas=[float(b) for b in config["trained_betas"]])
    else:
        name = config.get("beta_schedule", "linear")
        kinds = {v: k for k, v in BETA_SCHEDULES.items()}
        if name not in kinds:
            raise UserError(f"diffusers' beta_schedule {name!r} has no counterpart here; known: "
                            f"{', '.join(kinds)} (or pass trained_betas)")
        ours["kind"] = kinds[name]
        if name != "squaredcos_cap_v2":
            ours.update(beta_start=float(config.get("beta_start", 1e-4)), beta_end=float(config.get("beta_end", 0.02)))
    return NoiseSchedule.from_config(ours, warn=False)


def schedule_kwargs(schedule: NoiseSchedule) -> dict[str, Any]:
    """The keyword arguments that give a diffusers scheduler this training schedule."""
    config = schedule.config
    kind = config.get("kind", "custom")
    kwargs: dict[str, Any] = {"num_train_timesteps": schedule.num_timesteps,
                              "rescale_betas_zero_snr": bool(config.get("zero_terminal_snr", False))}
    if kind in BETA_SCHEDULES and config.get("convention", "zero-based") == "zero-based":
        kwargs["beta_schedule"] = BETA_SCHEDULES[kind]
        if kind != "cosine":  # the limits, or the defaults of our β function for this kind
            defaults = inspect.signature(BETA_FUNCTIONS[kind]).parameters
            kwargs["beta_start"] = float(config.get("beta_start", defaults["beta_start"].default))
            kwargs["beta_end"] = float(config.get("beta_end", defaults["beta_end"].default))
    else:  # custom lists, seed 002's one-based convention: the exact β (before any zero-SNR rescaling)
        kwargs["trained_betas"] = _unrescaled_betas(schedule)
    return kwargs


def _unrescaled_betas(schedule: NoiseSchedule) -> list[float]:
    config = dict(schedule.config, zero_terminal_snr=False)
    return NoiseSchedule.from_config(config, warn=False).betas64.tolist()


def schedule_to_diffusers(schedule: NoiseSchedule, scheduler_class: type | str | None = None, **kwargs: Any) -> Any:
    """A diffusers scheduler (``DDPMScheduler`` unless ``scheduler_class`` names another) on this schedule.

    ``kwargs`` go to the scheduler's constructor as well (``prediction_type="v_prediction"``, …).
    """
    diffusers = require_diffusers()
    cls = getattr(diffusers, scheduler_class or "DDPMScheduler") if not isinstance(scheduler_class, type) \
        else scheduler_class
    return cls(**schedule_kwargs(schedule), **kwargs)


def scheduler_for(schedule: NoiseSchedule, settings: SampleSettings, prediction: str) -> tuple[Any, str | None]:
    """The diffusers scheduler that takes the steps of ``settings`` (our sampler), and a note when none does.

    ``ddpm``, ``ddim`` and ``dpm++`` map to DDPM/DDIM/DPMSolverMultistep schedulers with the same timestep
    spacing, variance, x̂₀ clipping and prediction type; other samplers fall back to a DDPMScheduler.
    """
    common = {"prediction_type": PREDICTION_TYPES[prediction], "timestep_spacing": settings.spacing}
    if settings.sampler == "ddim":
        return schedule_to_diffusers(schedule, "DDIMScheduler", clip_sample=settings.clip_x0, set_alpha_to_one=True,
                                     **common), None
    if settings.sampler == "dpm++":
        return schedule_to_diffusers(schedule, "DPMSolverMultistepScheduler", algorithm_type="dpmsolver++",
                                     solver_order=2, final_sigmas_type="zero", thresholding=settings.clip_x0,
                                     sample_max_value=1.0, **common), None
    variance = {"beta_tilde": "fixed_small", "beta": "fixed_large"}[settings.variance]
    scheduler = schedule_to_diffusers(schedule, "DDPMScheduler", variance_type=variance,
                                      clip_sample=settings.clip_x0, **common)
    note = None if settings.sampler == "ddpm" else (f"diffusers has no scheduler for the run's {settings.sampler!r} "
                                                     "sampler; the folder holds a DDPMScheduler")
    return scheduler, note
