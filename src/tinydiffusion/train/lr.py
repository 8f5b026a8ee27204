"""Learning-rate schedules as a multiplier of the base rate."""

from __future__ import annotations

import math

from ..errors import UserError


def lr_multiplier(step: int, total_steps: int, schedule: str, warmup_steps: int = 0,
                  steps_per_epoch: float | None = None) -> float:
    """The factor applied to the base learning rate at optimiser step ``step`` (0-based).

    ``constant``: 1. ``cosine``: ½(1 + cos(π·p)) over the steps after warm-up (Loshchilov & Hutter 2017).
    ``linear``: 1 − p, decayed every step. ``linear-epoch``: seed 002's ``lr·(1 − ep/n_epoch)``, held
    constant within each epoch. Warm-up (linear from 1/warmup_steps to 1) multiplies any of them.
    """
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    span = max(1, total_steps - warmup_steps)
    p = min(1.0, max(0, step - warmup_steps) / span)
    if schedule == "constant":
        factor = 1.0
    elif schedule == "cosine":
        factor = 0.5 * (1 + math.cos(math.pi * p))
    elif schedule == "linear":
        factor = 1.0 - p
    elif schedule == "linear-epoch":
        if not steps_per_epoch:
            raise UserError("the linear-epoch learning-rate schedule needs the number of steps per epoch")
        n_epochs = max(1, math.ceil(total_steps / steps_per_epoch))
        factor = 1.0 - math.floor(step / steps_per_epoch) / n_epochs
    else:
        raise UserError(f"unknown learning-rate schedule {schedule!r}; use constant, cosine, linear or linear-epoch")
    return warm * factor
