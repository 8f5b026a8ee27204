"""The modern default network: the DDPM / improved-DDPM / ADM U-Net, sized for small images.

Ho et al. 2020 (DDPM, §B): a U-Net of wide-ResNet blocks with GroupNorm, self-attention at low
resolution, and the sinusoidal timestep embedding passed through an MLP into every block.
Nichol & Dhariwal 2021 (improved DDPM): time conditioning by scale and shift of the normalised
features. Dhariwal & Nichol 2021 (ADM): multi-head attention, class embeddings added to the time
embedding. The skip structure is theirs (see :mod:`.unet_blocks`).

One configuration is the diffusers ``UNet2DModel`` of seed 001, parameter for parameter (1,707,009)::

    UNetConfig(channels=1, image_size=28, block_out_channels=(32, 64, 64), layers_per_block=2,
               attention_levels=(1, 2), mid_attention=True, attention_head_dim=8,
               time_conditioning="add", norm_groups=32, dropout=0.0)

Sizes whose halving goes odd (28 → 14 → 7 → 4) work without padding or cropping: each upsampler
goes to the exact size of the skip it meets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from .base import check_condition, check_image_shape, class_rows, sinusoidal_embedding
from .unet_blocks import DownLevel, MidBlock, UpLevel

TIME_CONDITIONINGS = ("add", "scale_shift")
#: The lowest level must keep at least this many pixels per side.
MIN_LOWEST_SIZE = 2


@dataclass
class UNetConfig:
    """Settings of :class:`UNet`. Every field is JSON-able; ``build_model("unet", asdict(config))`` rebuilds it."""

    channels: int = 1  #: image channels, in and out (1 for grey images, 3 for RGB; any count works)
    #: Height = width of the training images (16, 28, 32, 64, …); it sets how deep the levels can go.
    #: The network itself is fully convolutional and runs at other sizes too.
    image_size: int = 28
    #: Feature channels of each resolution level, highest resolution first; one level per entry, each
    #: level but the last halves the size. The time embedding is 4 × block_out_channels[0] wide.
    block_out_channels: tuple[int, ...] = (64, 128, 128)
    layers_per_block: int = 2  #: ResNet blocks per level on the way down (one more on the way up)
    #: Levels (indices into block_out_channels, negative from the end) whose ResNet blocks are followed by
    #: self-attention. The default, (-1,), is the lowest resolution only.
    attention_levels: tuple[int, ...] = (-1,)
    mid_attention: bool = True  #: self-attention between the two ResNet blocks of the middle block
    attention_head_dim: int = 32  #: channels per attention head (heads = channels // attention_head_dim)
    time_conditioning: str = "scale_shift"  #: "scale_shift" (GroupNorm(h)·(1+s)+b) or "add" (GroupNorm(h+e))
    norm_groups: int = 32  #: GroupNorm groups; every entry of block_out_channels must be divisible by it
    dropout: float = 0.1  #: dropout before the second convolution of every ResNet block
    num_classes: int = 0  #: class conditioning: an embedding of num_classes + 1 rows (the last: null class)
    context_dim: int = 0  #: context-vector conditioning: a Linear map of vectors of this length

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        self.attention_levels = tuple(int(i) for i in self.attention_levels)
        levels = len(self.block_out_channels)
        if levels == 0 or min(self.block_out_channels) < 1:
            raise UserError(f"unet: block_out_channels needs at least one positive width, "
                            f"got {self.block_out_channels}")
        if self.channels < 1:
            raise UserError(f"unet: channels must be at least 1, got {self.channels}")
        if self.layers_per_block < 1:
            raise UserError(f"unet: layers_per_block must be at least 1, got {self.layers_per_block}")
        if self.norm_groups < 1 or any(c % self.norm_groups for c in self.block_out_channels):
            raise UserError(f"unet: every entry of block_out_channels {self.block_out_channels} must be divisible "
                            f"by norm_groups ({self.norm_groups})")
        bad = [i for i in self.attention_levels if not -levels <= i < levels]
        if bad:
            raise UserError(f"unet: attention level {bad[0]} does not exist; there are {levels} levels "
                            f"(0..{levels - 1}, or -{levels}..-1 from the end)")
        attended = [self.block_out_channels[i] for i in self.attention_levels]
        if self.mid_attention:
            attended.append(self.block_out_channels[-1])
        if self.attention_head_dim < 1 or any(c % self.attention_head_dim for c in attended):
            raise UserError(f"unet: attention_head_dim {self.attention_head_dim} must divide the channels of every "
                            f"attention level ({', '.join(map(str, attended))})")
        if self.time_conditioning not in TIME_CONDITIONINGS:
            raise UserError(f"unet: time_conditioning must be one of {', '.join(TIME_CONDITIONINGS)}, "
                            f"got {self.time_conditioning!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"unet: dropout must be in [0, 1), got {self.dropout}")
        if self.num_classes < 0 or self.context_dim < 0:
            raise UserError("unet: num_classes and context_dim cannot be negative")
        if self.num_classes and self.context_dim:
            raise UserError("unet takes either class ids (num_classes) or context vectors (context_dim), not both")
        lowest = self.level_sizes()[-1]
        if lowest < MIN_LOWEST_SIZE:
            raise UserError(f"unet: {self.image_size}x{self.image_size} images cannot be halved {levels - 1} times "
                            f"(the lowest level would be {lowest}x{lowest}); use fewer block_out_channels or "
                            f"larger images")

    def level_sizes(self) -> list[int]:
        """Height = width of each level: a stride-2 convolution takes H to ⌈H/2⌉."""
        sizes = [self.image_size]
        for _ in self.block_out_channels[1:]:
            sizes.append(math.ceil(sizes[-1] / 2))
        return sizes

    def has_attention(self, level: int) -> bool:
        """Whether the ResNet blocks of ``level`` (0 = highest resolution) are followed by self-attention."""
        return level in {i % len(self.block_out_channels) for i in self.attention_levels}


class UNet(nn.Module):
    """The prediction (ε̂, x̂_0 or v̂) from (x_t, t, c).

    conv_in, down levels, middle block, up levels, GroupNorm-SiLU-conv_out; the time embedding (plus the
    class or context embedding) conditions every ResNet block.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.block_out_channels
        base = widths[0]
        emb_dim = 4 * base
        common = dict(groups=config.norm_groups, dropout=config.dropout,
                      scale_shift=config.time_conditioning == "scale_shift")

        def head_dim(level: int) -> int | None:
            return config.attention_head_dim if config.has_attention(level) else None

        self.time_embedding = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embedding = nn.Embedding(config.num_classes + 1, emb_dim) if config.num_classes else None
        self.context_embedding = nn.Linear(config.context_dim, emb_dim) if config.context_dim else None
        self.conv_in = nn.Conv2d(config.channels, base, 3, padding=1)

        skip_channels = [base]
        self.down = nn.ModuleList()
        ch = base
        for level, width in enumerate(widths):
            last = level == len(widths) - 1
            self.down.append(DownLevel(ch, width, config.layers_per_block, emb_dim, attention_head_dim=head_dim(level),
                                       downsample=not last, **common))
            ch = width
            skip_channels += [width] * (config.layers_per_block + (0 if last else 1))

        self.mid = MidBlock(ch, emb_dim, attention_head_dim=config.attention_head_dim if config.mid_attention else None,
                            **common)

        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            skips = [skip_channels.pop() for _ in range(config.layers_per_block + 1)]
            self.up.append(UpLevel(ch, widths[level], skips, emb_dim, attention_head_dim=head_dim(level),
                                   upsample=level > 0, **common))
            ch = widths[level]

        self.norm_out = nn.GroupNorm(config.norm_groups, base)
        self.conv_out = nn.Conv2d(base, config.channels, 3, padding=1)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """The prediction for ``x`` (B, C, H, W) at timesteps ``t`` (B,), with class ids or contexts ``cond``."""
        cfg = self.config
        check_condition("unet", cond, num_classes=cfg.num_classes, context_dim=cfg.context_dim, batch=x.shape[0])
        check_image_shape("unet", x, cfg.channels)
        emb = self.time_embedding(sinusoidal_embedding(t, cfg.block_out_channels[0]).to(x.dtype))
        if self.class_embedding is not None:
            emb = emb + self.class_embedding(class_rows(cond, cfg.num_classes, x.shape[0], x.device))
        if self.context_embedding is not None:
            context = x.new_zeros(x.shape[0], cfg.context_dim) if cond is None else cond.to(x.dtype)
            emb = emb + self.context_embedding(context)

        h = self.conv_in(x)
        skips = [h]
        for level in self.down:
            h, level_skips = level(h, emb)
            skips += level_skips
        h = self.mid(h, emb)
        for level in self.up:
            consumed = [skips.pop() for _ in level.resnets]
            h = level(h, emb, consumed, skips[-1].shape[-2:] if skips else None)
        return self.conv_out(F.silu(self.norm_out(h)))
