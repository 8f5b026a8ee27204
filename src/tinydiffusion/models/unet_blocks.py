"""The pieces of the modern U-Net: ResNet blocks, resampling, and the down / middle / up levels.

The skip structure is DDPM's (Ho et al. 2020) and ADM's (Dhariwal & Nichol 2021): every output of
the down path (the stem, each ResNet block, each downsampler) is kept, and the up path, with one
more ResNet block per level than the down path, concatenates exactly one of them to each block's
input, last in first out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import SelfAttention
from .dropout import SeededDropout


class ResnetBlock(nn.Module):
    """h = conv(SiLU(GroupNorm(x))); h = conv(dropout(SiLU(cond(GroupNorm, h, e)))); return shortcut(x) + h.

    The time embedding e enters after the first convolution, through SiLU and a Linear map, either
    additively, GroupNorm(h + W e) (DDPM), or as scale and shift, GroupNorm(h)·(1 + s) + b with
    [s, b] = W e (Nichol & Dhariwal 2021, "improved DDPM"; ADM's ``use_scale_shift_norm``).
    The shortcut is a 1×1 convolution when the channel count changes, the identity otherwise.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int, dropout: float, scale_shift: bool) -> None:
        super().__init__()
        self.scale_shift = scale_shift
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_proj = nn.Linear(emb_dim, 2 * out_ch if scale_shift else out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.dropout = SeededDropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        e = self.time_proj(F.silu(emb))[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.shortcut(x) + h


class Downsample(nn.Module):
    """A 3×3 convolution with stride 2: H → ⌈H/2⌉."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling to ``size`` (the matching skip's size: 2H, or 2H − 1 after an odd
    level such as 7 → 4 → 7), then a 3×3 convolution. No padding, no cropping."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor, size: torch.Size) -> Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class DownLevel(nn.Module):
    """``num_blocks`` ResNet blocks (each optionally followed by self-attention), then an optional downsampler."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, emb_dim: int, *, groups: int, dropout: float,
                 scale_shift: bool, attention_head_dim: int | None, downsample: bool) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock(in_ch if i == 0 else out_ch, out_ch, emb_dim, groups, dropout,
                                                 scale_shift) for i in range(num_blocks))
        self.attentions = None if attention_head_dim is None else nn.ModuleList(
            SelfAttention(out_ch, attention_head_dim, groups) for _ in range(num_blocks))
        self.downsample = Downsample(out_ch) if downsample else None

    def forward(self, h: Tensor, emb: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The level's output and the skips it leaves for the up path, in order."""
        skips = []
        for i, resnet in enumerate(self.resnets):
            h = resnet(h, emb)
            if self.attentions is not None:
                h = self.attentions[i](h)
            skips.append(h)
        if self.downsample is not None:
            h = self.downsample(h)
            skips.append(h)
        return h, skips


class MidBlock(nn.Module):
    """ResNet block, self-attention (optional), ResNet block, at the lowest resolution."""

    def __init__(self, channels: int, emb_dim: int, *, groups: int, dropout: float, scale_shift: bool,
                 attention_head_dim: int | None) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock(channels, channels, emb_dim, groups, dropout, scale_shift)
                                     for _ in range(2))
        self.attention = (nn.Identity() if attention_head_dim is None
                          else SelfAttention(channels, attention_head_dim, groups))

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        return self.resnets[1](self.attention(self.resnets[0](h, emb)), emb)


class UpLevel(nn.Module):
    """ResNet blocks on cat(h, skip) (each optionally followed by self-attention), then an optional upsampler.

    ``skip_channels`` lists the channels of the skips the blocks consume, in the order they consume them.
    """

    def __init__(self, in_ch: int, out_ch: int, skip_channels: list[int], emb_dim: int, *, groups: int,
                 dropout: float, scale_shift: bool, attention_head_dim: int | None, upsample: bool) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock((in_ch if i == 0 else out_ch) + skip, out_ch, emb_dim, groups,
                                                 dropout, scale_shift) for i, skip in enumerate(skip_channels))
        self.attentions = None if attention_head_dim is None else nn.ModuleList(
            SelfAttention(out_ch, attention_head_dim, groups) for _ in skip_channels)
        self.upsample = Upsample(out_ch) if upsample else None

    def forward(self, h: Tensor, emb: Tensor, skips: list[Tensor], size: torch.Size | None) -> Tensor:
        """Consume ``skips`` (one per block, in order); upsample the result to ``size`` if this level upsamples."""
        for i, (resnet, skip) in enumerate(zip(self.resnets, skips)):
            h = resnet(torch.cat((h, skip), 1), emb)
            if self.attentions is not None:
                h = self.attentions[i](h)
        if self.upsample is not None:
            h = self.upsample(h, size)
        return h
