"""The small CNN classifier whose penultimate layer is the feature space of the shipped metrics.

Inception-V3 features need downloaded weights and were trained on 299-px photographs; a 16×16 grey
garment is far outside what they describe. Like TF-GAN's ``mnist_frechet_distance`` and the
"Fréchet LeNet Distance", tinydiffusion instead trains one small classifier per dataset family
(``scripts/train_feature_extractors.py``) and measures distances in its feature space.

Network (C input channels, S canonical input size, widths w₁ < w₂ < w₃, convolutions per stage n₁, n₂, n₃):

    resize to S×S (bilinear, antialiased)  →  [conv3×3 → BN → ReLU] ×n₁ at w₁ → max-pool 2
    →  [conv3×3 → BN → ReLU] ×n₂ at w₂ → max-pool 2  →  [conv3×3 → BN → ReLU] ×n₃ at w₃
    →  global average pool  = features (w₃-d)  →  dropout → linear → logits

Inputs are float images (N, C, H, W) in [−1, 1] of any size: the resize happens inside, so 16-px
samples and 28-px data go through the same code path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything needed to rebuild a :class:`DomainClassifier` (stored in its weights' metadata)."""

    in_channels: int
    num_classes: int
    input_size: int
    widths: tuple[int, int, int] = (32, 64, 128)
    convs: tuple[int, int, int] = (2, 2, 2)  #: convolutions per stage
    dropout: float = 0.0  #: on the features, before the linear head (training only)

    def to_dict(self) -> dict:
        """JSON-able form (tuples as lists)."""
        out = asdict(self)
        out["widths"], out["convs"] = list(self.widths), list(self.convs)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        """Inverse of :meth:`to_dict`."""
        convs = tuple(int(n) for n in d.get("convs", (2, 2, 1)))  # files from 0.1.0 had 2, 2, 1 convolutions
        return cls(int(d["in_channels"]), int(d["num_classes"]), int(d["input_size"]),
                   tuple(int(w) for w in d["widths"]), convs, float(d.get("dropout", 0.0)))


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def resize_to(x: Tensor, size: int) -> Tensor:
    """(N, C, H, W) → (N, C, size, size) by antialiased bilinear interpolation (identity at that size)."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class DomainClassifier(nn.Module):
    """A VGG-style CNN: ``features(x)`` is the global-average-pooled last conv layer, ``forward(x)`` the logits."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = config.in_channels
        for stage, (width, n) in enumerate(zip(config.widths, config.convs)):
            if stage > 0:
                layers.append(nn.MaxPool2d(2))
            for _ in range(n):
                layers += _conv_bn_relu(c_in, width)
                c_in = width
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c_in, config.num_classes)

    @property
    def feature_dim(self) -> int:
        """Length of a feature vector (the last width)."""
        return self.config.widths[-1]

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features (N, feature_dim) of images (N, C, H, W) in [−1, 1]."""
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected images (N, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        return self.body(resize_to(x, self.config.input_size)).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, num_classes)."""
        return self.head(self.dropout(self.features(x)))
