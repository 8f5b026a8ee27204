"""The values a network sees for pixels: [−1, 1] (DDPM's convention, the default) or [0, 1] (seed 001).

Seed 001 trains on ``ToTensor()`` images in [0, 1], mixes them with ``torch.rand`` noise in [0, 1] and
ends its network with SiLU, which reaches the black background 0 but not −1; so its recipe sets
``data.range = "0,1"``. The range is recorded in a run's ``model.safetensors`` metadata; samples are
mapped back from it to [−1, 1] (:func:`to_signed_unit`) before any picture or metric sees them, so
every consumer downstream works in one convention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:
    from torch import Tensor

#: ``data.range`` values and the (low, high) interval each one names.
DATA_RANGES: dict[str, tuple[float, float]] = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0)}
DEFAULT_RANGE: tuple[float, float] = DATA_RANGES["-1,1"]


def parse_range(text: str) -> tuple[float, float]:
    """``"-1,1"`` or ``"0,1"`` (spaces allowed) → (low, high); one clear error for anything else."""
    key = str(text).replace(" ", "")
    if key not in DATA_RANGES:
        raise UserError(f"data.range must be one of {', '.join(repr(k) for k in DATA_RANGES)}, got {text!r}")
    return DATA_RANGES[key]


def range_of(data_meta: Mapping[str, Any]) -> tuple[float, float]:
    """The value range recorded in a run's ``data`` metadata ([−1, 1] for runs that predate the setting)."""
    low, high = data_meta.get("range", DEFAULT_RANGE)
    return float(low), float(high)


def pixels_to_range(x: Tensor, value_range: tuple[float, float]) -> Tensor:
    """Float pixel values 0..255 → the value range, in place: x·(high − low)/255 + low."""
    low, high = value_range
    return x.div_(255.0 / (high - low)).add_(low)


def to_signed_unit(x: Tensor, value_range: tuple[float, float]) -> Tensor:
    """Values in ``value_range`` → [−1, 1] by the affine map that sends low to −1 and high to 1.

    The identity (the same tensor) for the default range.
    """
    low, high = value_range
    if (low, high) == DEFAULT_RANGE:
        return x
    return (x - low) * (2.0 / (high - low)) - 1.0
