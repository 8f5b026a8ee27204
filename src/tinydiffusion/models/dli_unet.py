"""Seed 000 (NVIDIA DLI, notebook 2): a small U-Net with BatchNorm and a fully connected time embedding.

Down path: a conv stem, then ``DownBlock`` = (conv3x3-BN-ReLU)×2 + max-pool per level; the lowest
feature map is flattened and passed through a dense bottleneck; the up path un-flattens it and
climbs with ``UpBlock`` = ConvTranspose(stride 2)-BN-ReLU + conv-BN-ReLU on cat(x, skip). The time
t/T goes through one small MLP per up block (``EmbedBlock``) and is *added* to that block's input.
With the seed's ``down_channels=(16, 32, 64)`` on 1×16×16 images it has 240,385 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import UserError
from .base import check_condition, check_image_shape


@dataclass
class DLIUNetConfig:
    """Settings of :class:`DLIUNet` (defaults: the seed's Fashion-MNIST 16×16 model)."""

    channels: int = 1  #: image channels
    image_size: int = 16  #: height = width; must be divisible by 2^(len(down_channels) − 1)
    down_channels: tuple[int, ...] = (16, 32, 64)  #: feature channels per level, stem first
    num_timesteps: int = 150  #: T; the network sees t / T

    def __post_init__(self) -> None:
        self.down_channels = tuple(int(c) for c in self.down_channels)
        if len(self.down_channels) < 2 or min(self.down_channels) < 1:
            raise UserError(f"dli-unet: down_channels needs at least two positive widths, got {self.down_channels}")
        if self.channels < 1 or self.num_timesteps < 1:
            raise UserError("dli-unet: channels and num_timesteps must be at least 1")
        factor = 2 ** (len(self.down_channels) - 1)
        if self.image_size < factor or self.image_size % factor:
            raise UserError(f"dli-unet: image_size {self.image_size} must be a multiple of {factor} "
                            f"({len(self.down_channels) - 1} max-pools); resize the images or change down_channels")


def _conv_bn_relu(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.BatchNorm2d(out_ch), nn.ReLU()]


class EmbedBlock(nn.Module):
    """Seed 000's time embedding: Linear-ReLU-Linear from a scalar to ``emb_dim`` channels, shaped (B, C, 1, 1)."""

    def __init__(self, input_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.model = nn.Sequential(nn.Linear(input_dim, emb_dim), nn.ReLU(), nn.Linear(emb_dim, emb_dim),
                                   nn.Unflatten(1, (emb_dim, 1, 1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.reshape(-1, self.input_dim))


class DownBlock(nn.Module):
    """(conv3x3-BN-ReLU)×2 then 2×2 max-pool: halves the size."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.model = nn.Sequential(*_conv_bn_relu(in_ch, out_ch), *_conv_bn_relu(out_ch, out_ch), nn.MaxPool2d(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class UpBlock(nn.Module):
    """cat(x, skip), ConvTranspose3x3 stride 2 (doubles the size)-BN-ReLU, conv3x3-BN-ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.ConvTranspose2d(2 * in_ch, out_ch, 3, 2, 1, 1), nn.BatchNorm2d(out_ch),
                                   nn.ReLU(), *_conv_bn_relu(out_ch, out_ch))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.model(torch.cat((x, skip), 1))


class DLIUNet(nn.Module):
    """Seed 000's ``UNet`` (unconditional, ε-prediction in the seed)."""

    def __init__(self, config: DLIUNetConfig) -> None:
        super().__init__()
        self.config = config
        down = config.down_channels
        up = down[::-1]
        latent = config.image_size // 2 ** (len(down) - 1)
        flat = down[-1] * latent**2
        self.down0 = nn.Sequential(*_conv_bn_relu(config.channels, down[0]))
        self.downs = nn.ModuleList(DownBlock(a, b) for a, b in zip(down[:-1], down[1:]))
        self.to_vec = nn.Sequential(nn.Flatten(), nn.ReLU())
        # The seed's bottleneck width is down_channels[1].
        self.dense_emb = nn.Sequential(nn.Linear(flat, down[1]), nn.ReLU(), nn.Linear(down[1], down[1]), nn.ReLU(),
                                       nn.Linear(down[1], flat), nn.ReLU())
        self.up0 = nn.Sequential(nn.Unflatten(1, (up[0], latent, latent)), *_conv_bn_relu(up[0], up[0]))
        self.tembs = nn.ModuleList(EmbedBlock(1, c) for c in up[:-1])
        self.ups = nn.ModuleList(UpBlock(a, b) for a, b in zip(up[:-1], up[1:]))
        self.out = nn.Sequential(*_conv_bn_relu(up[-1], up[-1]), nn.Conv2d(up[-1], config.channels, 3, 1, 1))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """ε̂(x_t, t). The seed's training loop passed t/T and its network divided by T again (t/T²),
        while its sampler passed t; here the network divides once, t/T ∈ [0, 1), in both.
        """
        check_condition("dli-unet", cond, num_classes=None, context_dim=None, batch=x.shape[0])
        check_image_shape("dli-unet", x, self.config.channels, self.config.image_size)
        t = t.float() / self.config.num_timesteps
        h = self.down0(x)
        skips = []
        for down in self.downs:
            h = down(h)
            skips.append(h)
        h = self.up0(self.dense_emb(self.to_vec(h)))
        for temb, up in zip(self.tembs, self.ups):
            h = up(h + temb(t), skips.pop())
        return self.out(h)
