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


class EMA:
    """A shadow copy of a network whose parameters follow θ̄ ← d·θ̄ + (1 − d)·θ after each step.

    Buffers (BatchNorm statistics) are copied, not averaged. The update is one fused ``_foreach_lerp_``
    over all parameters, with no host synchronisation.
    """

    def __init__(self, model: nn.Module, max_decay: float = 0.999, warmup: bool = True):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.max_decay = max_decay
        self.warmup = warmup
        self._shadow = [p for p in self.model.parameters()]

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards ``model``'s current weights (call after ``optimizer.step()``)."""
        weight = 1.0 - ema_decay(step, self.max_decay, self.warmup)
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(self._shadow, params, weight)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
