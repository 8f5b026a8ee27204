"""Scatter plots, panels and animations of 2-D point sets (seed 004, the S-curve).

Seed 004 draws q(x_t | x_0) of its 10,000 points at its first 10 steps in a 2 × 5 grid, the reverse
chain after every tenth step in a 1 × 10 strip, and both processes as GIFs, every panel and frame with
its own axes. The panels here do the same (:func:`scatter_panels`, :func:`forward_scatter_grid`,
:func:`scatter_strip`), with tick labels so that the changing scale shows. The animations' window
follows the data frame by frame by default (a symmetric square around the bulk of the points), so a
sample that sits in a small part of the noise's range (the S of seed 004, whose x_T keeps 78 % of
the data's scale and spreads far wider) fills its frame instead of shrinking to a dot; pass
``limits`` to fix one window for every frame.
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
from .strip import step_label, strip_steps

Limits = tuple[float, float]

#: Fraction of the largest coordinate added around the points when the window is chosen automatically.
MARGIN = 0.05
#: Quantile of |coordinate| that a following window holds (a few stray points may fall outside).
FOLLOW_QUANTILE = 0.995


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


def following_limits(points: np.ndarray) -> Limits:
    """The symmetric window (−m, m) of one frame: m the :data:`FOLLOW_QUANTILE` of its |coordinates|, plus margin."""
    finite = np.abs(points[np.isfinite(points).all(axis=1)])
    m = float(np.quantile(finite, FOLLOW_QUANTILE)) if finite.size else 1.0
    return (-m * (1 + 2 * MARGIN), m * (1 + 2 * MARGIN)) if m > 0 else (-1.0, 1.0)


class _ScatterFrames:
    """One figure reused for every frame: the points, the title and (when following) the window change."""

    def __init__(self, limits: Limits | None, size_in: float, marker_size: float):
        self.fig = Figure(figsize=(size_in, size_in), layout="constrained")
        self.ax = self.fig.add_subplot()
        self.limits = limits
        self.ax.set_aspect("equal")
        if limits is None:
            self.ax.tick_params(labelsize=7)
        else:
            self.ax.set_xticks([])
            self.ax.set_yticks([])
        self.dots = self.ax.scatter([], [], s=marker_size, color="tab:red", edgecolors="none", alpha=0.6)

    def draw(self, points: np.ndarray, title: str) -> Figure:
        limits = self.limits or following_limits(points)
        self.ax.set_xlim(*limits)
        self.ax.set_ylim(*limits)
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
    frames = _ScatterFrames(limits, 4.0, 2.0)
    images = [frames.render(p, title) for p, title in zip(point_sets, titles)]
    return save_gif(images, path, duration_ms=duration_ms, final_hold_ms=final_hold_ms)


def forward_scatter_gif(schedule: NoiseSchedule, points: Tensor | np.ndarray, path: str | Path,
                        steps: int | Sequence[int] = 40, generator: NoiseSource = None, *,
                        limits: Limits | None = None, duration_ms: int = 120,
                        final_hold_ms: int | None = 1000) -> Path:
    """Animate q(x_t | x_0) (DDPM eq. 4) of a 2-D set: the data, then x_t at each of ``steps``.

    ``steps`` is a list of timesteps or a count of evenly spaced ones from 0 to T − 1 (seed 004 showed
    the first 10 of its T = 100). Every frame is one jump from the clean points. The window follows
    the points unless ``limits`` fixes it.
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
    always with the start and the final sample. The window follows the points (the final sample fills
    its frame) unless ``limits`` fixes it.
    """
    if not steps:
        raise UserError("the sampler trajectory is empty")
    sets = [_points(steps[0].x_t)] + [_points(s.x_next) for s in steps]
    titles = [f"x_T (t={steps[0].t:g})"] + [f"after t={s.t:g}" for s in steps[:-1]] + ["sample"]
    keep = subsample_indices(len(sets), max_frames)
    return _animate([sets[i] for i in keep], [titles[i] for i in keep], path, limits, duration_ms, final_hold_ms)


def scatter_panels_figure(point_sets: Sequence[Tensor | np.ndarray], titles: Sequence[str], ncols: int, *,
                          panel_in: float = 1.7, marker_size: float = 1.5) -> Figure:
    """Point sets in a grid of panels, row-major, ``ncols`` per row, each panel with its own axes (seed 004)."""
    sets = [_points(p) for p in point_sets]
    if not sets:
        raise UserError("no point sets to draw")
    if len(titles) != len(sets):
        raise ValueError(f"{len(titles)} titles for {len(sets)} panels")
    ncols = max(1, min(ncols, len(sets)))
    nrows = -(-len(sets) // ncols)
    fig = Figure(figsize=(panel_in * ncols, panel_in * nrows + 0.2), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, points, title in zip(axes, sets, titles):
        ax.scatter(points[:, 0], points[:, 1], s=marker_size, color="tab:red", edgecolors="none", alpha=0.6)
        limits = following_limits(points)
        ax.set_xlim(*limits)
        ax.set_ylim(*limits)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
        ax.set_title(title, fontsize=9)
    for ax in axes[len(sets):]:
        ax.set_axis_off()
    return fig


def forward_scatter_grid(schedule: NoiseSchedule, points: Tensor | np.ndarray, path: str | Path,
                         timesteps: Sequence[int] | None = None, generator: NoiseSource = None, *,
                         ncols: int = 5) -> Path:
    """Seed 004's forward figure: q(x_t | x_0) (DDPM eq. 4) of a 2-D set at ``timesteps``, one panel each.

    ``timesteps`` defaults to 10 evenly spaced ones from 0 to T − 1 (seed 004 showed its first 10,
    ``range(10)``); 10 panels make seed 004's 2 × 5 grid. Every panel is one jump from the clean points.
    """
    x0 = torch.as_tensor(_points(points), dtype=torch.float32)
    ts = subsample_indices(schedule.num_timesteps, 10) if timesteps is None else [int(t) for t in timesteps]
    noisy = forward_jumps(schedule, x0, ts, generator)
    fig = scatter_panels_figure([x.numpy() for x in noisy], [f"q(x_t | x_0), t={t}" for t in ts], ncols)
    return save_figure(fig, path)


def scatter_strip(steps: Sequence[SamplerStep], path: str | Path, columns: int = 10) -> Path:
    """Seed 004's reverse figure: a 2-D sample after ``columns`` evenly spaced steps of its chain, one row.

    ``steps`` holds (at least) the steps shown and the last one (see
    :func:`~tinydiffusion.viz.strip.strip_steps`); each panel has its own axes and the timestep it
    has just denoised.
    """
    chosen = strip_steps(steps, columns)
    fig = scatter_panels_figure([s.x_next for s in chosen], [step_label(s) for s in chosen], len(chosen))
    return save_figure(fig, path)
