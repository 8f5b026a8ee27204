"""Bounds on what a user may ask for, so that a typo ends in one line instead of a 100 GB allocation.

Each bound says in its message how to lift it:

* memory: an estimate of what a request needs (network weights, a batch, a set of samples) may not
  exceed ``$TINYDIFFUSION_MAX_MEMORY_GB`` (default: this machine's physical memory);
* classes: labels may not ask for more than ``$TINYDIFFUSION_MAX_CLASSES`` classes (default 10,000);
* seeds: whole numbers in 0 … 2⁶² − 1, so ``seed + i`` (one seed per sample) stays a 64-bit integer.
"""

from __future__ import annotations

import math
import os

from .errors import UserError

MEMORY_ENV = "TINYDIFFUSION_MAX_MEMORY_GB"
CLASSES_ENV = "TINYDIFFUSION_MAX_CLASSES"
DEFAULT_MAX_CLASSES = 10_000
MAX_SEED = 2**62 - 1
_GB = 1e9
_FALLBACK_MEMORY_GB = 16.0


def _env_number(name: str) -> float | None:
    text = os.environ.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"${name} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"${name} must be a positive number, got {text!r}")
    return value


def physical_memory_gb() -> float:
    """This machine's physical memory in GB (a fixed guess where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / _GB
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_MEMORY_GB


def memory_limit_gb() -> float:
    """The memory bound: ``$TINYDIFFUSION_MAX_MEMORY_GB``, else the physical memory."""
    return _env_number(MEMORY_ENV) or physical_memory_gb()


def check_memory(nbytes: float, what: str, smaller: str) -> None:
    """Refuse a request whose estimated memory ``nbytes`` exceeds the limit.

    ``what`` describes the request ("--batch-size 100000000: a batch of 28x28x1 images"), ``smaller``
    says how to ask for less ("lower --batch-size").
    """
    limit = memory_limit_gb()
    if nbytes > limit * _GB:
        raise UserError(f"{what} needs at least {nbytes / _GB:,.3g} GB of memory, more than the limit of "
                        f"{limit:,.3g} GB; {smaller}, or set {MEMORY_ENV} to a larger number of GB if the "
                        "machine really has it")


def max_classes() -> int:
    """The class bound: ``$TINYDIFFUSION_MAX_CLASSES``, else 10,000."""
    value = _env_number(CLASSES_ENV)
    return int(value) if value is not None else DEFAULT_MAX_CLASSES


def check_classes_count(num_classes: int, source: str) -> None:
    """Refuse labels that ask for more classes than the bound (a stray label such as 10⁹ would build a
    network with 10⁹ class embeddings)."""
    limit = max_classes()
    if num_classes > limit:
        raise UserError(f"{source}: the labels go up to {num_classes - 1:,}, which would make a network with "
                        f"{num_classes:,} classes, more than the limit of {limit:,}; number the classes 0..K-1, "
                        f"or set {CLASSES_ENV} to a larger number")


def check_seed(seed: int, name: str) -> None:
    """Seeds are whole numbers in 0 … 2⁶² − 1."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"{name} must be a whole number from 0 to {MAX_SEED} (2^62 - 1), got {seed!r}")
