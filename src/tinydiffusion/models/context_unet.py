"""Seed 002 (DeepLearning.AI, "How Diffusion Models Work"): ``ContextUnet`` with its course blocks.

Two down levels of residual conv blocks, a global-average-pooled bottleneck vector blown back up by a
transposed convolution, two up levels, and an output head fed with cat(up path, stem). Time and
context each go through a small MLP (``EmbedFC``) per up level and act as ``cemb · h + temb``
(a per-channel scale from the context, a shift from the time). With ``channels=3, n_feat=64,
context_dim=5, image_size=16`` it has 1,481,027 parameters.

Conditions: context vectors (B, context_dim), the seed's way; or, with ``num_classes`` set, class
ids, turned into one-hot vectors (the null class −1 into the zero vector), so one network serves
both. No condition means the zero context, as in the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from .base import check_condition, check_image_shape, class_index

BLOCK_NORMS = ("batch", "group")


@dataclass
class ContextUNetConfig:
    """Settings of :class:`ContextUNet` (defaults: the seed's 16×16 sprite model)."""

    channels: int = 3  #: image channels
    image_size: int = 16  #: height = width; must be divisible by 4
    n_feat: int = 64  #: base feature width (the seed's n_feat); a multiple of 8 (GroupNorm(8))
    context_dim: int = 5  #: length of the context vectors (the seed's n_cfeat); 0 when using classes
    num_classes: int = 0  #: class-id conditioning through one-hot vectors of this length (0: off)
    num_timesteps: int = 500  #: T; the network sees (t + t_offset) / T
    t_offset: int = 0  #: 1 for the seed's t = 1..T counting (schedule convention "one-based")
    #: Norm inside the residual conv blocks: "batch" (the seed's) or "group" (GroupNorm(8), batch-independent).
    block_norm: str = "batch"

    def __post_init__(self) -> None:
        if self.image_size < 4 or self.image_size % 4:
            raise UserError(f"context-unet: image_size must be a multiple of 4 (two 2x2 max-pools), "
                            f"got {self.image_size}")
        if self.n_feat < 8 or self.n_feat % 8:
            raise UserError(f"context-unet: n_feat must be a positive multiple of 8 (GroupNorm(8)), got {self.n_feat}")
        if self.block_norm not in BLOCK_NORMS:
            raise UserError(f"context-unet: block_norm must be one of {', '.join(BLOCK_NORMS)}, "
                            f"got {self.block_norm!r}")
        if self.num_classes and self.context_dim:
            raise UserError("context-unet takes either class ids (num_classes) or context vectors (context_dim), "
                            "not both; set context_dim=0 to condition on classes")
        if self.num_classes < 0 or self.context_dim < 0 or not (self.num_classes or self.context_dim):
            raise UserError("context-unet needs num_classes > 0 or context_dim > 0 (use unet for unconditional models)")
        if self.channels < 1 or self.num_timesteps < 1:
            raise UserError("context-unet: channels and num_timesteps must be at least 1")

    @property
    def cond_dim(self) -> int:
        """Length of the vector the context embeddings read: one-hot classes or contexts."""
        return self.num_classes or self.context_dim


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.GroupNorm(8, channels)


class ResidualConvBlock(nn.Module):
    """(conv3x3-norm-GELU)×2; with ``is_res`` the input is added back and the sum divided by 1.414 (≈√2)."""

    def __init__(self, in_ch: int, out_ch: int, is_res: bool = False, norm: str = "batch") -> None:
        super().__init__()
        self.is_res = is_res
        self.conv1 = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1), _norm(norm, out_ch), nn.GELU())
        self.conv2 = nn.Sequential(nn.Conv2d(out_ch, out_ch, 3, 1, 1), _norm(norm, out_ch), nn.GELU())
        # The seed built a fresh, randomly initialised 1x1 conv inside every forward call when the
        # channel counts differ (never trained, different each call); here it is registered once.
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if is_res and in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(self.conv1(x))
        if not self.is_res:
            return h
        return (self.shortcut(x) + h) / 1.414


class UnetDown(nn.Module):
    """Two residual conv blocks, then a 2×2 max-pool."""

    def __init__(self, in_ch: int, out_ch: int, norm: str) -> None:
        super().__init__()
        self.model = nn.Sequential(ResidualConvBlock(in_ch, out_ch, norm=norm),
                                   ResidualConvBlock(out_ch, out_ch, norm=norm), nn.MaxPool2d(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class UnetUp(nn.Module):
    """cat(x, skip), ConvTranspose2d(2, stride 2) doubling the size, two residual conv blocks."""

    def __init__(self, in_ch: int, out_ch: int, norm: str) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 2, 2),
                                   ResidualConvBlock(out_ch, out_ch, norm=norm),
                                   ResidualConvBlock(out_ch, out_ch, norm=norm))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.model(torch.cat((x, skip), 1))


class EmbedFC(nn.Module):
    """Linear-GELU-Linear from ``input_dim`` to ``emb_dim``, shaped (B, emb_dim, 1, 1)."""

    def __init__(self, input_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.model = nn.Sequential(nn.Linear(input_dim, emb_dim), nn.GELU(), nn.Linear(emb_dim, emb_dim),
                                   nn.Unflatten(1, (emb_dim, 1, 1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.reshape(-1, self.input_dim))


class ContextUNet(nn.Module):
    """Seed 002's ``ContextUnet``."""

    def __init__(self, config: ContextUNetConfig) -> None:
        super().__init__()
        self.config = config
        n, h, norm = config.n_feat, config.image_size, config.block_norm
        self.init_conv = ResidualConvBlock(config.channels, n, is_res=True, norm=norm)
        self.down1 = UnetDown(n, n, norm)
        self.down2 = UnetDown(n, 2 * n, norm)
        self.to_vec = nn.Sequential(nn.AvgPool2d(h // 4), nn.GELU())
        self.timeembed1 = EmbedFC(1, 2 * n)
        self.timeembed2 = EmbedFC(1, n)
        self.contextembed1 = EmbedFC(config.cond_dim, 2 * n)
        self.contextembed2 = EmbedFC(config.cond_dim, n)
        self.up0 = nn.Sequential(nn.ConvTranspose2d(2 * n, 2 * n, h // 4, h // 4), nn.GroupNorm(8, 2 * n), nn.ReLU())
        self.up1 = UnetUp(4 * n, n, norm)
        self.up2 = UnetUp(2 * n, n, norm)
        self.out = nn.Sequential(nn.Conv2d(2 * n, n, 3, 1, 1), nn.GroupNorm(8, n), nn.ReLU(),
                                 nn.Conv2d(n, config.channels, 3, 1, 1))

    def _context(self, cond: Tensor | None, x: Tensor) -> Tensor:
        """The vector the context embeddings read: the context, a one-hot class, or zeros (null)."""
        if cond is None:
            return x.new_zeros(x.shape[0], self.config.cond_dim)
        if self.config.num_classes:
            k = self.config.num_classes
            return F.one_hot(class_index(cond, k), k + 1)[:, :k].to(x.dtype)
        return cond.to(x.dtype)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """ε̂(x_t, t, c) with t entering as (t + t_offset)/T."""
        cfg = self.config
        check_condition("context-unet", cond, num_classes=cfg.num_classes, context_dim=cfg.context_dim,
                        batch=x.shape[0])
        check_image_shape("context-unet", x, cfg.channels, cfg.image_size)
        x = self.init_conv(x)
        down1 = self.down1(x)
        down2 = self.down2(down1)
        hidden = self.to_vec(down2)
        c = self._context(cond, x)
        t = (t.float() + cfg.t_offset) / cfg.num_timesteps
        up1 = self.up0(hidden)
        up2 = self.up1(self.contextembed1(c) * up1 + self.timeembed1(t), down2)
        up3 = self.up2(self.contextembed2(c) * up2 + self.timeembed2(t), down1)
        return self.out(torch.cat((up3, x), 1))
