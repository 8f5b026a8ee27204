"""The 2-D view: seed 004's S-curve (or any 2-D run) dissolving into noise and coming back, step by step.

The forward side draws q(x_t | x_0) (DDPM eq. 4) of the run's own training points in one jump for the
chosen t; the reverse side samples new points with the run's sampler and keeps every step. Each side
keeps one fixed square window for all its steps, so the cloud moves and the axes stand still: around the
data (seed 004's S-curve is 0.1 wide, the noise 1, so most noisy points leave it) or around every step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import from_dict, read_toml
from ..data import load_dataset
from ..errors import UserError
from ..rng import SeededNoise
from ..viz.forward import forward_jumps
from ..viz.scatter import Limits as Window
from ..viz.scatter import scatter_image, square_limits
from .runs import Limits, Run
from .sampling import Progress, draw

#: At most this many steps of a reverse process are kept for the slider.
MAX_FRAMES = 200


def _check_points_run(run: Run) -> None:
    if run.load().meta["data"].get("kind") != "points":
        raise UserError(f"{run.name} generates images; explore it in the Sample view")


@functools.lru_cache(maxsize=4)
def _training_points(spec: str, n: int | None, seed: int) -> np.ndarray:
    return load_dataset(spec, n=n, seed=seed).points


def training_points(run: Run) -> np.ndarray:
    """The points the run was trained on (float32 (N, 2)): its data spec, size and seed."""
    _check_points_run(run)
    config_file = Path(run.path) / "config.toml"
    if config_file.is_file():
        cfg = from_dict(read_toml(config_file))
        return _training_points(cfg.data.spec, cfg.data.n, cfg.runtime.seed)
    return _training_points(run.load().meta["data"]["spec"], None, 0)


#: The two windows a view can keep fixed: around the training data, or around every step of the process.
WINDOWS = ("data", "all steps")
#: The data window is this many times the half-width of the data (room for the first noisy steps).
DATA_WINDOW_SCALE = 1.5


def window_for(kind: str, data: np.ndarray, steps: list[np.ndarray]) -> Window:
    """The fixed square window of a view: around the data (points far out leave it) or around every step."""
    if kind not in WINDOWS:
        raise UserError(f"unknown window {kind!r}; choose one of {', '.join(WINDOWS)}")
    if kind == "all steps":
        return square_limits([data, *steps])
    low, high = square_limits([data])
    return (low * DATA_WINDOW_SCALE, high * DATA_WINDOW_SCALE)


def _picture(points: np.ndarray, title: str, window: Window) -> Image.Image:
    """A scatter plot in ``window``, saying how many points lie outside it."""
    outside = int((np.abs(points) > window[1]).any(axis=1).sum())
    if outside:
        title += f"\n{outside:,} of {len(points):,} points outside this window"
    return scatter_image(points, title=title, limits=window)


@dataclass
class ForwardPoints:
    t: int
    points: np.ndarray  #: float32 (N, 2): x_t of every training point
    picture: Image.Image


def forward_points(run: Run, t: float, seed: float = 0, window: str = "data") -> ForwardPoints:
    """The run's training points at step ``t`` (clamped to 0..T−1) of the forward process, drawn in one jump.

    Point i's noise is ``SeededNoise`` seed ``seed + i`` (the stream of
    :func:`~tinydiffusion.viz.forward.forward_jumps`). The window (see :func:`window_for`) stays the same
    for every t: around the data, or around the data and the noisiest step.
    """
    x0 = torch.from_numpy(training_points(run))
    schedule = run.load().schedule.to("cpu")
    T = schedule.num_timesteps
    t = min(max(int(float(t or 0)), 0), T - 1)
    if seed is None or float(seed) != int(float(seed)) or float(seed) < 0:
        raise UserError(f"the seed must be a whole number from 0, got {seed!r}")
    noise = SeededNoise.range(int(float(seed)), len(x0))
    x_t, x_last = forward_jumps(schedule, x0, [t, T - 1], noise)
    limits = window_for(window, x0.numpy(), [x_last.numpy()])
    ab = float(schedule.alpha_bar64[t])
    picture = _picture(x_t.numpy(), f"q(x_t | x_0): t={t}, ᾱ_t={ab:.3f}", limits)
    return ForwardPoints(t, x_t.numpy(), picture)


@dataclass
class PointsTrajectory:
    """A reverse process of 2-D points: x_T and the output of every kept step."""

    timesteps: list[float]  #: the timestep of each step (one fewer than frames)
    frames: np.ndarray  #: float32 (K + 1, N, 2)
    data: np.ndarray  #: the training points, which the "data" window is fitted to
    summary: str

    def __len__(self) -> int:
        return len(self.frames)


def reverse_points(run: Run, n: float, *, limits: Limits, sampler: str | None = None, steps: float | None = None,
                   seed: float = 0, progress: Progress | None = None) -> PointsTrajectory:
    """Sample ``n`` points with per-sample seeds ``seed + i``, keeping up to ``MAX_FRAMES`` steps."""
    _check_points_run(run)
    drawn = draw(run, n, limits=limits, sampler=sampler, steps=steps, seed=seed, frames=MAX_FRAMES, progress=progress)
    frames = np.stack([drawn.steps[0].x_t.numpy()] + [s.x_next.numpy() for s in drawn.steps]).astype(np.float32)
    return PointsTrajectory([s.t for s in drawn.steps], frames, training_points(run), drawn.summary(run.device))


def reverse_frame(trajectory: PointsTrajectory, k: float, window: str = "data") -> Image.Image:
    """Frame ``k`` (clamped) of a reverse process, 0 being x_T and the last the sample, in a fixed window."""
    if not len(trajectory):
        raise UserError("sample first: the slider walks through the reverse process of the last sample")
    k = min(max(int(k), 0), len(trajectory) - 1)
    if k == 0:
        title = f"x_T (t={trajectory.timesteps[0]:g}), pure noise"
    elif k == len(trajectory) - 1:
        title = "the samples (x_0)"
    else:
        title = f"after the step at t={trajectory.timesteps[k - 1]:g}"
    limits = window_for(window, trajectory.data, list(trajectory.frames))
    return _picture(trajectory.frames[k], title, limits)
