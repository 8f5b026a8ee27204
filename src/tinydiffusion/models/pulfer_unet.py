"""Seed 003 (Brian Pulfer's "DDPM from scratch in PyTorch"): ``MyUNet`` for 28×28 images.

Three levels of ``MyBlock`` (LayerNorm over (C, H, W), conv-SiLU-conv-SiLU) at 28, 14 and 7 pixels,
a 3×3 bottleneck, and the mirrored up path with concatenated skips. t indexes a frozen table of
sinusoidal embeddings (built with the seed's own formula), and before every block group a small MLP
(``_make_te``) maps that embedding to a per-channel shift. 606,852 parameters for one channel,
100,000 of them the frozen table.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import UserError
from .base import check_condition, check_image_shape, round_timesteps

#: The hand-written layout (28 → 14 → 7 → 3 and back) fits this size only.
IMAGE_SIZE = 28


@dataclass
class PulferUNetConfig:
    """Settings of :class:`PulferUNet` (defaults: the seed's MNIST model)."""

    channels: int = 1  #: image channels
    image_size: int = IMAGE_SIZE  #: must be 28: the layout is written for 28×28 images
    num_timesteps: int = 1000  #: T, the rows of the embedding table
    time_emb_dim: int = 100  #: width of the sinusoidal embedding (even)

    def __post_init__(self) -> None:
        if self.image_size != IMAGE_SIZE:
            raise UserError(f"pulfer-unet only works on {IMAGE_SIZE}x{IMAGE_SIZE} images (its layout is written "
                            f"for them), got image_size {self.image_size}; use unet for other sizes")
        if self.time_emb_dim < 2 or self.time_emb_dim % 2:
            raise UserError(f"pulfer-unet: time_emb_dim must be a positive even number, got {self.time_emb_dim}")
        if self.channels < 1 or self.num_timesteps < 1:
            raise UserError("pulfer-unet: channels and num_timesteps must be at least 1")


def pulfer_sinusoidal_table(n: int, d: int) -> Tensor:
    """Seed 003's ``sinusoidal_embedding(n, d)``: row t has sin(t·ω_j) at even columns j and cos(t·ω_j)
    at the odd column j+1, with ω_j = 10000^(−2j/d) for even j (so the frequencies fall as 10000^(−4k/d),
    twice as fast as the transformer encoding's; kept as the seed wrote it).
    """
    j = torch.arange(0, d, 2, dtype=torch.float64)
    omega = 10000.0 ** (-2 * j / d)
    args = torch.arange(n, dtype=torch.float64).unsqueeze(1) * omega
    table = torch.empty(n, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(args)
    table[:, 1::2] = torch.cos(args)
    return table.float()


class MyBlock(nn.Module):
    """LayerNorm over (C, H, W) (optional), conv-SiLU-conv-SiLU; keeps the spatial size."""

    def __init__(self, shape: tuple[int, int, int], in_c: int, out_c: int, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        self.ln = nn.LayerNorm(shape)
        if not normalize:
            # The seed builds the LayerNorm even in the one block that skips it; it is kept so that the
            # parameter count (606,852) and the weight layout match the seed, and frozen because no
            # gradient reaches it (an unused trainable parameter also breaks DistributedDataParallel).
            self.ln.requires_grad_(False)
        self.conv1 = nn.Conv2d(in_c, out_c, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, 1, 1)
        self.activation = nn.SiLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.ln(x) if self.normalize else x
        return self.activation(self.conv2(self.activation(self.conv1(out))))


def _make_te(dim_in: int, dim_out: int) -> nn.Sequential:
    """The per-level time MLP: Linear-SiLU-Linear."""
    return nn.Sequential(nn.Linear(dim_in, dim_out), nn.SiLU(), nn.Linear(dim_out, dim_out))


def _blocks(size: int, widths: tuple[int, ...], last_normalize: bool = True) -> nn.Sequential:
    """Three ``MyBlock``s at ``size`` pixels taking widths[0] → widths[1] → widths[2] → widths[3] channels."""
    blocks = [MyBlock((a, size, size), a, b, normalize=last_normalize or i < 2)
              for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
    return nn.Sequential(*blocks)


class PulferUNet(nn.Module):
    """Seed 003's ``MyUNet`` (unconditional ε-prediction)."""

    def __init__(self, config: PulferUNetConfig) -> None:
        super().__init__()
        self.config = config
        c, d = config.channels, config.time_emb_dim
        # A frozen parameter, as in the seed (it counts towards the seed's 606,852 parameters).
        self.time_embed = nn.Embedding.from_pretrained(pulfer_sinusoidal_table(config.num_timesteps, d), freeze=True)

        self.te1 = _make_te(d, c)
        self.b1 = _blocks(28, (c, 10, 10, 10))
        self.down1 = nn.Conv2d(10, 10, 4, 2, 1)
        self.te2 = _make_te(d, 10)
        self.b2 = _blocks(14, (10, 20, 20, 20))
        self.down2 = nn.Conv2d(20, 20, 4, 2, 1)
        self.te3 = _make_te(d, 20)
        self.b3 = _blocks(7, (20, 40, 40, 40))
        self.down3 = nn.Sequential(nn.Conv2d(40, 40, 2, 1), nn.SiLU(), nn.Conv2d(40, 40, 4, 2, 1))

        self.te_mid = _make_te(d, 40)
        self.b_mid = _blocks(3, (40, 20, 20, 40))

        self.up1 = nn.Sequential(nn.ConvTranspose2d(40, 40, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(40, 40, 2, 1))
        self.te4 = _make_te(d, 80)
        self.b4 = _blocks(7, (80, 40, 20, 20))
        self.up2 = nn.ConvTranspose2d(20, 20, 4, 2, 1)
        self.te5 = _make_te(d, 40)
        self.b5 = _blocks(14, (40, 20, 10, 10))
        self.up3 = nn.ConvTranspose2d(10, 10, 4, 2, 1)
        self.te_out = _make_te(d, 20)
        self.b_out = _blocks(28, (20, 10, 10, 10), last_normalize=False)
        self.conv_out = nn.Conv2d(10, c, 3, 1, 1)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """ε̂(x_t, t); float t is rounded to the nearest table row."""
        check_condition("pulfer-unet", cond, num_classes=None, context_dim=None, batch=x.shape[0])
        check_image_shape("pulfer-unet", x, self.config.channels, IMAGE_SIZE)
        emb = self.time_embed(round_timesteps(t, self.config.num_timesteps))

        def shift(te: nn.Module) -> Tensor:
            return te(emb)[:, :, None, None]

        out1 = self.b1(x + shift(self.te1))  # (B, 10, 28, 28)
        out2 = self.b2(self.down1(out1) + shift(self.te2))  # (B, 20, 14, 14)
        out3 = self.b3(self.down2(out2) + shift(self.te3))  # (B, 40, 7, 7)
        out_mid = self.b_mid(self.down3(out3) + shift(self.te_mid))  # (B, 40, 3, 3)
        out4 = self.b4(torch.cat((out3, self.up1(out_mid)), 1) + shift(self.te4))  # (B, 20, 7, 7)
        out5 = self.b5(torch.cat((out2, self.up2(out4)), 1) + shift(self.te5))  # (B, 10, 14, 14)
        out = self.b_out(torch.cat((out1, self.up3(out5)), 1) + shift(self.te_out))  # (B, 10, 28, 28)
        return self.conv_out(out)
