"""Seed 001's pictures of its ``corrupt`` objective: the corrupted-data rows and the predictions figure.

The course mixes a batch of 8 images with uniform noise at amounts 0, 1/7, …, 1 (left to right) and
shows the clean row above the corrupted one; after training it adds a third row, the network's
prediction of the clean images from the corrupted ones: good at small amounts, a blur at large ones.
The mixing itself is :func:`tinydiffusion.objectives.corrupt`; this module lays out the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from torch import Tensor

from ..errors import UserError
from .grid import image_table, make_grid, save_image, tile_scale, to_uint8

ROW_NAMES = ("input data", "corrupted data", "network predictions")
#: Stream tag of the figure's uniform noise (see :mod:`tinydiffusion.rng`; the forward pictures use 201, 202).
CORRUPT_NOISE = 203


def corrupt_figure_image(x0: Tensor, noisy: Tensor, amounts: Sequence[float], predictions: Tensor | None = None, *,
                         scale: int | None = None) -> Image.Image:
    """Rows of images in [−1, 1] (B, C, H, W): the clean ``x0``, ``noisy`` and, if given, ``predictions``.

    One column per image, titled with its corruption amount; the rows are named as in the course.
    ``scale`` defaults to :func:`~.grid.tile_scale` of the image size.
    """
    rows = [x0, noisy] + ([predictions] if predictions is not None else [])
    if any(r.shape != x0.shape for r in rows) or x0.dim() != 4:
        raise UserError(f"the rows of the corrupt figure must be image batches of one shape, got "
                        f"{[tuple(r.shape) for r in rows]}")
    if len(amounts) != x0.shape[0]:
        raise ValueError(f"{len(amounts)} amounts for {x0.shape[0]} images")
    pixels = [to_uint8(r) for r in rows]
    scale = scale or tile_scale(max(x0.shape[-2:]))
    cells = [[make_grid(p[j:j + 1], padding=0, scale=scale) for j in range(len(p))] for p in pixels]
    return image_table(cells, list(ROW_NAMES[:len(rows)]), [f"{a:.2f}" for a in amounts], gap=2)


def corrupt_figure(x0: Tensor, noisy: Tensor, amounts: Sequence[float], path: str | Path,
                   predictions: Tensor | None = None, *, scale: int | None = None) -> Path:
    """Save :func:`corrupt_figure_image` to ``path``."""
    return save_image(corrupt_figure_image(x0, noisy, amounts, predictions, scale=scale), path)
