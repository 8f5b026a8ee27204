"""The one model contract, and the small pieces every network shares.

Every network is an ``nn.Module`` with

* ``forward(x, t, cond=None) -> Tensor`` of the same shape as ``x``: ``t`` is a tensor of shape (B,)
  holding integer or float training timesteps (0..T−1); ``cond`` is ``None``, a class-id tensor (B,)
  (``-1`` is the null class) or a context tensor (B, K) (the zero vector is the null context);
* a ``config`` attribute: a dataclass whose ``asdict`` is JSON-able and rebuilds the network
  (``build_model(name, config)``) — it travels in checkpoints;
* no knowledge of β, ᾱ or samplers: it maps (x_t, t, c) to a prediction, nothing else.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..conditioning import NULL_CLASS


def check_condition(name: str, cond: Tensor | None, *, num_classes: int | None, context_dim: int | None,
                    batch: int) -> None:
    """Raise a clear ``ValueError`` when ``cond`` does not fit the network (never ignore it silently).

    diffusers once dropped ``class_labels`` on the floor when a model had no class embedding
    (issue #5330); users trained "conditional" models for days that were not.
    """
    if cond is None:
        return
    if not num_classes and not context_dim:
        raise ValueError(f"{name} was built without conditioning, but a condition was passed; "
                         "set num_classes or context_dim when building it")
    if cond.shape[0] != batch:
        raise ValueError(f"{name}: condition batch {cond.shape[0]} does not match image batch {batch}")
    if cond.dtype.is_floating_point:
        if not context_dim:
            raise ValueError(f"{name} takes class ids (int64), not context vectors")
        if cond.dim() != 2 or cond.shape[1] != context_dim:
            raise ValueError(f"{name} takes context vectors of length {context_dim}, got shape {tuple(cond.shape)}")
    else:
        if not num_classes:
            raise ValueError(f"{name} takes context vectors (float), not class ids")
        if cond.dim() != 1:
            raise ValueError(f"{name} takes class ids of shape (B,), got {tuple(cond.shape)}")


def class_index(cond: Tensor, num_classes: int) -> Tensor:
    """Map class ids to embedding rows, the null class (−1) to the extra last row ``num_classes``."""
    return torch.where(cond == NULL_CLASS, torch.full_like(cond, num_classes), cond)


def class_rows(cond: Tensor | None, num_classes: int, batch: int, device: torch.device) -> Tensor:
    """Embedding rows for class ids (see :func:`class_index`); no condition means the null class for all."""
    if cond is None:
        return torch.full((batch,), num_classes, dtype=torch.long, device=device)
    return class_index(cond, num_classes)


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0, flip_sin_to_cos: bool = True) -> Tensor:
    """The transformer position encoding of the timestep (Vaswani et al. 2017; DDPM §B):
    [cos(t·ω_k), sin(t·ω_k)] with ω_k = max_period^(−k/(dim/2)), k = 0..dim/2−1, t may be fractional.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float().unsqueeze(-1) * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)] if flip_sin_to_cos else [torch.sin(args), torch.cos(args)], -1)
    if dim % 2:
        emb = nn.functional.pad(emb, (0, 1))
    return emb


def round_timesteps(t: Tensor, num_timesteps: int) -> Tensor:
    """Integer timesteps for networks with a lookup table per step (float t rounds to the nearest)."""
    if t.dtype.is_floating_point:
        t = t.round()
    return t.long().clamp(0, num_timesteps - 1)


def check_image_shape(name: str, x: Tensor, channels: int, image_size: int | None = None) -> None:
    """Raise a clear ``ValueError`` when images do not have the channels (and, for networks with a fixed
    layout, the size) that the network was built for."""
    size_ok = image_size is None or (x.shape[-2] == image_size and x.shape[-1] == image_size)
    if x.dim() != 4 or x.shape[1] != channels or not size_ok:
        size = "" if image_size is None else f" {image_size}x{image_size}"
        raise ValueError(f"{name} was built for {channels}-channel{size} images (B, C, H, W), "
                         f"got input of shape {tuple(x.shape)}")
