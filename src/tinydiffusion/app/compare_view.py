"""The Compare view: the same seeds through 2–4 samplers or step counts, side by side, with their cost.

Seed 002's lesson, live: DDPM with its T steps, DDIM with 25, and the "incorrect" DDPM that adds no
noise, which collapses to smooth, average-looking images. Every column starts from the same x_T
(sample i has seed ``seed + i`` in every column), so the differences are the samplers' alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import UserError
from ..viz.grid import image_table, make_grid, to_uint8
from .runs import Limits, Run
from .sample_view import cell_scale, run_controls
from .sampling import Progress, draw

#: Pixels between the columns of the picture (their titles are wider than small grids).
COLUMN_GAP = 16
#: A column that is switched off.
OFF = "off"
MIN_COLUMNS, MAX_COLUMNS = 2, 4


@dataclass
class Column:
    """One sampler's samples and cost."""

    sampler: str
    steps: int
    calls: int
    seconds: float
    images: np.ndarray  #: uint8 (N, H, W, C)

    @property
    def title(self) -> str:
        return f"{self.sampler}, {self.steps} steps: {self.calls} calls, {self.seconds:.2f} s"


@dataclass
class Comparison:
    picture: Image.Image  #: the grids side by side under their titles
    columns: list[Column]

    def table(self) -> list[list[object]]:
        """Rows of (sampler, steps, network calls, seconds)."""
        return [[c.sampler, c.steps, c.calls, round(c.seconds, 3)] for c in self.columns]


def default_columns(run: Run) -> list[tuple[str, int]]:
    """Seed 002's comparison where the run allows it: DDPM, DDIM with 25 steps, DDPM without noise."""
    controls = run_controls(run)
    if controls.samplers == ["x0-step"]:
        return [("x0-step", 5), ("x0-step", 20)]
    T = run.load().schedule.num_timesteps
    return [("ddpm", min(T, 100)), ("ddim", min(T, 25)), ("ddpm-no-noise", min(T, 100))]


def compare_samplers(run: Run, columns: Sequence[tuple[str | None, float | None]], n: float, *, limits: Limits,
                     seed: float = 0, classes: Sequence[int] | None = None, guidance: float | None = None,
                     progress: Progress | None = None) -> Comparison:
    """Sample the same seeds with each (sampler, steps) of ``columns`` whose sampler is not ``OFF``."""
    active = [(s, k) for s, k in columns if s and s != OFF]
    if not MIN_COLUMNS <= len(active) <= MAX_COLUMNS:
        raise UserError(f"choose {MIN_COLUMNS} to {MAX_COLUMNS} samplers (or one sampler at several step counts) "
                        f"to compare; {len(active)} chosen")
    for i, column in enumerate(active):
        if column in active[:i]:
            raise UserError(f"column {i + 1} repeats column {active.index(column) + 1} ({column[0]}, {column[1]} "
                            "steps); change its sampler or its steps")
    controls = run_controls(run)
    out: list[Column] = []
    grids = []
    for i, (sampler, steps) in enumerate(active):
        if sampler not in controls.samplers:
            raise UserError(f"{sampler} does not fit {run.name}; choose one of {', '.join(controls.samplers)}")

        def column_progress(fraction: float, text: str, i: int = i) -> None:
            if progress is not None:
                progress((i + fraction) / len(active), f"column {i + 1} of {len(active)}: {text}")

        drawn = draw(run, n, limits=limits, sampler=sampler, steps=steps, seed=seed, classes=classes,
                     guidance=guidance if controls.conditional else None, progress=column_progress)
        column = Column(sampler, drawn.num_steps, drawn.calls, drawn.seconds, to_uint8(drawn.x))
        out.append(column)
        grids.append(make_grid(column.images, nrow=drawn.per_row, scale=cell_scale(controls.image_size)))
    picture = image_table([grids], None, [c.title for c in out], gap=COLUMN_GAP)
    return Comparison(picture, out)
