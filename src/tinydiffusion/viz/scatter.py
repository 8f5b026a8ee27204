"""Scatter plots and animations of 2-D point sets (seed 004, the S-curve).

Seed 004 draws q(x_t | x_0) of its 10,000 points for the first steps and the reverse chain every
second step, each frame with its own automatic axes, so the cloud seems to stand still while the
axes move. Here every frame of an animation shares one square window, fixed before drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from ..errors import UserError
from ..samplers import SamplerStep
from ..schedule import NoiseSchedule
from .forward import NoiseSource, forward_jumps
from .gif import save_gif, subsample_indices
from .plots import figure_image, save_figure

Limits = tuple[float, float]

#: Fraction of the largest coordinate added around the points when the window is chosen automatically.
MARGIN = 0.05


def _points(points: Tensor | np.ndarray) -> np.ndarray:
    array = points.detach().float().cpu().numpy() if isinstance(points, Tensor) else np.asarray(points, np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise UserError(f"a scatter plot needs points shaped (N, 2), got {array.shape}")
    return array


def square_limits(point_sets: Sequence[np.ndarray]) -> Limits:
    """One symmetric window (−m, m) holding every finite point of every set, with a small margin."""
    finite = [np.abs(p[np.isfinite(p).all(axis=1)]) for p in point_sets]
    m = max((float(p.max()) for p in finite if p.size), default=1.0)
    m = m * (1 + MARGIN) if m > 0 else 1.0
    return (-m, m)


class _ScatterFrames:
    """One figure reused for every frame: only the points and the title change."""

    def __init__(self, limits: Limits, size_in: float, marker_size: float):
        self.fig = Figure(figsize=(size_in, size_in), layout="constrained")
        self.ax = self.fig.add_subplot()
        self.ax.set_xlim(*limits)
        self.ax.set_ylim(*limits)
        self.ax.set_aspect("equal")
        self.ax.set_xticks([])
        self.ax.set_yticks([])
        self.dots = self.ax.scatter([], [], s=marker_size, color="tab:red", edgecolors="none", alpha=0.6)

    def draw(self, points: np.ndarray, title: str) -> Figure:
        self.dots.set_offsets(points)
        self.ax.set_title(title)
        return self.fig

    def render(self, points: np.ndarray, title: str) -> Image.Image:
        return figure_image(self.draw(points, title))


def scatter_image(points: Tensor | np.ndarray, *, title: str = "", limits: Limits | None = None,
                  size_in: float = 4.0, marker_size: float = 2.0) -> Image.Image:
    """A square scatter plot of (N, 2) points as an RGB image; ``limits`` defaults to :func:`square_limits`.

    Pass the same ``limits`` for every frame of a sequence (a step slider, an animation) so the window
    stays still while the points move.
    """
    array = _points(points)
    return _ScatterFrames(limits or square_limits([array]), size_in, marker_size).render(array, title)


def scatter_png(points: Tensor | np.ndarray, path: str | Path, *, title: str = "", limits: Limits | None = None,
                size_in: float = 4.0, marker_size: float = 2.0) -> Path:
    """Save a square scatter plot of (N, 2) points; ``limits`` defaults to :func:`square_limits`."""
    array = _points(points)
    frames = _ScatterFrames(limits or square_limits([array]), size_in, marker_size)
    return save_figure(frames.draw(array, title), path)


def _animate(point_sets: list[np.ndarray], titles: list[str], path: str | Path, limits: Limits | None,
             duration_ms: int, final_hold_ms: int | None) -> Path:
    frames = _ScatterFrames(limits or square_limits(point_sets), 4.0, 2.0)
    images = [frames.render(p, title) for p, title in zip(point_sets, titles)]
    return save_gif(images, path, duration_ms=duration_ms, final_hold_ms=final_hold_ms)


def forward_scatter_gif(schedule: NoiseSchedule, points: Tensor | np.ndarray, path: str | Path,
                        steps: int | Sequence[int] = 40, generator: NoiseSource = None, *,
                        limits: Limits | None = None, duration_ms: int = 120,
                        final_hold_ms: int | None = 1000) -> Path:
    """Animate q(x_t | x_0) (DDPM eq. 4) of a 2-D set: the data, then x_t at each of ``steps``.

    ``steps`` is a list of timesteps or a count of evenly spaced ones from 0 to T − 1 (seed 004 showed
    the first 10 of its T = 100). Every frame is one jump from the clean points.
    """
    x0 = torch.as_tensor(_points(points), dtype=torch.float32)
    ts = subsample_indices(schedule.num_timesteps, steps) if isinstance(steps, int) else list(steps)
    noisy = forward_jumps(schedule, x0, ts, generator)
    sets = [x0.numpy()] + [x.numpy() for x in noisy]
    titles = ["data"] + [f"q(x_t | x_0), t={t}" for t in ts]
    return _animate(sets, titles, path, limits, duration_ms, final_hold_ms)


def reverse_scatter_gif(steps: Sequence[SamplerStep], path: str | Path, *, max_frames: int = 50,
                        limits: Limits | None = None, duration_ms: int = 120, final_hold_ms: int | None = 1500) -> Path:
    """Animate a sampler trajectory of 2-D points (seed 004's reverse GIF): x_T, then each step's output.

    ``steps`` is what the sampler's ``callback`` received; at most ``max_frames`` frames, evenly spaced,
    always with the start and the final sample.
    """
    if not steps:
        raise UserError("the sampler trajectory is empty")
    sets = [_points(steps[0].x_t)] + [_points(s.x_next) for s in steps]
    titles = [f"x_T (t={steps[0].t:g})"] + [f"after t={s.t:g}" for s in steps[:-1]] + ["sample"]
    keep = subsample_indices(len(sets), max_frames)
    return _animate([sets[i] for i in keep], [titles[i] for i in keep], path, limits, duration_ms, final_hold_ms)
