"""The names the command line offers as choices, without importing PyTorch (so ``--help`` is instant).

Each tuple equals a registry of the library (``tests/test_cli_help.py`` checks that they agree).
"""

from __future__ import annotations

#: :data:`tinydiffusion.samplers.SAMPLERS`
SAMPLERS = ("ddpm", "ddim", "dpm++", "euler", "heun", "ddpm-no-noise", "x0-step", "ddpm-off-by-one")
#: :data:`tinydiffusion.samplers.common.SPACINGS`
SPACINGS = ("leading", "trailing", "linspace")
#: :data:`tinydiffusion.samplers.ancestral.VARIANCES`
VARIANCES = ("beta", "beta_tilde")
#: :data:`tinydiffusion.schedule.SCHEDULE_KINDS`
SCHEDULE_KINDS = ("linear", "scaled_linear", "cosine", "sigmoid", "custom")
#: :data:`tinydiffusion.viz.strip.IMAGE_COLUMNS`, :data:`~tinydiffusion.viz.strip.POINT_COLUMNS` (the --strip defaults)
STRIP_COLUMNS = {"image": 15, "points": 10}
