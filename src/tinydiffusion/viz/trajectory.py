"""Pictures of the reverse process from a sampler trajectory.

A trajectory is the list of :class:`~tinydiffusion.samplers.SamplerStep` that a sampler passes to its
``callback`` (``steps = []; sample(..., callback=steps.append)``). Step k holds its input x_t, the
denoiser's estimate x̂_0 and its output; the output of the last step is the sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from ..errors import UserError
from ..samplers import SamplerStep
from .gif import save_gif, subsample_indices
from .grid import image_table, make_grid, save_image, to_uint8
from .strip import step_label


def _check(steps: Sequence[SamplerStep]) -> None:
    if not steps:
        raise UserError("the sampler trajectory is empty; pass callback=steps.append to sample()")
    if steps[0].x_t.dim() != 4:
        raise UserError(f"image pictures need (B, C, H, W) samples, got {tuple(steps[0].x_t.shape)}; "
                        "use tinydiffusion.viz.scatter for 2-D points")


def reverse_frames(steps: Sequence[SamplerStep]) -> list[Tensor]:
    """The states of the chain: x_T (the first step's input), then the output of every step."""
    _check(steps)
    return [steps[0].x_t] + [s.x_next for s in steps]


def reverse_gif(steps: Sequence[SamplerStep], path: str | Path, nrow: int | None = None, *, max_frames: int = 60,
                scale: int = 2, duration_ms: int = 60, final_hold_ms: int | None = 2000) -> Path:
    """Animate the reverse chain (seed 003's generation GIF, seed 002's saved intermediates).

    Frames are :func:`make_grid` of x_T and of each step's output, at most ``max_frames`` of them evenly
    spaced with the first and the last; the final sample stays ``final_hold_ms`` on screen (seed 003
    repeated its last frame a third of the GIF's length for the same effect).
    """
    frames = reverse_frames(steps)
    images = [make_grid(to_uint8(frames[i]), nrow=nrow, scale=scale)
              for i in subsample_indices(len(frames), max_frames)]
    return save_gif(images, path, duration_ms=duration_ms, final_hold_ms=final_hold_ms)


def x0_strip_image(steps: Sequence[SamplerStep], rows: int = 5, *, n_images: int = 8, scale: int = 2) -> Image.Image:
    """Seed 001's two-column figure: at ``rows`` evenly spaced steps, the model input x_t beside its x̂_0.

    Each row is one step (with its timestep), showing the first ``n_images`` of the batch in a line;
    the right column is what the network predicts the clean images to be at that point.
    """
    _check(steps)
    cells, names = [], []
    for k in subsample_indices(len(steps), rows):
        s = steps[k]
        cells.append([make_grid(to_uint8(x[:n_images]), nrow=n_images, scale=scale) for x in (s.x_t, s.x0_hat)])
        names.append(f"step {s.index + 1}, {step_label(s)}")
    return image_table(cells, names, ["x_t (model input)", "predicted x0"])


def x0_strip(steps: Sequence[SamplerStep], path: str | Path, rows: int = 5, *, n_images: int = 8,
             scale: int = 2) -> Path:
    """Save :func:`x0_strip_image` to ``path``."""
    return save_image(x0_strip_image(steps, rows, n_images=n_images, scale=scale), path)


def compare_samplers_image(samples: dict[str, Tensor], *, nrow: int | None = None, scale: int = 2) -> Image.Image:
    """Final samples of several samplers side by side, each a grid under its name.

    For example seed 002's lesson: ``{"DDPM": x, "DDPM without noise": y}`` from the same x_T shows
    the noise-free chain collapsing to smooth, average-looking images.
    """
    if not samples:
        raise UserError("no samples to compare")
    grids: list[np.ndarray] = [make_grid(to_uint8(x), nrow=nrow, scale=scale) for x in samples.values()]
    return image_table([grids], None, list(samples))


def compare_samplers_figure(samples: dict[str, Tensor], path: str | Path, *, nrow: int | None = None,
                            scale: int = 2) -> Path:
    """Save :func:`compare_samplers_image` to ``path``."""
    return save_image(compare_samplers_image(samples, nrow=nrow, scale=scale), path)
