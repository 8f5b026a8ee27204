"""Sample grids during training: the same seeds every time, one labelled row per class for conditional runs.

The grids follow the picture rules of :mod:`tinydiffusion.viz.samples` (class names, tiles of at least
64 px, a caption with the step, sampler, network calls, guidance and seed).
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch import nn

from ..generate import SampleSettings, class_rows, generate, network_calls, sample_shape
from ..viz.grid import save_image, to_uint8
from ..viz.samples import label_names, sample_grid, sampling_caption
from .setup import RunParts


def preview_condition(parts: RunParts, n: int) -> torch.Tensor | None:
    """The conditions of a preview grid: every class (or one-hot context) in turn, class-major."""
    if parts.condition == "none":
        return None
    num = parts.model.config.num_classes or parts.model.config.context_dim
    return class_rows(n, num, one_hot=parts.condition == "context")[0]


def write_preview(model: nn.Module, parts: RunParts, path: Path, step: int | None = None) -> Image.Image:
    """Sample ``preview.n`` images (or points) with the run's sample settings, write a PNG and return it."""
    cfg = parts.cfg
    cond = preview_condition(parts, cfg.preview.n)
    settings = SampleSettings.from_dict(vars(cfg.sample))
    prediction = "x0" if cfg.objective.kind == "corrupt" else cfg.objective.prediction
    shape = sample_shape({"kind": parts.dataset.kind, **parts.dataset.facts()})
    x = generate(model, parts.schedule, shape, cfg.preview.n, settings=settings, prediction=prediction,
                 seed=cfg.preview.seed, cond=cond, device=parts.device, progress=False)
    caption = sampling_caption(settings.sampler, network_calls(parts.schedule, settings),
                               settings.guidance if cond is not None else None, cfg.preview.seed,
                               extra=None if step is None else f"step {step:,}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if parts.dataset.kind == "points":
        from ..viz.scatter import scatter_png  # matplotlib: only for 2-D points

        scatter_png(x.numpy(), path, title=caption)
        return Image.open(path).convert("RGB")
    labels = label_names(cond, parts.dataset.class_names or [])
    image = sample_grid(to_uint8(x), labels, caption=caption)
    save_image(image, path)
    return image
