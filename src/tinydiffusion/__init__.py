"""tinydiffusion: train, sample, evaluate and see small diffusion models.

The firm public API::

    run = tinydiffusion.load("runs/quickstart")                 # a trained run: network, schedule, defaults
    images = run.sample(16, classes=[7], guidance=3)            # (16, C, H, W) floats on the [-1, 1] scale

    from tinydiffusion import NoiseSchedule, sample
    schedule = NoiseSchedule.linear(1000, 1e-4, 0.02)          # or .cosine(T), .sigmoid(...), .from_betas(...)
    x_t = schedule.q_sample(x0, t, noise)                       # forward process
    x0 = sample(model, schedule, torch.randn(16, 1, 28, 28), sampler="ddim", steps=50)

See ``docs/api.md`` for the rest. The names below are imported on first use (PEP 562), so that
``import tinydiffusion`` and ``tinydiffusion --help`` do not pay for PyTorch until it is needed.
"""

from __future__ import annotations

from ._lazy import lazy_attributes
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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
