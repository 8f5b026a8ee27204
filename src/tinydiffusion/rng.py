"""Per-sample, counter-based randomness.

A sample's noise must not depend on how many other samples share its batch, on the device, or on how
many processes train together (EDM draws per-image seeds for the same reason). ``SeededNoise`` makes
every random number a pure function of ``(seed of the sample, stream, element index)``:

    u = hash(element_index, hash(stream, hash(seed)))          # 32 uniform bits
    z = √(−2 ln u₁) · cos(2π u₂)                               # Box–Muller, one normal per element

The hash is MurmurHash3's 32-bit finaliser ("fmix32"), a bijection with full avalanche, applied in
int64 torch ops so the same numbers come out on CPU and CUDA, inside CUDA graphs and under
``torch.compile``. Tests check mean, variance, normality and the independence of neighbouring
elements, samples and streams.

Streams name what the numbers are for (the initial x_T, sampler step k, training noise at step s, …):
every purpose is a member of :class:`Stream`, and ``stream(...)`` folds it with small integers (a seed,
a step) into one 32-bit stream id.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import torch
from torch import Tensor

MASK32 = 0xFFFFFFFF


class Stream(enum.IntEnum):
    """What random numbers are drawn for: the first part of every stream id, one value per purpose."""

    TIMESTEP = 1  #: training: the timestep t of each sample
    NOISE = 2  #: training: ε of each sample (and seed 001's uniform corruption)
    COND_DROP = 3  #: training: whether a sample's condition is dropped (classifier-free guidance)
    AMOUNT = 4  #: training: seed 001's corruption amount
    DROPOUT = 5  #: training: the dropout masks of the network (see ``models.dropout``)
    INITIAL_NOISE = 101  #: sampling: x_T
    STEP_NOISE = 102  #: sampling: the fresh noise of sampler step k
    FORWARD_STEP = 201  #: pictures: the noise of forward step t in step-by-step trajectories
    FORWARD_JUMP = 202  #: pictures: the noise of the closed-form jump to step t
    ORDER = 0x0D4E  #: data: the per-epoch permutation of the samples
    FLIP = 0xF119  #: data: horizontal flips


def seed_parts(seed: int) -> tuple[int, int]:
    """The low and high 32 bits of a (64-bit) seed, to fold both into a stream id."""
    return seed & MASK32, (seed >> 32) & MASK32


def _mul32(x: Tensor, c: int) -> Tensor:
    """(x · c) mod 2³² for 0 ≤ x < 2³², split into 16-bit halves so no int64 product overflows."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & MASK32


def fmix32(x: Tensor) -> Tensor:
    """MurmurHash3's finaliser on int64 tensors holding 32-bit values."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul32(x, 0xC2B2AE35)
    return x ^ (x >> 16)


def stream(*parts: int) -> int:
    """Fold small non-negative integers (a purpose tag, a step number, …) into one 32-bit stream id."""
    h = torch.tensor(0x9E3779B9, dtype=torch.int64)
    for p in parts:
        h = fmix32(h ^ (int(p) & MASK32))
    return int(h)


def hash_uniform(keys: Tensor, index: Tensor) -> Tensor:
    """Uniform numbers in (0, 1), float64: one per (row key, element index) pair.

    ``keys`` has shape (B,) (already mixed 32-bit keys, one per sample); ``index`` has shape (N,);
    the result has shape (B, N).
    """
    k = keys.unsqueeze(1)
    h = fmix32((fmix32(index.unsqueeze(0) ^ k) + fmix32(k ^ 0x27D4EB2F)) & MASK32)
    return (h.double() + 0.5) * (1.0 / 2**32)


class SeededNoise:
    """Gaussian and uniform numbers keyed by one seed per sample.

    ``SeededNoise([0, 1, 2])`` describes three samples; ``noise.randn((1, 16, 16), stream=5)`` returns a
    (3, 1, 16, 16) tensor whose row i depends only on ``seeds[i]``, the shape and the stream.
    Slicing (``noise[1:]``) keeps each sample's numbers, so chunked or distributed work gives the
    same results as one big batch.
    """

    def __init__(self, seeds: Sequence[int] | Tensor, device: torch.device | str | None = None):
        seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
        if device is not None:
            seeds = seeds.to(device)
        self.seeds = seeds
        lo, hi = seeds & MASK32, (seeds >> 32) & MASK32
        self._keys = fmix32(fmix32(lo) ^ fmix32(hi ^ 0x5BD1E995))

    @classmethod
    def range(cls, start: int, n: int, device: torch.device | str | None = None) -> "SeededNoise":
        """Seeds ``start, start+1, …, start+n−1`` (the CLI's ``--seed S`` for ``-n N`` samples)."""
        return cls(torch.arange(start, start + n, dtype=torch.int64), device)

    def __len__(self) -> int:
        return int(self.seeds.numel())

    def __getitem__(self, index: slice | Tensor) -> "SeededNoise":
        return SeededNoise(self.seeds[index])

    def to(self, device: torch.device | str) -> "SeededNoise":
        """The same seeds, drawing numbers on ``device``."""
        return SeededNoise(self.seeds, device)

    @property
    def device(self) -> torch.device:
        return self.seeds.device

    def _row_keys(self, stream_id: int) -> Tensor:
        return fmix32(self._keys ^ (int(stream_id) & MASK32))

    def rand(self, shape: Sequence[int], stream: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
        """Uniform numbers in the open interval (0, 1), of shape (B, *shape).

        The float64 numbers lie in [2⁻³³, 1 − 2⁻³³]; rounding to a shorter ``dtype`` would carry the top
        ones onto 1.0 (and, in float16, the bottom ones onto 0), so the result is held inside the
        dtype's own open interval [tiny, 1 − ε/2].
        """
        shape = tuple(int(s) for s in shape)
        n = 1
        for s in shape:
            n *= s
        index = torch.arange(n, dtype=torch.int64, device=self.device)
        u = hash_uniform(self._row_keys(stream), index)
        info = torch.finfo(dtype)
        return u.to(dtype).clamp_(info.tiny, 1 - info.eps / 2).reshape((len(self),) + shape)

    def randn(self, shape: Sequence[int], stream: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
        """Standard normal numbers of shape (B, *shape) by Box–Muller on two hashed uniforms."""
        shape = tuple(int(s) for s in shape)
        n = 1
        for s in shape:
            n *= s
        index = torch.arange(n, dtype=torch.int64, device=self.device) * 2
        keys = self._row_keys(stream)
        u1 = hash_uniform(keys, index)
        u2 = hash_uniform(keys, index + 1)
        z = (-2 * u1.log()).sqrt() * torch.cos(2 * torch.pi * u2)
        return z.to(dtype).reshape((len(self),) + shape)

    def randint(self, high: int, stream: int) -> Tensor:
        """One integer in [0, high) per sample (int64, shape (B,))."""
        u = self.rand((), stream, dtype=torch.float64)
        return (u * high).long().clamp_(max=high - 1)


class BatchRandom:
    """The random numbers of one training batch, keyed by (run seed, step, global sample index).

    ``BatchRandom(SeededNoise(global_indices), seed, step)``: each call names a *purpose*
    (timestep, noise, condition dropout, flip, …) so that the numbers for different jobs never
    coincide. Because sample i's numbers depend only on its global index, one process with batch B
    and N processes with B/N each draw exactly the same numbers (what makes DDP match one process,
    and ``--resume`` exact).
    """

    def __init__(self, noise: SeededNoise, *key: int):
        self.noise = noise
        self.key = tuple(int(k) for k in key)

    def __len__(self) -> int:
        return len(self.noise)

    def randn(self, shape: Sequence[int], purpose: int) -> Tensor:
        """Standard normals of shape (B, *shape) for ``purpose``."""
        return self.noise.randn(shape, stream(purpose, *self.key))

    def rand(self, shape: Sequence[int], purpose: int) -> Tensor:
        """Uniform (0, 1) numbers of shape (B, *shape) for ``purpose``."""
        return self.noise.rand(shape, stream(purpose, *self.key))

    def randint(self, high: int, purpose: int) -> Tensor:
        """One integer in [0, high) per sample for ``purpose``."""
        return self.noise.randint(high, stream(purpose, *self.key))
