"""Training batches as a pure function of (seed, step).

Sample order: global positions 0, 1, 2, … walk through the endless concatenation of per-epoch
permutations, the permutation of epoch e drawn by ``torch.randperm`` from a generator seeded with
``stream(ORDER, seed, e)``. The batch of step s holds positions [s·B, (s+1)·B); with ``world_size``
processes, rank r takes the contiguous slice [s·B + r·b, s·B + (r+1)·b) with b = B / world_size.
Hence ``--resume`` at step s needs no loader state, and N processes together see exactly the
batches one process sees. A horizontal flip (``hflip``) is decided per position by
``SeededNoise(position).rand(stream(FLIP, seed)) < ½``, also independent of batch size and rank.

Two paths yield identical batches:

* device-resident (small data, the usual case; see the README's 'Data'): the uint8 array lives on the device;
  each step slices the cached permutation, gathers, flips and converts there: no host round trip,
  no DataLoader;
* streaming (data larger than ``resident`` bytes): a ``DataLoader`` whose workers gather uint8
  batches for whole steps in the same order, into pinned memory, copied with ``non_blocking``; the
  flip and the conversion then run on the device with the same code.

Images become float32 (b, C, H, W) in the value range, x/127.5 − 1 ∈ [−1, 1] by default or x/255 ∈
[0, 1] (seed 001; see :mod:`tinydiffusion.value_range`); points stay float32 (b, D).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from ..rng import SeededNoise, Stream, seed_parts, stream
from .dataset import Dataset
from ..value_range import DEFAULT_RANGE, pixels_to_range

DEFAULT_RESIDENT_BYTES = 1 << 30


@dataclass
class Batch:
    """One step's data on the device."""

    x: Tensor  #: float32 images (b, C, H, W) in the value range ([−1, 1] by default), or points (b, D)
    cond: Tensor | None  #: None, int64 class ids (b,), or float32 contexts (b, K)
    index: Tensor  #: int64 (b,) global sample positions (keys for per-sample random numbers)


def split_batch(batch_size: int, world_size: int = 1, grad_accum: int = 1) -> int:
    """The size of one micro-batch of one process, B / (world_size · grad_accum), or one clear error."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch size must be a positive whole number, got {batch_size!r}")
    if grad_accum < 1:
        raise UserError(f"optim.grad_accum must be at least 1, got {grad_accum}")
    parts = world_size * grad_accum
    if batch_size % parts:
        accum = f" × {grad_accum} accumulation steps (optim.grad_accum)" if grad_accum > 1 else ""
        raise UserError(f"batch size {batch_size} does not split evenly over {world_size} process(es){accum}; "
                        f"use a multiple of {parts}")
    return batch_size // parts


class SampleOrder:
    """Dataset indices of global positions: the concatenation of per-epoch seeded permutations."""

    def __init__(self, n: int, seed: int, device: torch.device | str = "cpu"):
        self.n, self.seed, self.device = n, seed, torch.device(device)
        self._cache: dict[int, Tensor] = {}

    def permutation(self, epoch: int) -> Tensor:
        """The order of epoch ``epoch`` (int64 (n,) on the device); the two latest epochs are cached."""
        perm = self._cache.get(epoch)
        if perm is None:
            generator = torch.Generator().manual_seed(stream(Stream.ORDER, *seed_parts(self.seed), epoch))
            perm = torch.randperm(self.n, generator=generator).to(self.device)
            self._cache = {e: p for e, p in self._cache.items() if e == epoch - 1}
            self._cache[epoch] = perm
        return perm

    def indices(self, start: int, count: int) -> Tensor:
        """Dataset indices of positions start … start+count−1 (int64 (count,) on the device)."""
        parts, position, end = [], start, start + count
        while position < end:
            epoch, offset = divmod(position, self.n)
            take = min(self.n - offset, end - position)
            parts.append(self.permutation(epoch)[offset:offset + take])
            position += take
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def flip_mask(positions: Tensor, seed: int) -> Tensor:
    """Bool (b,): whether the sample at each global position is mirrored left–right (probability ½)."""
    return SeededNoise(positions).rand((), stream(Stream.FLIP, *seed_parts(seed)), dtype=torch.float64) < 0.5


def _finish(x: Tensor, positions: Tensor, seed: int, hflip: bool, value_range: tuple[float, float]) -> Tensor:
    """uint8 (b, C, H, W) → flipped where drawn → float32 in ``value_range``; points pass through."""
    if x.dtype != torch.uint8:
        return x
    if hflip:
        x = torch.where(flip_mask(positions, seed)[:, None, None, None], x.flip(3), x)
    return pixels_to_range(x.to(torch.float32), value_range)


def _host_arrays(dataset: Dataset, condition: str) -> tuple[Tensor, Tensor | None]:
    """The samples (uint8 (N, C, H, W) or float32 (N, D)) and conditions as CPU tensors."""
    if dataset.images is not None:
        data = torch.from_numpy(np.ascontiguousarray(dataset.images)).permute(0, 3, 1, 2).contiguous()
    else:
        data = torch.from_numpy(np.ascontiguousarray(dataset.points))
    cond = dataset.condition_values(condition)
    return data, None if cond is None else torch.from_numpy(np.ascontiguousarray(cond))


def make_batches(dataset: Dataset, batch_size: int, *, device: torch.device | str, seed: int = 0,
                 condition: str = "none", hflip: bool = False, rank: int = 0, world_size: int = 1,
                 start_step: int = 0, resident: int | None = None, workers: int | None = None,
                 value_range: tuple[float, float] = DEFAULT_RANGE) -> Iterator[Batch]:
    """The endless stream of this rank's batches from step ``start_step`` on (see the module docstring).

    ``batch_size`` is the global batch B; this rank gets B / world_size samples per step.
    ``condition``: "none", "class" (labels, or the argmax of one-hot contexts) or "context" (contexts,
    or the one-hot vectors of the labels). ``resident``: the largest data size in bytes kept on the
    device (default 1 GiB, or a quarter of the free memory of a CUDA device); larger data streams
    through a DataLoader with ``workers`` processes (default min(4, CPU count)). ``value_range`` is
    what pixel values 0..255 map to: (−1, 1) or seed 001's (0, 1).
    """
    device = torch.device(device)
    if world_size < 1 or not 0 <= rank < world_size:
        raise UserError(f"rank {rank} is not in 0..world_size-1 (world_size {world_size})")
    local_batch = split_batch(batch_size, world_size)
    if hflip and dataset.kind != "image":
        raise UserError("hflip mirrors images; it does not apply to the 2-D point set " + repr(dataset.name))
    if start_step < 0:
        raise UserError(f"start step must be 0 or more, got {start_step}")
    data, cond = _host_arrays(dataset, condition)
    if resident is None:
        resident = DEFAULT_RESIDENT_BYTES
        if device.type == "cuda":
            resident = torch.cuda.mem_get_info(device)[0] // 4
    nbytes = data.numel() * data.element_size() + (0 if cond is None else cond.numel() * cond.element_size())
    plan = _Plan(n=len(dataset), seed=seed, global_batch=batch_size, local_batch=local_batch,
                 rank=rank)
    if nbytes <= resident:
        return _resident(plan, data, cond, device, hflip, start_step, value_range)
    return _streaming(plan, data, cond, device, hflip, start_step,
                      min(4, os.cpu_count() or 1) if workers is None else workers, value_range)


@dataclass(frozen=True)
class _Plan:
    """Which positions a rank reads at each step."""

    n: int
    seed: int
    global_batch: int
    local_batch: int
    rank: int

    def start(self, step: int) -> int:
        """The first global position this rank reads at ``step``."""
        return step * self.global_batch + self.rank * self.local_batch


def _resident(plan: _Plan, data: Tensor, cond: Tensor | None, device: torch.device, hflip: bool,
              start_step: int, value_range: tuple[float, float]) -> Iterator[Batch]:
    """Batches gathered on the device from a device copy of the whole dataset."""
    data = data.to(device)
    cond = None if cond is None else cond.to(device)
    order = SampleOrder(plan.n, plan.seed, device)
    offsets = torch.arange(plan.local_batch, dtype=torch.int64, device=device)
    for step in itertools.count(start_step):
        start = plan.start(step)
        index = order.indices(start, plan.local_batch)
        positions = offsets + start
        yield Batch(x=_finish(data[index], positions, plan.seed, hflip, value_range),
                    cond=None if cond is None else cond[index], index=positions)


class _StepSource(torch.utils.data.Dataset):
    """Map-style dataset whose item ``step`` is that step's uint8 batch (and conditions), in CPU memory."""

    def __init__(self, plan: _Plan, data: Tensor, cond: Tensor | None):
        self.plan, self.data, self.cond = plan, data, cond
        self.order = SampleOrder(plan.n, plan.seed)

    def __getitem__(self, step: int) -> tuple[Tensor, Tensor | None]:
        index = self.order.indices(self.plan.start(step), self.plan.local_batch)
        return self.data[index], None if self.cond is None else self.cond[index]


class _Steps(torch.utils.data.Sampler):
    """The step numbers start, start+1, … without end."""

    def __init__(self, start: int):
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return itertools.count(self.start)


def _streaming(plan: _Plan, data: Tensor, cond: Tensor | None, device: torch.device, hflip: bool,
               start_step: int, workers: int, value_range: tuple[float, float]) -> Iterator[Batch]:
    """Batches gathered by DataLoader workers, pinned, copied to the device and finished there."""
    loader = torch.utils.data.DataLoader(
        _StepSource(plan, data, cond), batch_size=None, sampler=_Steps(start_step), num_workers=workers,
        pin_memory=device.type == "cuda", prefetch_factor=4 if workers else None,
        persistent_workers=workers > 0)
    offsets = torch.arange(plan.local_batch, dtype=torch.int64, device=device)
    for step, (x, c) in zip(itertools.count(start_step), loader):
        positions = offsets + plan.start(step)
        x = x.to(device, non_blocking=True)
        c = None if c is None else c.to(device, non_blocking=True)
        yield Batch(x=_finish(x, positions, plan.seed, hflip, value_range), cond=c, index=positions)
