"""Training: the loop and its parts (EMA, learning-rate schedule, logging, distributed setup)."""

from .loop import train

__all__ = ["train"]
