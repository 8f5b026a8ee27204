"""tinydiffusion: train, sample, evaluate and see small diffusion models.

The firm public API::

    from tinydiffusion import NoiseSchedule, sample
    schedule = NoiseSchedule.linear(1000, 1e-4, 0.02)          # or .cosine(T), .sigmoid(...), .from_betas(...)
    x_t = schedule.q_sample(x0, t, noise)                       # forward process
    x0 = sample(model, schedule, torch.randn(16, 1, 28, 28), sampler="ddim", steps=50)

See ``docs/api.md`` for the rest.
"""

from .errors import ScheduleWarning, UserError
from .rng import SeededNoise
from .samplers import SAMPLERS, SamplerStep, sample
from .schedule import NoiseSchedule

__version__ = "0.1.0"

__all__ = ["NoiseSchedule", "sample", "SAMPLERS", "SamplerStep", "SeededNoise", "UserError", "ScheduleWarning",
           "__version__"]
