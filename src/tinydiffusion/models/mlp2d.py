"""The two networks for 2-D point clouds (x of shape (B, dim)).

* ``mlp-2d``: seed 004's ``MLPDiffusion``: Linear-ReLU ×3 and a last Linear, with one learned
  ``nn.Embedding(T, hidden)`` row added after each of the first three Linear layers (72,066 parameters
  for dim=2, T=100, hidden=128).
* ``mlp-2d-sin``: a stronger toy MLP in the style of the best small 2-D diffusion demos: every
  coordinate and t go through a sinusoidal encoding (coordinates scaled up so that fine structure is
  resolvable, Tancik et al. 2020), the encodings are concatenated, and residual Linear-GELU blocks map
  them to the prediction. Optional class conditioning through a learned embedding with a null row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from .base import check_condition, class_rows, round_timesteps, sinusoidal_embedding


def _check_points(name: str, x: Tensor, dim: int) -> None:
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} takes points of shape (B, {dim}), got input of shape {tuple(x.shape)}")


@dataclass
class MLP2DConfig:
    """Settings of :class:`MLP2D` (defaults: the seed's S-curve model)."""

    dim: int = 2  #: point dimension
    num_timesteps: int = 100  #: T, the rows of each step-embedding table
    hidden: int = 128  #: width of the hidden layers (the seed's num_units)

    def __post_init__(self) -> None:
        if min(self.dim, self.num_timesteps, self.hidden) < 1:
            raise UserError("mlp-2d: dim, num_timesteps and hidden must be at least 1")


class MLP2D(nn.Module):
    """Seed 004's ``MLPDiffusion``: h ← ReLU(W_k h + b_k + E_k[t]) for k = 1..3, then a last Linear."""

    def __init__(self, config: MLP2DConfig) -> None:
        super().__init__()
        self.config = config
        d, n = config.dim, config.hidden
        # The seed's layout (ReLUs inside the list), so that its state_dict keys load here unchanged.
        self.linears = nn.ModuleList([nn.Linear(d, n), nn.ReLU(), nn.Linear(n, n), nn.ReLU(),
                                      nn.Linear(n, n), nn.ReLU(), nn.Linear(n, d)])
        self.step_embeddings = nn.ModuleList(nn.Embedding(config.num_timesteps, n) for _ in range(3))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """ε̂(x_t, t); float t is rounded to the nearest table row."""
        check_condition("mlp-2d", cond, num_classes=None, context_dim=None, batch=x.shape[0])
        _check_points("mlp-2d", x, self.config.dim)
        t = round_timesteps(t, self.config.num_timesteps)
        for k, embedding in enumerate(self.step_embeddings):
            x = self.linears[2 * k + 1](self.linears[2 * k](x) + embedding(t))
        return self.linears[-1](x)


@dataclass
class SinMLP2DConfig:
    """Settings of :class:`SinMLP2D`."""

    dim: int = 2  #: point dimension
    hidden: int = 128  #: width of the residual blocks
    blocks: int = 3  #: number of residual Linear-GELU blocks
    embedding_dim: int = 128  #: width of the sinusoidal encoding of each coordinate, of t and of the class
    input_scale: float = 25.0  #: coordinates are multiplied by this before their encoding
    num_classes: int = 0  #: class conditioning (0: none); the embedding has one more row, the null class

    def __post_init__(self) -> None:
        if min(self.dim, self.hidden, self.embedding_dim) < 1 or self.blocks < 0 or self.num_classes < 0:
            raise UserError("mlp-2d-sin: dim, hidden and embedding_dim must be at least 1, blocks and num_classes "
                            "at least 0")
        if self.embedding_dim % 2:
            raise UserError(f"mlp-2d-sin: embedding_dim must be even (cos and sin halves), got {self.embedding_dim}")


class ResidualLinear(nn.Module):
    """h + GELU(W h + b)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, h: Tensor) -> Tensor:
        return h + F.gelu(self.linear(h))


class SinMLP2D(nn.Module):
    """ε̂(x_t, t[, y]) = W_out · blocks(GELU(W_in · [enc(s·x_1), …, enc(s·x_dim), enc(t), E[y]]))."""

    def __init__(self, config: SinMLP2DConfig) -> None:
        super().__init__()
        self.config = config
        e = config.embedding_dim
        self.class_embedding = nn.Embedding(config.num_classes + 1, e) if config.num_classes else None
        inputs = e * (config.dim + 1 + (1 if config.num_classes else 0))
        self.linear_in = nn.Linear(inputs, config.hidden)
        self.blocks = nn.Sequential(*(ResidualLinear(config.hidden) for _ in range(config.blocks)))
        self.linear_out = nn.Linear(config.hidden, config.dim)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """The prediction for points ``x`` (B, dim) at timesteps ``t``; ``cond`` class ids or None (null)."""
        cfg = self.config
        check_condition("mlp-2d-sin", cond, num_classes=cfg.num_classes, context_dim=None, batch=x.shape[0])
        _check_points("mlp-2d-sin", x, cfg.dim)
        e = cfg.embedding_dim
        parts = [sinusoidal_embedding(x[:, i] * cfg.input_scale, e) for i in range(cfg.dim)]
        parts.append(sinusoidal_embedding(t, e))
        if self.class_embedding is not None:
            parts.append(self.class_embedding(class_rows(cond, cfg.num_classes, x.shape[0], x.device)))
        h = F.gelu(self.linear_in(torch.cat(parts, -1)))
        return self.linear_out(self.blocks(h))
