"""The Sample view: images from a run, and the reverse process as a scrubbable strip of x_t beside x̂₀.

Seed 002 saves the intermediate images of its DDPM loop and seed 001 shows the model input x_t
beside the network's estimate of the clean image x̂₀ at each step; here the same trajectory is
kept (60 evenly spaced steps), animated as a GIF, and shown step by step under a slider.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..cli.sample_cmd import write_samples
from ..errors import UserError
from ..viz.grid import image_table, make_grid, to_uint8
from ..viz.samples import label_names, sample_grid
from ..viz.trajectory import reverse_gif
from .runs import Limits, Run
from .sampling import Drawn, Progress, default_steps, draw, parse_contexts, sampler_choices

#: Steps of the reverse process kept for the animation and the strip (as ``tinydiffusion sample --gif``).
TRAJECTORY_FRAMES = 60
#: Generated GIFs and NPZs are deleted after this many seconds (Gradio serves its own copies).
KEEP_FILES_S = 3600
#: Grids enlarge small images to about this many pixels a side (16 px sprites 4×, 28 px digits 2×).
CELL_PIXELS = 64


@dataclass(frozen=True)
class RunControls:
    """What the Sample view offers for a run: its conditions, samplers and defaults."""

    name: str
    image_size: int
    num_classes: int
    context_dim: int
    names: list[str]  #: class names, or the names of the context axes
    samplers: list[str]
    sampler: str
    steps: int
    guidance: float

    @property
    def conditional(self) -> bool:
        return bool(self.num_classes or self.context_dim)

    def class_choices(self) -> list[tuple[str, int]]:
        """(label, id) pairs such as ("7: sneaker", 7)."""
        names = self.names if len(self.names) == self.num_classes else [str(c) for c in range(self.num_classes)]
        return [(f"{c}: {name}", c) for c, name in enumerate(names)]

    def axis_names(self) -> list[str]:
        """The names of the context axes (seed 002: hero, non-hero, food, spell, side-facing)."""
        return self.names if len(self.names) == self.context_dim else [f"axis {k}" for k in range(self.context_dim)]


def run_controls(run: Run) -> RunControls:
    """The Sample view's controls for ``run``: the run's own sampler, steps and guidance as defaults."""
    loaded = run.load()
    meta = loaded.meta
    if meta["data"].get("kind") == "points":
        raise UserError(f"{run.name} generates 2-D points; explore it in the 2-D view")
    config = meta["model_config"]
    defaults = meta.get("sample", {})
    samplers = sampler_choices(meta)
    sampler = defaults.get("sampler") if defaults.get("sampler") in samplers else samplers[0]
    guidance = defaults.get("guidance")
    return RunControls(name=run.name, image_size=int(meta["data"]["image_size"]),
                       num_classes=int(config.get("num_classes") or 0), context_dim=int(config.get("context_dim") or 0),
                       names=list(meta["data"].get("class_names") or []), samplers=samplers, sampler=sampler,
                       steps=default_steps(run, sampler), guidance=1.0 if guidance is None else float(guidance))


@dataclass
class Trajectory:
    """Kept steps of a reverse process as uint8 images: the input x_t and the prediction x̂₀ of each."""

    timesteps: list[float]
    x_t: np.ndarray  #: uint8 (K, N, H, W, C)
    x0_hat: np.ndarray  #: uint8 (K, N, H, W, C)
    per_row: int | None
    scale: int  #: the strip's enlargement (half the grid's: it shows two grids side by side)

    def __len__(self) -> int:
        return len(self.timesteps)


@dataclass
class SampleResult:
    """What the Sample view shows after one request."""

    images: np.ndarray  #: uint8 (N, H, W, C), as ``tinydiffusion sample --out x.npz`` writes them
    grid: Image.Image  #: the samples, one labelled row per class (or context) when the rows are uniform
    gif: Path  #: the reverse process, animated
    npz: Path  #: the arrays, for download (the format of ``tinydiffusion sample --out x.npz``)
    trajectory: Trajectory
    summary: str  #: sampler, steps, network calls, time


def cell_scale(image_size: int) -> int:
    """How many times grids enlarge images of ``image_size`` pixels (pixel repetition)."""
    return max(1, CELL_PIXELS // image_size)


def samples_grid(images: np.ndarray, cond: np.ndarray | None, names: Sequence[str], scale: int) -> Image.Image:
    """The samples as ``tinydiffusion sample`` draws them: one named row per class or context
    (:func:`~tinydiffusion.viz.samples.sample_grid`), enlarged ``scale`` times."""
    return sample_grid(images, label_names(cond, names), scale=scale)


def sample_images(run: Run, n: float, *, limits: Limits, out_dir: Path, sampler: str | None = None,
                  steps: float | None = None, seed: float = 0, classes: Sequence[int] | None = None,
                  context_text: str = "", guidance: float | None = None,
                  progress: Progress | None = None) -> SampleResult:
    """Sample ``n`` images of an image run as ``tinydiffusion sample`` would, keeping the reverse process.

    ``classes`` share the samples in blocks (one row each); ``context_text`` holds context vectors (``"1,0,0.6,0,0"``,
    several separated by ``;``) for a context model; neither gives one row per class. ``guidance`` is
    ignored for unconditional runs. The GIF and the NPZ are written into ``out_dir``.
    """
    controls = run_controls(run)
    contexts = None
    if context_text.strip():
        if not controls.context_dim:
            raise UserError(f"{run.name} takes no context vectors; "
                            + ("choose classes instead" if controls.num_classes else "it is unconditional"))
        contexts = parse_contexts(context_text, controls.context_dim, controls.axis_names())
    if classes and not controls.num_classes:
        raise UserError(f"{run.name} takes no class ids; "
                        + ("type a context vector instead" if controls.context_dim else "it is unconditional"))
    drawn = draw(run, n, limits=limits, sampler=sampler, steps=steps, seed=seed, classes=classes, contexts=contexts,
                 guidance=guidance if controls.conditional else None, frames=TRAJECTORY_FRAMES, progress=progress)
    images = to_uint8(drawn.x)
    cond = None if drawn.cond is None else drawn.cond.numpy()
    scale = cell_scale(controls.image_size)
    names = controls.names if controls.num_classes else controls.axis_names()
    grid = samples_grid(images, cond, names, scale)
    gif = reverse_gif(drawn.steps, _new_file(out_dir, "reverse-", ".gif"), label_names(cond, names), scale=scale)
    npz = _write_npz(drawn, run, out_dir)
    return SampleResult(images, grid, gif, npz, _trajectory(drawn, max(1, scale // 2)), drawn.summary(run.device))


def _trajectory(drawn: Drawn, scale: int) -> Trajectory:
    return Trajectory([s.t for s in drawn.steps], np.stack([to_uint8(s.x_t) for s in drawn.steps]),
                      np.stack([to_uint8(s.x0_hat) for s in drawn.steps]), drawn.per_row, scale)


def _new_file(out_dir: Path, prefix: str, suffix: str) -> Path:
    """A new file in ``out_dir``; files older than ``KEEP_FILES_S`` go (the page has fetched them long ago)."""
    now = time.time()
    for old in out_dir.glob(f"{prefix}*{suffix}"):
        if now - old.stat().st_mtime > KEEP_FILES_S:
            old.unlink(missing_ok=True)
    with tempfile.NamedTemporaryFile(dir=out_dir, prefix=prefix, suffix=suffix, delete=False) as f:
        return Path(f.name)


def _write_npz(drawn: Drawn, run: Run, out_dir: Path) -> Path:
    path = _new_file(out_dir, "samples-", ".npz")
    write_samples(path, drawn.x, drawn.cond, run.load(), None, None)
    return path


def trajectory_frame(trajectory: Trajectory, k: float) -> Image.Image:
    """Step ``k`` of a kept trajectory: the model input x_t beside the predicted clean image x̂₀."""
    if not len(trajectory):
        raise UserError("sample first: the strip shows the reverse process of the last samples")
    k = min(max(int(k), 0), len(trajectory) - 1)
    grids = [make_grid(x[k], nrow=trajectory.per_row, scale=trajectory.scale)
             for x in (trajectory.x_t, trajectory.x0_hat)]
    t = trajectory.timesteps[k]
    return image_table([grids], None, [f"network input x_t (t = {t:g})", "predicted x̂₀"], gap=12)
