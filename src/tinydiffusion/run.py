"""One line from a run directory to images: ``tinydiffusion.load(RUN).sample(16, classes=[7])``.

A run's ``model.safetensors`` describes itself (see :mod:`tinydiffusion.checkpoint`): the network and
its config, the noise schedule, the prediction type, the dataset facts (class names, image shape) and
the sampling defaults of the recipe. :func:`load` rebuilds all of it; :meth:`Run.sample` draws samples
with those defaults, any of which a keyword overrides. ``tinydiffusion sample`` goes through the same
two calls, so the same arguments and seed give the same images in Python and on the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .checkpoint import LoadedModel, load_model
from .conditioning import check_classes
from .errors import UserError
from .generate import SampleSettings, class_rows, generate, sample_shape
from .samplers import SamplerStep, sampler_options

__all__ = ["Run", "load"]


@dataclass
class Run(LoadedModel):
    """A trained run: the network (eval mode, on :attr:`device`), its schedule, and its metadata.

    ``model.tinydiffusion_prediction`` holds the prediction type, so :func:`tinydiffusion.sample` called
    on ``run.model`` directly also uses (and checks) it.
    """

    @property
    def device(self) -> torch.device:
        return self.schedule.device

    @property
    def data(self) -> dict[str, Any]:
        """Dataset facts: ``kind`` ("image" or "points"), ``channels``, ``image_size``, ``class_names``, …"""
        return self.meta["data"]

    @property
    def num_classes(self) -> int:
        """Classes the network takes (0: it takes none)."""
        return int(self.meta["model_config"].get("num_classes") or 0)

    @property
    def context_dim(self) -> int:
        """Length of the context vectors the network takes (0: it takes none)."""
        return int(self.meta["model_config"].get("context_dim") or 0)

    @property
    def class_names(self) -> list[str]:
        """A name per class (or per context entry); the ids as text where the data had no names."""
        count = self.num_classes or self.context_dim
        names = list(self.data.get("class_names") or [])
        return names[:count] if len(names) >= count else [str(i) for i in range(count)]

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one sample: (C, H, W) for images, (D,) for points."""
        return sample_shape(self.data)

    @property
    def defaults(self) -> SampleSettings:
        """The run's sampling settings (its recipe's ``[sample]`` section)."""
        return SampleSettings.from_dict(self.meta.get("sample", {}))

    def settings(self, *, sampler: str | None = None, steps: int | None = None, eta: float | None = None,
                 spacing: str | None = None, variance: str | None = None, clip_x0: bool | None = None,
                 guidance: float | None = None, label: Callable[[str], str] | None = None) -> SampleSettings:
        """The run's defaults with the given settings on top (a new sampler starts from its own step count).

        A setting that cannot work is one :class:`UserError` naming it (``label(field)``: how the caller
        calls the field; by default the keyword, or the run's own ``sample.FIELD``); a given option the
        sampler does not use (``eta`` for DDPM, …) is refused; the run's own options for another sampler
        just drop out.
        """
        s = self.defaults
        given = dict(steps=steps, eta=eta, spacing=spacing, variance=variance, clip_x0=clip_x0, guidance=guidance)
        given = {k: v for k, v in given.items() if v is not None}
        if sampler is not None and sampler != s.sampler:
            s.sampler, s.steps = sampler, None
            given["sampler"] = sampler
        s = dataclasses.replace(s, **{k: v for k, v in given.items() if k != "sampler"})

        def keyword(field: str) -> str:
            return field if field in given else f"the run's sample.{field} (in {self.path})"

        s.check(label or keyword, objective=self.meta.get("objective"), prediction=self.prediction)
        sampler_options(s.sampler, eta=eta, variance=variance, spacing=spacing)
        return s

    def conditions(self, n: int, classes: Sequence[int] | None = None,
                   contexts: Sequence[Sequence[float]] | Tensor | None = None) -> Tensor | None:
        """The condition of each of ``n`` samples, class-major.

        ``classes`` (ids) or ``contexts`` (vectors) are spread over the samples in blocks, the first
        ⌈n/k⌉ samples getting the first one, and so on; without either, a class-conditional run gets
        every class in turn (:func:`~tinydiffusion.generate.class_rows`), a context run the
        one-hot vectors, an unconditional run None.
        """
        if classes is not None and contexts is not None:
            raise UserError("give classes or contexts, not both")
        if classes is not None:
            if not self.num_classes:
                raise UserError(f"this model takes no class ids ({self._takes()})")
            ids = torch.as_tensor(list(classes), dtype=torch.long)
            if ids.numel() == 0:
                raise UserError("classes is empty")
            check_classes(ids.tolist(), self.num_classes)
            return ids[class_rows(n, len(ids))[0]]
        if contexts is not None:
            if not self.context_dim:
                raise UserError(f"this model takes no context vectors ({self._takes()})")
            rows = torch.as_tensor(contexts, dtype=torch.float32)
            rows = rows[None] if rows.dim() == 1 else rows
            if rows.dim() != 2 or rows.shape[0] == 0 or rows.shape[1] != self.context_dim:
                raise UserError(f"contexts must be vectors of {self.context_dim} numbers, got shape {tuple(rows.shape)}")
            return rows[class_rows(n, len(rows))[0]]
        if self.num_classes or self.context_dim:
            return class_rows(n, self.num_classes or self.context_dim, one_hot=not self.num_classes)[0]
        return None

    def _takes(self) -> str:
        if self.num_classes:
            return f"it takes class ids 0..{self.num_classes - 1}"
        if self.context_dim:
            return f"it takes context vectors of length {self.context_dim}"
        return "it was trained without conditions"

    @torch.no_grad()
    def sample(self, n: int, *, classes: Sequence[int] | None = None,
               contexts: Sequence[Sequence[float]] | Tensor | None = None, guidance: float | None = None,
               sampler: str | None = None, steps: int | None = None, eta: float | None = None,
               spacing: str | None = None, variance: str | None = None, clip_x0: bool | None = None, seed: int = 0,
               batch_size: int = 256, progress: bool | None = None,
               callback: Callable[[SamplerStep], None] | None = None) -> Tensor:
        """``n`` samples as a float32 CPU tensor on the [−1, 1] scale (mapped from the run's ``data.range``;
        inside it when x̂₀ is clipped): (n, C, H, W) images or (n, D) points.

        Everything not given comes from the run: its sampler and settings (:meth:`settings`), its
        guidance weight, schedule and prediction type; conditions are laid out by :meth:`conditions`. Sample i uses seed ``seed + i`` whatever ``batch_size`` is. ``guidance`` is
        w in ε̂_u + w (ε̂_c − ε̂_u) and needs a conditional run; ``progress`` shows a bar of network calls
        (``None``: when stderr is a terminal). ``tinydiffusion.viz.to_uint8`` turns the result into
        uint8 (n, H, W, C) arrays, ``tinydiffusion.viz.save_image`` / ``sample_grid`` into pictures.
        """
        settings = self.settings(sampler=sampler, steps=steps, eta=eta, spacing=spacing, variance=variance,
                                 clip_x0=clip_x0, guidance=guidance)
        cond = self.conditions(n, classes, contexts)
        if guidance is not None and cond is None:
            raise UserError("guidance needs a conditional model; this one was trained without labels")
        return generate(self.model, self.schedule, self.shape, n, settings=settings, prediction=self.prediction,
                        seed=seed, cond=cond, batch_size=batch_size, device=self.device, callback=callback,
                        progress=progress, data_range=self.data_range)


def load(run: str | Path, device: torch.device | str = "cpu") -> Run:
    """Load a run directory (or its ``model.safetensors``) onto ``device`` as a :class:`Run`.

    >>> run = tinydiffusion.load("runs/quickstart")
    >>> images = run.sample(16, classes=[7], guidance=3)     # (16, 1, 16, 16) floats in [-1, 1]
    """
    loaded = load_model(run, device)
    return Run(**{f.name: getattr(loaded, f.name) for f in dataclasses.fields(loaded)})
