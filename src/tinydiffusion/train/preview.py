"""Sample grids during training: the same seeds every time, one row per class for conditional runs."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..generate import SampleSettings, class_rows, generate, sample_shape
from ..viz.grid import make_grid, save_image, to_uint8
from ..viz.scatter import scatter_png
from .setup import RunParts


def preview_condition(parts: RunParts, n: int) -> tuple[torch.Tensor | None, int]:
    """The conditions of a preview grid and its row length (one class, or one context axis, per row)."""
    if parts.condition == "none":
        return None, max(1, round(n**0.5))
    num = parts.model.config.num_classes or parts.model.config.context_dim
    return class_rows(n, num, one_hot=parts.condition == "context")


def write_preview(model: nn.Module, parts: RunParts, path: Path) -> None:
    """Sample ``preview.n`` images (or points) with the run's sample settings and write a PNG."""
    cfg = parts.cfg
    cond, per_row = preview_condition(parts, cfg.preview.n)
    settings = SampleSettings.from_dict(vars(cfg.sample))
    prediction = "x0" if cfg.objective.kind == "corrupt" else cfg.objective.prediction
    shape = sample_shape({"kind": parts.dataset.kind, **parts.dataset.facts()})
    x = generate(model, parts.schedule, shape, cfg.preview.n, settings=settings, prediction=prediction,
                 seed=cfg.preview.seed, cond=cond, device=parts.device)
    path.parent.mkdir(parents=True, exist_ok=True)
    if parts.dataset.kind == "points":
        scatter_png(x.numpy(), path)
    else:
        save_image(make_grid(to_uint8(x), nrow=per_row, scale=2), path)
