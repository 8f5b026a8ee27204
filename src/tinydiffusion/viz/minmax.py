"""Seed 003's display beside the fixed one: why a per-image min-max stretch hides what a model does.

Seed 003 showed every sample after ``x -= x.min(); x *= 255 / x.max()``, image by image. That stretch
gives every image full contrast whatever its values: a sample whose background drifted to grey, or
whose strokes overshoot far past white, looks as clean as a good one. :func:`~tinydiffusion.viz.grid.to_uint8`
maps [−1, 1] to 0..255 the same way for every image and saturates what lies outside, so drift shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .grid import image_table, save_image, to_uint8
from .samples import sample_grid


def minmax_uint8(x: Tensor) -> np.ndarray:
    """Seed 003's display: each image of a (B, C, H, W) batch stretched from its own min..max to 0..255.

    A constant image becomes black (the seed divided by zero there). Returns uint8 (B, H, W, C).
    """
    x = torch.nan_to_num(x.detach().float().cpu(), nan=0.0)
    flat = x.flatten(1)
    low = flat.min(1).values.view(-1, 1, 1, 1)
    span = (flat.max(1).values.view(-1, 1, 1, 1) - low).clamp(min=1e-12)
    return ((x - low) / span * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def outside_share(x: Tensor) -> float:
    """The share of values of ``x`` outside [−1, 1]: what the fixed map saturates and min-max hides."""
    return float((x.detach().abs() > 1).float().mean())


def minmax_comparison_image(x: Tensor, labels: Sequence[str] | None = None, *,
                            caption: str | None = None) -> Image.Image:
    """The same samples (images in [−1, 1]) under the fixed map and under seed 003's per-image min-max.

    Each side is a :func:`~tinydiffusion.viz.samples.sample_grid` (one row per class with ``labels``).
    """
    fixed = sample_grid(to_uint8(x), labels, caption=caption)
    stretched = sample_grid(minmax_uint8(x), labels)
    names = [f"fixed map: {outside_share(x):.1%} of values outside [-1, 1]", "per-image min-max (seed 003)"]
    return image_table([[fixed, stretched]], None, names)


def minmax_comparison(x: Tensor, path: str | Path, labels: Sequence[str] | None = None, *,
                      caption: str | None = None) -> Path:
    """Save :func:`minmax_comparison_image` to ``path``."""
    return save_image(minmax_comparison_image(x, labels, caption=caption), path)
