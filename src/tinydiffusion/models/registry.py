"""The table of networks by name (filled in as networks are added)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    """A registered network: its config dataclass, its class, what conditions it accepts, one line of help."""

    config: type
    network: type[nn.Module]
    conditions: frozenset[str]  # subset of {"class", "context"}
    description: str


MODELS: dict[str, ModelEntry] = {}
