"""tinydiffusion: train, sample, evaluate and see small diffusion models.

The firm public API::

    run = tinydiffusion.load("runs/quickstart")                 # a trained run: network, schedule, defaults
    images = run.sample(16, classes=[7], guidance=3)            # (16, C, H, W) floats in [-1, 1]

    from tinydiffusion import NoiseSchedule, sample
    schedule = NoiseSchedule.linear(1000, 1e-4, 0.02)          # or .cosine(T), .sigmoid(...), .from_betas(...)
    x_t = schedule.q_sample(x0, t, noise)                       # forward process
    x0 = sample(model, schedule, torch.randn(16, 1, 28, 28), sampler="ddim", steps=50)

See ``docs/api.md`` for the rest. The names below are imported on first use (PEP 562), so that
``import tinydiffusion`` and ``tinydiffusion --help`` do not pay for PyTorch until it is needed.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ScheduleWarning, UserError

__version__ = "0.2.0"

#: Public name -> the submodule that defines it.
_LAZY = {
    "load": "run", "Run": "run",
    "NoiseSchedule": "schedule",
    "sample": "samplers", "SAMPLERS": "samplers", "SamplerStep": "samplers",
    "SeededNoise": "rng",
}

__all__ = ["load", "Run", "NoiseSchedule", "sample", "SAMPLERS", "SamplerStep", "SeededNoise", "UserError",
           "ScheduleWarning", "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
