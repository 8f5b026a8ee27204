"""Networks, by name. Each module holds one network and its config dataclass.

``build_model(name, config)`` builds a network from a JSON-able config dict; ``MODELS`` maps each
name to its (config class, network class) pair. See :mod:`tinydiffusion.models.base` for the contract.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from .registry import MODELS, ModelEntry

__all__ = ["MODELS", "ModelEntry", "build_model", "model_config", "count_parameters", "model_bytes"]


def model_config(name: str, config: dict[str, Any] | None = None) -> Any:
    """The config dataclass of network ``name`` filled from ``config`` (unknown keys are an error)."""
    try:
        entry = MODELS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
    config = dict(config or {})
    fields = {f.name for f in dataclasses.fields(entry.config)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise UserError(f"model {name!r} has no setting(s) {', '.join(unknown)}; it has {', '.join(sorted(fields))}")
    for key, value in list(config.items()):  # TOML and JSON give lists where the dataclasses hold tuples
        if isinstance(value, list):
            config[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return entry.config(**config)


def build_model(name: str, config: dict[str, Any] | None = None) -> nn.Module:
    """Build network ``name`` from a config dict (the form recipes and checkpoints store)."""
    cfg = model_config(name, config)
    return MODELS[name].network(cfg)


def count_parameters(model: nn.Module) -> int:
    """All parameters, trainable or frozen (the seeds count them this way)."""
    return sum(p.numel() for p in model.parameters())


def model_bytes(name: str, config: dict[str, Any] | None = None) -> int:
    """Bytes of the parameters and buffers network ``name`` would have, counted on the meta device (nothing
    is allocated, so a config that asks for 100 GB can be refused before it is built)."""
    with torch.device("meta"):
        model = build_model(name, config)
    return sum(t.numel() * t.element_size() for t in itertools.chain(model.parameters(), model.buffers()))
