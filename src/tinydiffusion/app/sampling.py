"""Drawing samples for the views, exactly as ``tinydiffusion sample`` does.

The sampler settings come from the run's ``[sample]`` section with the view's choices on top, the
conditions are laid out as the CLI lays them out (one row per class by default), and sample i uses
seed ``seed + i``; so a picture in the app equals ``tinydiffusion sample RUN --seed S`` pixel for
pixel. Every request holds its run's lock while it samples (one request at a time per model) and
counts the network evaluations it really made.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..cli.common import conditions
from ..cli.sample_cmd import settings_from
from ..errors import UserError
from ..generate import SampleSettings, generate, sample_shape
from ..samplers import SAMPLERS, SamplerStep, sampler_timesteps
from ..viz.gif import subsample_indices
from .runs import Limits, Run

#: ``progress(fraction, description)`` after each sampler step (what ``gr.Progress`` takes).
Progress = Callable[[float, str], None]


@dataclass
class Drawn:
    """The samples of one request and what they cost."""

    x: Tensor  #: float samples on the CPU, (N, C, H, W) images in [-1, 1] or (N, D) points
    cond: Tensor | None  #: the per-sample condition (class ids or context rows)
    per_row: int | None  #: the grid row length the condition suggests (one class per row)
    settings: SampleSettings
    num_steps: int  #: sampler steps taken
    calls: int  #: network evaluations made (a guided call runs the conditional and null passes as one batch)
    seconds: float
    steps: list[SamplerStep]  #: the kept steps of the trajectory, on the CPU (empty unless asked for)

    def summary(self, device: torch.device) -> str:
        """One line for the page: sampler, steps, calls, time and device."""
        s = self.settings
        guided = f", guidance w={s.guidance:g}" if s.guidance is not None and self.cond is not None else ""
        return (f"{s.sampler}, {self.num_steps} steps{guided}: **{self.calls} network calls, {self.seconds:.2f} s** "
                f"on {device.type}")


class CountingNetwork:
    """Calls the network and counts the calls (what a sampler really spent)."""

    def __init__(self, network: Callable[..., Tensor]):
        self.network = network
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        self.calls += 1
        return self.network(*args, **kwargs)


def sampler_choices(meta: dict[str, Any]) -> list[str]:
    """The samplers that fit a run: seed 001's x0-step only for x0-predicting models, the rest otherwise."""
    if meta.get("objective") == "corrupt":
        return ["x0-step"]
    return [name for name in SAMPLERS if name != "x0-step" or meta.get("prediction") == "x0"]


def default_steps(run: Run, sampler: str) -> int:
    """The steps a sampler takes by default for this run (its ``[sample]`` steps for its own sampler)."""
    loaded = run.load()
    settings = settings_from(_flags(sampler, None, None, None, None), loaded)
    return len(sampler_timesteps(loaded.schedule, settings.sampler, settings.steps, settings.spacing))


def parse_contexts(text: str, dim: int, names: Sequence[str] | None = None) -> list[str]:
    """Context vectors typed as ``"1,0,0.6,0,0"``, several separated by ``;``; checked against ``dim``."""
    axes = f" ({', '.join(names)})" if names and len(names) == dim else ""
    rows = [piece.strip() for piece in text.split(";") if piece.strip()]
    if not rows:
        raise UserError(f"type a context vector of {dim} numbers{axes}, such as {','.join(['0'] * dim)}")
    for row in rows:
        values = [v for v in row.replace(" ", "").split(",") if v]
        if len(values) != dim:
            raise UserError(f"the context {row!r} has {len(values)} values, but this model's context vectors have "
                            f"{dim}{axes}")
        for v in values:
            try:
                float(v)
            except ValueError:
                raise UserError(f"the context {row!r} holds {v!r}, which is not a number") from None
    return rows


def _flags(sampler: str | None, steps: int | None, guidance: float | None, classes: Sequence[int] | None,
           contexts: Sequence[str] | None) -> argparse.Namespace:
    """The ``tinydiffusion sample`` flags for these choices (the rest at the run's defaults)."""
    return argparse.Namespace(sampler=sampler, steps=steps, eta=None, spacing=None, variance=None, clip_x0=None,
                              guidance=guidance, classes=list(classes) if classes else None,
                              context=list(contexts) if contexts else None)


def draw(run: Run, n: float, *, limits: Limits, sampler: str | None = None, steps: float | None = None,
         seed: float = 0, classes: Sequence[int] | None = None, contexts: Sequence[str] | None = None,
         guidance: float | None = None, frames: int = 0, progress: Progress | None = None) -> Drawn:
    """``n`` samples of ``run`` with per-sample seeds ``seed + i``, holding the run's lock.

    ``sampler``/``steps`` default to the run's; ``classes`` (sharing the samples in blocks) or ``contexts``
    (checked strings, see :func:`parse_contexts`) condition a conditional run, which otherwise gets one
    row per class; ``guidance`` is the classifier-free guidance weight w. ``frames`` > 0 keeps that many
    evenly spaced steps of the trajectory (always the first and the last).
    """
    loaded = run.load()
    meta = loaded.meta
    points = meta["data"].get("kind") == "points"
    n = limits.check_n(n, points=points)
    seed = _seed(seed)
    flags = _flags(sampler, None if steps is None else limits.check_steps(steps), guidance, _class_ids(classes),
                   contexts)
    settings = settings_from(flags, loaded)
    num_steps = len(sampler_timesteps(loaded.schedule, settings.sampler, settings.steps, settings.spacing))
    if num_steps > limits.max_steps:
        raise UserError(f"{settings.sampler} takes {num_steps} steps by default here, more than the app's limit of "
                        f"{limits.max_steps}; choose fewer steps")
    cond = conditions(flags, loaded, n)
    keep = set(subsample_indices(num_steps, frames)) if frames else set()
    kept: list[SamplerStep] = []

    def callback(step: SamplerStep) -> None:
        if step.index in keep:
            kept.append(dataclasses.replace(step, x_t=step.x_t.cpu(), x0_hat=step.x0_hat.cpu(),
                                            x_next=step.x_next.cpu()))
        if progress is not None:
            progress((step.index + 1) / num_steps, f"{settings.sampler}: step {step.index + 1} of {num_steps}")

    network = CountingNetwork(loaded.model)
    with run.lock:
        start = time.perf_counter()
        x = generate(network, loaded.schedule, sample_shape(meta["data"]), n,  # type: ignore[arg-type]
                     settings=settings, prediction=loaded.prediction, seed=seed, cond=cond, batch_size=n,
                     device=run.device, callback=callback, data_range=loaded.data_range)
        seconds = time.perf_counter() - start
    return Drawn(x, cond, _row_length(cond), settings, num_steps, network.calls, seconds, kept)


def _row_length(cond: Tensor | None) -> int | None:
    """The longest run of equal consecutive conditions: a class's row in the grid (None without conditions)."""
    if cond is None:
        return None
    longest = current = 1
    for a, b in zip(cond[:-1], cond[1:]):
        current = current + 1 if bool((a == b).all()) else 1
        longest = max(longest, current)
    return longest


def _class_ids(classes: Sequence[int | float | str] | None) -> list[int] | None:
    """Class ids as whole numbers (a page may send them as text)."""
    if not classes:
        return None
    out = []
    for c in classes:
        try:
            value = float(c)
        except (TypeError, ValueError):
            raise UserError(f"class {c!r} is not a class id; choose classes from the list") from None
        if value != int(value):
            raise UserError(f"class {c!r} is not a class id; choose classes from the list")
        out.append(int(value))
    return out


def _seed(seed: float) -> int:
    if seed is None or float(seed) != int(float(seed)) or not 0 <= int(float(seed)) < 2**63 - 2**32:
        raise UserError(f"the seed must be a whole number from 0, got {seed!r}")
    return int(float(seed))
