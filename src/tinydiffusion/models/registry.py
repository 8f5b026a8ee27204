"""The table of networks by name: config dataclass, network class, accepted conditions, one line of help."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .basic_unet import BasicUNet, BasicUNetConfig
from .context_unet import ContextUNet, ContextUNetConfig
from .dli_unet import DLIUNet, DLIUNetConfig
from .mlp2d import MLP2D, MLP2DConfig, SinMLP2D, SinMLP2DConfig
from .pulfer_unet import PulferUNet, PulferUNetConfig
from .unet import UNet, UNetConfig


@dataclass(frozen=True)
class ModelEntry:
    """A registered network: its config dataclass, its class, what conditions it accepts, one line of help."""

    config: type
    network: type[nn.Module]
    conditions: frozenset[str]  # subset of {"class", "context"}
    description: str


MODELS: dict[str, ModelEntry] = {
    "unet": ModelEntry(UNetConfig, UNet, frozenset({"class", "context"}),
                       "the default: modern U-Net (ResNet blocks, GroupNorm, attention, scale-shift time)"),
    "dli-unet": ModelEntry(DLIUNetConfig, DLIUNet, frozenset(),
                           "seed 000: NVIDIA DLI U-Net with BatchNorm, dense bottleneck and FC time embedding"),
    "basic-unet": ModelEntry(BasicUNetConfig, BasicUNet, frozenset(),
                             "seed 001: Hugging Face course BasicUNet (3 convs down, 3 up, ignores t)"),
    "context-unet": ModelEntry(ContextUNetConfig, ContextUNet, frozenset({"class", "context"}),
                               "seed 002: DeepLearning.AI ContextUnet (context vectors or one-hot classes)"),
    "pulfer-unet": ModelEntry(PulferUNetConfig, PulferUNet, frozenset(),
                              "seed 003: Pulfer's MyUNet for 28x28 images (LayerNorm blocks, sinusoidal table)"),
    "mlp-2d": ModelEntry(MLP2DConfig, MLP2D, frozenset(),
                         "seed 004: 2-D point MLP with a learned embedding per step and layer"),
    "mlp-2d-sin": ModelEntry(SinMLP2DConfig, SinMLP2D, frozenset({"class"}),
                             "2-D point MLP on sinusoidal encodings of coordinates and t, residual blocks"),
}
