"""Reverse-process strips: the chain of one sample at evenly spaced steps, in one row (seeds 000 and 004).

Seed 000 draws, every 100 training steps, one sample's chain at every tenth of its T = 150 steps: 15
columns from noisy to the final image. Seed 004 draws its 10,000 points after every tenth of its 100
steps: 10 scatter panels, each with its own axes. Both show the *outputs* of the steps, ending with
the sample; :func:`strip_indices` picks them from a sampler trajectory, :func:`reverse_strip_image`
lays out images, :func:`~tinydiffusion.viz.scatter.scatter_strip` points.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from torch import Tensor

from ..errors import UserError
from ..samplers import SamplerStep
from .grid import image_table, make_grid, save_image, tile_scale, to_uint8

#: Columns of the images' strip (seed 000: T / 10 = 15) and of the 2-D sets' strip (seed 004: 10).
IMAGE_COLUMNS, POINT_COLUMNS = 15, 10


def strip_indices(n_steps: int, columns: int) -> list[int]:
    """The steps whose outputs a strip shows: the j-th of ``columns`` is step round(j·n/columns) − 1.

    With n = 150 and 15 columns these are the steps 10, 20, …, 150 (counting from 1), seed 000's
    ``i % 10 == 0``; the last column is always the final sample. Fewer steps than columns show all.
    """
    if columns < 1:
        raise UserError(f"a strip needs at least 1 column, got {columns}")
    if n_steps < 1:
        raise UserError("there are no sampler steps to show")
    return sorted({max(0, round(j * n_steps / columns) - 1) for j in range(1, columns + 1)})


def strip_steps(steps: Sequence[SamplerStep], columns: int) -> list[SamplerStep]:
    """The steps of a trajectory that a ``columns``-wide strip shows.

    ``steps`` (what a sampler's callback received, in order) must hold the last step and every step
    :func:`strip_indices` picks; other steps may be left out.
    """
    if not steps:
        raise UserError("the sampler trajectory is empty")
    by_index = {s.index: s for s in steps}
    n = steps[-1].index + 1
    missing = [k for k in strip_indices(n, columns) if k not in by_index]
    if missing:
        raise UserError(f"the trajectory lacks step {missing[0]}; keep every step the strip shows")
    return [by_index[k] for k in strip_indices(n, columns)]


def step_label(step: SamplerStep) -> str:
    """The column title of a step: the timestep it denoised, as an integer (x0-step and Karras σ's
    place steps between integer timesteps; a picture shows where they are, not 799.2)."""
    return f"t={round(step.t)}"


def reverse_strip_image(steps: Sequence[SamplerStep], columns: int = IMAGE_COLUMNS, *, rows: int = 1,
                        scale: int | None = None) -> Image.Image:
    """Seed 000's strip: the outputs of ``columns`` evenly spaced steps for the first ``rows`` samples.

    One row per sample, one column per shown step (titled with the step's timestep), the final
    sample last. ``steps`` is a trajectory of images (B, C, H, W), as :func:`strip_steps` takes it;
    ``scale`` defaults to :func:`~.grid.tile_scale` of the image size.
    """
    chosen = strip_steps(steps, columns)
    if chosen[0].x_next.dim() != 4:
        raise UserError(f"an image strip needs (B, C, H, W) samples, got {tuple(chosen[0].x_next.shape)}")
    rows = max(1, min(rows, chosen[0].x_next.shape[0]))
    frames: list[Tensor] = [s.x_next[:rows] for s in chosen]
    pixels = [to_uint8(f) for f in frames]
    scale = scale or tile_scale(max(frames[0].shape[-2:]))
    cells = [[make_grid(p[r:r + 1], padding=0, scale=scale) for p in pixels] for r in range(rows)]
    return image_table(cells, None, [step_label(s) for s in chosen], gap=2)


def reverse_strip(steps: Sequence[SamplerStep], path: str | Path, columns: int = IMAGE_COLUMNS, *, rows: int = 1,
                  scale: int | None = None) -> Path:
    """Save :func:`reverse_strip_image` to ``path``."""
    return save_image(reverse_strip_image(steps, columns, rows=rows, scale=scale), path)
