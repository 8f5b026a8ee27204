"""Seed 001 (Hugging Face diffusion course, unit 1): ``BasicUNet``, the minimal U-Net that ignores t.

Three 5×5 convolutions down (max-pool between them), three up (nearest ×2 upsampling between them),
skip connections by *addition*, SiLU after every convolution. It predicts x_0 from a noisy image
(seed 001's ``corrupt`` objective) and has 309,057 parameters for one channel. Works at any size
divisible by 4.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..errors import UserError
from .base import check_condition, check_image_shape


@dataclass
class BasicUNetConfig:
    """Settings of :class:`BasicUNet` (defaults: the seed's MNIST model)."""

    channels: int = 1  #: image channels (in and out)
    image_size: int = 28  #: height = width; any multiple of 4 works (recorded for checkpoints)
    #: Apply SiLU after the last convolution too, as the seed does. SiLU cannot go below −0.278: in the
    #: seed's [0, 1] range (``data.range = "0,1"``, the hf-mnist-basic recipe) it reaches the background
    #: 0, in the default [−1, 1] it cannot reach −1, so the default leaves it off.
    out_activation: bool = False

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise UserError(f"basic-unet: channels must be at least 1, got {self.channels}")
        if self.image_size < 4 or self.image_size % 4:
            raise UserError(f"basic-unet: image_size must be a multiple of 4 (two 2x2 max-pools), "
                            f"got {self.image_size}")


class BasicUNet(nn.Module):
    """Seed 001's ``BasicUNet`` (without its debug prints)."""

    def __init__(self, config: BasicUNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.down_layers = nn.ModuleList([nn.Conv2d(c, 32, 5, padding=2), nn.Conv2d(32, 64, 5, padding=2),
                                          nn.Conv2d(64, 64, 5, padding=2)])
        self.up_layers = nn.ModuleList([nn.Conv2d(64, 64, 5, padding=2), nn.Conv2d(64, 32, 5, padding=2),
                                        nn.Conv2d(32, c, 5, padding=2)])
        self.act = nn.SiLU()
        self.downscale = nn.MaxPool2d(2)
        self.upscale = nn.Upsample(scale_factor=2)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """x̂_0(x̃); ``t`` is accepted for the common contract and ignored, as in the seed."""
        check_condition("basic-unet", cond, num_classes=None, context_dim=None, batch=x.shape[0])
        check_image_shape("basic-unet", x, self.config.channels)
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"basic-unet needs height and width divisible by 4, got input of shape {tuple(x.shape)}")
        skips = []
        for i, conv in enumerate(self.down_layers):
            x = self.act(conv(x))
            if i < len(self.down_layers) - 1:
                skips.append(x)
                x = self.downscale(x)
        for i, conv in enumerate(self.up_layers):
            if i > 0:
                x = self.upscale(x) + skips.pop()
            x = conv(x)
            if i < len(self.up_layers) - 1 or self.config.out_activation:
                x = self.act(x)
        return x
