"""Exponential moving average of the weights, with warm-up."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(step: int, max_decay: float, warmup: bool) -> float:
    """The decay at optimiser step ``step`` (0-based): min(max_decay, (1 + s)/(10 + s)) with warm-up.

    Without warm-up a run of a few thousand steps at decay 0.999 would sample from weights that still
    remember their random initialisation — the most common complaint against other toolkits (their
    EMA sample grids are noise while the raw ones already look right). The (1 + s)/(10 + s) ramp is the
    one TensorFlow's ExponentialMovingAverage uses with ``num_updates``.
    """
    if not warmup:
        return max_decay
    return min(max_decay, (1 + step) / (10 + step))


def halflife_decay(images_seen: int, batch_images: int, halflife_images: float, rampup: float | None) -> float:
    """The per-step decay of an EMA whose half-life is counted in training images (Karras et al. 2022, 2024).

    β = 0.5^(B / h) for a step of B images, so the weight of a step halves every h images whatever the
    batch size; with ramp-up, h = min(halflife_images, rampup · images_seen), which keeps the average
    within the last ``rampup`` share of the run (EDM's ``ema_rampup_ratio``; EDM2 §3.1 argues for an
    EMA length relative to the length of training).
    """
    h = halflife_images if rampup is None else min(halflife_images, rampup * images_seen)
    return 0.5 ** (batch_images / h) if h > 0 else 0.0


class EMA:
    """A shadow copy of a network whose parameters follow θ̄ ← d·θ̄ + (1 − d)·θ after each step.

    Buffers (BatchNorm statistics) are copied, not averaged. The update is one fused ``_foreach_lerp_``
    over all parameters, with no host synchronisation.
    """

    def __init__(self, model: nn.Module, max_decay: float = 0.999, warmup: bool = True, *,
                 halflife_images: float | None = None, rampup: float | None = None, batch_images: int = 1):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.max_decay = max_decay
        self.warmup = warmup
        self.halflife_images = halflife_images
        self.rampup = rampup
        self.batch_images = batch_images
        self._shadow = [p for p in self.model.parameters()]

    def decay(self, step: int) -> float:
        """The decay applied after optimiser step ``step`` (0-based): per step, or from the half-life in images."""
        if self.halflife_images is None:
            return ema_decay(step, self.max_decay, self.warmup)
        return halflife_decay((step + 1) * self.batch_images, self.batch_images, self.halflife_images, self.rampup)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards ``model``'s current weights (call after ``optimizer.step()``)."""
        weight = 1.0 - self.decay(step)
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(self._shadow, params, weight)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
