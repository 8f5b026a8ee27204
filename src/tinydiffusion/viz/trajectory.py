"""Pictures of the reverse process from a sampler trajectory.

A trajectory is the list of :class:`~tinydiffusion.samplers.SamplerStep` that a sampler passes to its
``callback`` (``steps = []; sample(..., callback=steps.append)``). Step k holds its input x_t, the
denoiser's estimate x̂_0 and its output; the output of the last step is the sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from torch import Tensor

from ..errors import UserError
from ..samplers import SamplerStep
from .gif import save_gif, subsample_indices
from .grid import image_table, make_grid, save_image, tile_scale, to_uint8
from .samples import sample_grid
from .strip import step_label
from .text import add_text


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


def gif_pace(frames: int, total_ms: int = 5000) -> int:
    """A frame duration that plays ``frames`` frames in about ``total_ms``, kept between 100 and 300 ms."""
    return int(min(300, max(100, round(total_ms / max(frames, 1), -1))))


def reverse_gif(steps: Sequence[SamplerStep], path: str | Path, labels: Sequence[str] | None = None, *,
                show_x0: bool = False, caption: str | None = None, max_frames: int = 40, scale: int | None = None,
                duration_ms: int | None = None, final_hold_ms: int | None = 2000) -> Path:
    """Animate the reverse chain (seed 003's generation GIF, seed 002's saved intermediates).

    Frame k shows the input x_t of step k under a counter ("step k/n · t=…"), laid out by
    :func:`~.samples.sample_grid` with the samples' ``labels``; with ``show_x0`` the network's x̂_0 at that
    step stands beside it. The last frame is the final sample, held ``final_hold_ms``. At most
    ``max_frames`` frames, evenly spaced with the first and the last; ``duration_ms`` defaults to
    :func:`gif_pace` (about five seconds for the whole chain).
    """
    _check(steps)
    n = len(steps)
    states = [(s.x_t, s.x0_hat, f"step {s.index + 1}/{steps[-1].index + 1} · t={s.t:g}") for s in steps]
    if steps[0].index == 0:
        states[0] = (steps[0].x_t, steps[0].x0_hat, f"x_T: pure noise (t={steps[0].t:g})")
    states.append((steps[-1].x_next, steps[-1].x0_hat, f"sample, after {steps[-1].index + 1} steps"))
    keep = subsample_indices(n + 1, max_frames)

    def frame(x: Tensor, x0: Tensor, title: str) -> Image.Image:
        grid = sample_grid(to_uint8(x), labels, scale=scale)
        if show_x0:
            grid = image_table([[grid, sample_grid(to_uint8(x0), labels, scale=scale)]], None,
                               ["x_t (what the network sees)", "x̂₀ (its guess of the clean image)"])
        return add_text(grid, above=title, below=caption)

    images = [frame(*states[i]) for i in keep]
    pace = duration_ms if duration_ms is not None else gif_pace(len(images))
    return save_gif(images, path, duration_ms=pace, final_hold_ms=final_hold_ms)


def x0_strip_image(steps: Sequence[SamplerStep], rows: int = 5, *, n_images: int = 8,
                   scale: int | None = None) -> Image.Image:
    """Seed 001's two-column figure: at ``rows`` evenly spaced steps, the model input x_t beside its x̂_0.

    Each row is one step (with its timestep), showing the first ``n_images`` of the batch in a line;
    the right column is what the network predicts the clean images to be at that point. Tiles are
    enlarged to :func:`~.grid.tile_scale` unless ``scale`` is given.
    """
    _check(steps)
    scale = scale or tile_scale(steps[0].x_t.shape[-1])
    cells, names = [], []
    for k in subsample_indices(len(steps), rows):
        s = steps[k]
        cells.append([make_grid(to_uint8(x[:n_images]), nrow=n_images, scale=scale) for x in (s.x_t, s.x0_hat)])
        names.append(f"step {s.index + 1}\n{step_label(s)}")
    return image_table(cells, names, ["x_t (model input)", "x̂₀ (predicted clean image)"])


def x0_strip(steps: Sequence[SamplerStep], path: str | Path, rows: int = 5, *, n_images: int = 8,
             scale: int | None = None) -> Path:
    """Save :func:`x0_strip_image` to ``path``."""
    return save_image(x0_strip_image(steps, rows, n_images=n_images, scale=scale), path)


def compare_samplers_image(samples: dict[str, Tensor], labels: Sequence[str] | None = None, *,
                           caption: str | None = None, scale: int | None = None) -> Image.Image:
    """Final samples of several samplers side by side, each a :func:`~.samples.sample_grid` under its name.

    For example seed 002's lesson: ``{"DDPM": x, "DDPM without noise": y}`` from the same x_T shows
    the noise-free chain collapsing to smooth, average-looking images.
    """
    if not samples:
        raise UserError("no samples to compare")
    grids = [sample_grid(to_uint8(x), labels, scale=scale) for x in samples.values()]
    return add_text(image_table([grids], None, list(samples), gap=12), below=caption)


def compare_samplers_figure(samples: dict[str, Tensor], path: str | Path, labels: Sequence[str] | None = None, *,
                            caption: str | None = None, scale: int | None = None) -> Path:
    """Save :func:`compare_samplers_image` to ``path``."""
    return save_image(compare_samplers_image(samples, labels, caption=caption, scale=scale), path)
