"""Conditions and the null condition, shared by training (dropout) and sampling (guidance).

A condition is either

* a class-id tensor, int64 of shape (B,), where ``-1`` means "no class" (the learned null class), or
* a context tensor, float of shape (B, K) (seed 002's multi-hot vectors), where the zero vector is
  the null context, as in the seed.

Classifier-free guidance (Ho & Salimans 2022) uses the convention

    ε̂ = ε̂_u + w · (ε̂_c − ε̂_u)

so w = 0 is unconditional, w = 1 is plain conditional sampling, and w > 1 sharpens. Tutorials that
write ε̂ = (1 + w′)·ε̂_c − w′·ε̂_u (TeaPearce's conditional MNIST, its descendants) use w = 1 + w′.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .errors import UserError

NULL_CLASS = -1


def is_class_condition(cond: Tensor) -> bool:
    """True for class ids (integer tensors), False for context vectors (float tensors)."""
    return not cond.dtype.is_floating_point


def null_condition(cond: Tensor) -> Tensor:
    """The null condition with the shape, dtype and device of ``cond``."""
    if is_class_condition(cond):
        return torch.full_like(cond, NULL_CLASS)
    return torch.zeros_like(cond)


def drop_condition(cond: Tensor, keep: Tensor) -> Tensor:
    """Replace the condition of samples where ``keep`` is False by the null condition."""
    if is_class_condition(cond):
        return torch.where(keep, cond, torch.full_like(cond, NULL_CLASS))
    return cond * keep.to(cond.dtype).unsqueeze(-1)


def _name_key(name: str) -> str:
    """Names compare without case, with '-', '_' and spaces alike (``spell_icon``, ``Spell icon``, ``non-hero``)."""
    return "_".join(name.lower().replace("-", " ").replace("_", " ").split())


def parse_named_context(text: str, names: Sequence[str]) -> Tensor:
    """Parse ``"hero=1,spell_icon=0.6"`` into a context vector over ``names`` (the dataset's context names).

    Seed 002's mixtures by name: every name not given is 0, so ``hero=1,food=0.6`` is the course's
    ``[1, 0, 0.6, 0, 0]``. Names are matched without case, with '-', '_' and spaces alike.
    """
    keys = [_name_key(n) for n in names]
    values = [0.0] * len(names)
    seen: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        name, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"--context {text!r} mixes names and bare numbers; write name=value pairs like "
                            f"'{names[0]}=1' for every entry")
        key = _name_key(name)
        if key not in keys:
            raise UserError(f"--context: unknown name {name.strip()!r}; this model's context names are "
                            f"{', '.join(names)}")
        index = keys.index(key)
        if index in seen:
            raise UserError(f"--context names {names[index]!r} twice")
        try:
            values[index] = float(raw)
        except ValueError:
            raise UserError(f"--context: {name.strip()}={raw.strip()} is not a number") from None
        seen.add(index)
    return torch.tensor(values, dtype=torch.float32)


def parse_context(text: str, dim: int, names: Sequence[str] | None = None) -> Tensor:
    """Parse ``"1,0,0.6,0,0"`` (or, with the dataset's ``names``, ``"hero=1,food=0.6"``) into a float
    context vector of length ``dim`` (one clear error otherwise)."""
    if "=" in text:
        if not names or len(names) != dim:
            raise UserError(f"this model's {dim} context entries have no names; give --context as {dim} numbers "
                            "like '1,0,0.6,0,0'")
        return parse_named_context(text, names)
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise UserError(f"--context must be comma-separated numbers like '1,0,0.6,0,0', got {text!r}") from None
    if len(values) != dim:
        raise UserError(f"--context has {len(values)} values but this model's context vectors have {dim}")
    if not all(math.isfinite(v) for v in values):
        raise UserError(f"--context must hold finite numbers, got {text!r}")
    return torch.tensor(values, dtype=torch.float32)


def check_classes(classes: Sequence[int], num_classes: int) -> None:
    """Raise a clear error for class ids outside 0..num_classes−1."""
    bad = [c for c in classes if not 0 <= int(c) < num_classes]
    if bad:
        raise UserError(f"class id {bad[0]} is out of range: this model knows classes 0..{num_classes - 1}")
