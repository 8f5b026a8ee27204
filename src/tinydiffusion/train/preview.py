"""Sample grids during training: a fast sampler, the same seeds every time, one labelled row per class for
conditional runs, a bounded share of the run's time, and never in the way of a stop signal.

* The grids follow the picture rules of :mod:`tinydiffusion.viz.samples` (class names, tiles of at least
  64 px, a caption with the step, sampler, network calls, guidance and seed).
* The sampler: ``preview.sampler = "auto"`` (the default) is DDIM with ``preview.steps`` (20) steps,
  or the run's own sampler when that needs no more network calls (seed 001's 5-step x0-step,
  DPM-Solver++ in 20). A recipe may name any sampler (seed 000 previews with its own 150-step DDPM).
  A 1,000-step DDPM preview of 64 images costs as much as hundreds of training steps on a CPU.
* The share: a scheduled preview is skipped while previews have taken more than
  ``preview.max_share`` of the run's time so far (one line says so); the last one is always written.
* The stop signal: the sampler's callback checks the stop flag after every step and abandons the
  preview (:class:`PreviewAbandoned`), so Ctrl-C or SIGTERM saves and stops within one network call.
* The strip: with ``preview.strip`` columns, the reverse process of the first sample (of all the
  points for 2-D sets) is written beside the grid as ``step-XXXXXXXX-strip.png``: seed 000's 15
  columns every 100 steps, seed 004's 10 panels; the report shows them one row per preview.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from ..errors import UserError
from ..generate import SampleSettings, class_rows, generate, network_calls, sample_shape, sampler_steps
from ..samplers import SAMPLERS, SamplerStep
from ..value_range import parse_range
from ..viz.grid import save_image, to_uint8
from ..viz.samples import label_names, sample_grid, sampling_caption
from ..viz.strip import reverse_strip, strip_indices
from .setup import RunParts


class PreviewAbandoned(Exception):
    """A stop signal arrived while a preview was being sampled; nothing was written."""


def preview_condition(parts: RunParts, n: int) -> torch.Tensor | None:
    """The conditions of a preview grid: every class (or one-hot context) in turn, class-major."""
    if parts.condition == "none":
        return None
    num = parts.model.config.num_classes or parts.model.config.context_dim
    return class_rows(n, num, one_hot=parts.condition == "context")[0]


def preview_settings(parts: RunParts) -> SampleSettings:
    """The sampler of the run's previews (see the module docstring); a clear error for one that cannot work."""
    cfg = parts.cfg
    run = SampleSettings.from_dict(vars(cfg.sample))
    p = cfg.preview
    if p.sampler == "auto":
        if p.steps is None or network_calls(parts.schedule, run) <= p.steps:
            return run
        return dataclasses.replace(run, sampler="ddim", steps=p.steps)  # the run's eta (0 unless it uses DDIM)
    if p.sampler not in SAMPLERS:
        raise UserError(f"preview.sampler must be auto or one of {', '.join(SAMPLERS)}, got {p.sampler!r}")
    if (cfg.objective.kind == "corrupt") != (p.sampler == "x0-step"):
        raise UserError(f"preview.sampler {p.sampler} does not fit a model trained with the "
                        f"{cfg.objective.kind} objective; use auto")
    return dataclasses.replace(run, sampler=p.sampler, steps=p.steps)


def write_preview(model: nn.Module, parts: RunParts, path: Path, step: int | None = None, *,
                  settings: SampleSettings | None = None, should_stop: Callable[[], bool] | None = None,
                  strip: int = 0) -> Image.Image:
    """Sample ``preview.n`` images (or points) with the preview sampler, write a PNG and return it.

    ``should_stop`` is asked after every sampler step; when it says yes the preview is abandoned
    (:class:`PreviewAbandoned`) and nothing is written. With ``strip`` columns, the reverse process of
    the first sample (all the points of a 2-D set) is also written, to ``path`` with ``-strip`` added.
    """
    cfg = parts.cfg
    settings = settings or preview_settings(parts)
    cond = preview_condition(parts, cfg.preview.n)
    prediction = "x0" if cfg.objective.kind == "corrupt" else cfg.objective.prediction
    shape = sample_shape({"kind": parts.dataset.kind, **parts.dataset.facts()})
    points = parts.dataset.kind == "points"
    kept: list[SamplerStep] = []
    shown: set[int] = set()
    if strip:
        total = sampler_steps(parts.schedule, settings)
        shown = set(strip_indices(total, strip)) | {total - 1}

    def callback(step: SamplerStep) -> None:
        if should_stop is not None and should_stop():
            raise PreviewAbandoned
        if step.index in shown:
            first = (lambda x: x.cpu()) if points else (lambda x: x[:1].cpu())
            kept.append(dataclasses.replace(step, x_t=first(step.x_t), x0_hat=first(step.x0_hat),
                                            x_next=first(step.x_next)))

    x = generate(model, parts.schedule, shape, cfg.preview.n, settings=settings, prediction=prediction,
                 seed=cfg.preview.seed, cond=cond, device=parts.device, progress=False, callback=callback,
                 batch_size=cfg.preview.n if strip else 256, data_range=parse_range(cfg.data.range))
    caption = sampling_caption(settings.sampler, network_calls(parts.schedule, settings),
                               settings.guidance if cond is not None else None, cfg.preview.seed,
                               extra=None if step is None else f"step {step:,}")
    path.parent.mkdir(parents=True, exist_ok=True)
    strip_path = path.with_name(f"{path.stem}-strip{path.suffix}")
    if points:
        from ..viz.scatter import scatter_png, scatter_strip  # matplotlib: only for 2-D points

        scatter_png(x.numpy(), path, title=caption)
        if strip:
            scatter_strip(kept, strip_path, strip)
        return Image.open(path).convert("RGB")
    labels = label_names(cond, parts.dataset.class_names or [])
    image = sample_grid(to_uint8(x), labels, caption=caption)
    save_image(image, path)
    if strip:
        reverse_strip(kept, strip_path, strip)
    return image


class Previews:
    """When previews are due, with which sampler, and how much of the run's time they have taken."""

    def __init__(self, parts: RunParts, notify: Callable[[str], None] = print):
        cfg = parts.cfg
        self.settings = preview_settings(parts)
        self.total = parts.total_steps
        self.cfg_every = cfg.preview.every
        self.every = self.cfg_every or max(1, self.total // 4)
        self.max_share = cfg.preview.max_share
        self.notify = notify
        self.started = time.perf_counter()
        self.spent = 0.0
        self.skipped = 0

    def replan(self, total: int) -> None:
        """Follow a new step count (a ``--time-budget`` run plans its length after its first steps)."""
        self.total = total
        self.every = self.cfg_every or max(1, total // 4)

    def due(self, step: int) -> bool:
        """A preview at ``step``: every ``every`` steps while within the share, and always at the end."""
        if step == self.total:
            return True
        if step % self.every:
            return False
        if self.spent > self.max_share * (time.perf_counter() - self.started):
            if not self.skipped:
                self.notify(f"previews have taken {self.spent:.0f} s, more than {self.max_share:.0%} of the run so "
                            "far; some are skipped (preview.max_share=1 keeps them all)")
            self.skipped += 1
            return False
        return True

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Count the time inside the block as preview time."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.spent += time.perf_counter() - start
