"""Dropout whose masks do not depend on how a training batch is split over processes and micro-batches.

``nn.Dropout`` draws from the global generator: every process of a DDP job is seeded alike (so the
processes drop the same units of different samples), and the masks depend on how the batch is split.
:class:`SeededDropout` draws the masks of a training step from a :class:`DropoutSource` instead: a
generator seeded by (run seed, step, layer) draws uniform numbers for the whole global batch, and each
micro-batch of each process keeps its own rows. So the sample at position j of a step's batch gets the
same mask whether one process computes the whole batch or N processes with k accumulation steps each
compute a part of it, and ``--resume`` needs no generator state.

What it costs: every micro-batch draws the numbers of the whole global batch (N·k times what it keeps,
one cheap elementwise kernel per layer; the per-element hash of :mod:`tinydiffusion.rng` measured about
ten times a 3×3 convolution on a CPU, so it is not used here), and under ``torch.compile`` the draw is a
graph break (a ``torch.Generator`` cannot be traced). The numbers come from torch's own generators, so a
CPU and a CUDA run draw different masks. Outside a trainer (no source attached) the layer is ``nn.Dropout``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from ..rng import Stream, seed_parts, stream


class DropoutSource:
    """The uniform numbers behind the dropout masks of one micro-batch: rows of the whole step's batch."""

    def __init__(self, seed: int, batch_size: int):
        self.seed = seed
        self.batch_size = batch_size  #: the global batch B of one optimiser step
        self.step = 0
        self.rows = slice(0, batch_size)

    def select(self, step: int, start: int, count: int) -> None:
        """The next forward computes positions ``start .. start+count−1`` of the batch of optimiser step ``step``."""
        self.step, self.rows = step, slice(start, start + count)

    @torch.compiler.disable
    def uniform(self, shape: Sequence[int], layer: int, device: torch.device) -> Tensor:
        """U(0, 1) of shape (rows, *shape) for dropout layer ``layer``: a pure function of (seed, step, layer, row)."""
        generator = torch.Generator(device).manual_seed(stream(Stream.DROPOUT, *seed_parts(self.seed), self.step,
                                                               layer))
        u = torch.rand((self.batch_size, *shape), generator=generator, device=device)
        return u[self.rows]


class SeededDropout(nn.Dropout):
    """``nn.Dropout`` that takes its masks from a :class:`DropoutSource` while one is attached (in training)."""

    source: DropoutSource | None = None
    layer = 0

    def forward(self, x: Tensor) -> Tensor:
        if self.source is None or not self.training or self.p == 0:
            return super().forward(x)
        keep = self.source.uniform(x.shape[1:], self.layer, x.device) >= self.p
        return x * keep.to(x.dtype) * (1 / (1 - self.p))


def attach_dropout_source(model: nn.Module, source: DropoutSource | None) -> int:
    """Point every :class:`SeededDropout` of ``model`` at ``source`` (None: detach); returns how many there are."""
    layers = [m for m in model.modules() if isinstance(m, SeededDropout)]
    for index, layer in enumerate(layers):
        layer.source, layer.layer = source, index
    return len(layers)


@contextlib.contextmanager
def dropout_from(model: nn.Module, source: DropoutSource) -> Iterator[None]:
    """Draw ``model``'s dropout masks from ``source`` inside the block (one training step), plainly outside it."""
    attach_dropout_source(model, source)
    try:
        yield
    finally:
        attach_dropout_source(model, None)
