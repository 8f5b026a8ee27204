"""The in-memory dataset every loader returns, and what it tells a network config.

Images are stored as uint8 (N, H, W, C) with C = 1 (grey) or 3 (RGB), square (H = W); the batcher
turns them into float (B, C, H, W) in [-1, 1]. 2-D point sets are float32 (N, D). A dataset may carry
class labels (int64 (N,)), context vectors (float32 (N, K), seed 002's multi-hot "hero, non-hero, …"
vectors) or both.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataWarning, UserError
from ..limits import check_classes_count

CONDITIONS = ("none", "class", "context")


@dataclass
class Dataset:
    """One loaded dataset: pixels or points, optional labels/contexts, and where it came from."""

    name: str
    images: np.ndarray | None = None  #: uint8 (N, H, W, C), C ∈ {1, 3}, H = W
    points: np.ndarray | None = None  #: float32 (N, D)
    labels: np.ndarray | None = None  #: int64 (N,), class ids 0..num_classes−1
    contexts: np.ndarray | None = None  #: float32 (N, K)
    class_names: list[str] | None = None
    credit: str = ""  #: source and licence, one line

    def __post_init__(self) -> None:
        if (self.images is None) == (self.points is None):
            raise ValueError("a Dataset holds either images or points")
        if self.images is not None:
            if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] not in (1, 3):
                raise ValueError(f"images must be uint8 (N, H, W, 1|3), got {self.images.dtype} {self.images.shape}")
        else:
            if self.points.dtype != np.float32 or self.points.ndim != 2:
                raise ValueError(f"points must be float32 (N, D), got {self.points.dtype} {self.points.shape}")
        n = len(self)
        if self.labels is not None and (self.labels.dtype != np.int64 or self.labels.shape != (n,)):
            raise ValueError(f"labels must be int64 ({n},), got {self.labels.dtype} {self.labels.shape}")
        if self.contexts is not None and (self.contexts.dtype != np.float32 or self.contexts.ndim != 2
                                          or self.contexts.shape[0] != n):
            raise ValueError(f"contexts must be float32 ({n}, K), got {self.contexts.dtype} {self.contexts.shape}")
        if self.labels is not None and n:
            self._check_label_range()

    def _check_label_range(self) -> None:
        """A stray large label would build a network with that many classes: bound it, and say when most
        class ids of unnamed classes have no example (named classes may be missing from a subset)."""
        top = int(self.labels.max()) + 1
        check_classes_count(top, self.name)
        used = len(np.unique(self.labels))
        if self.class_names is None and used < top / 2:
            warnings.warn(f"{self.name}: the labels use {used} of the {top:,} class ids 0..{top - 1:,}, so most "
                          "classes have no example; number the classes 0..K-1", DataWarning, stacklevel=3)

    @property
    def kind(self) -> str:
        """``"image"`` or ``"points"``."""
        return "image" if self.images is not None else "points"

    def __len__(self) -> int:
        data = self.images if self.images is not None else self.points
        return int(data.shape[0])

    @property
    def num_classes(self) -> int | None:
        """Number of classes: the class names, else 1 + the largest label or one-hot context index."""
        if self.class_names is not None:
            return len(self.class_names)
        ids = self.class_ids()
        if ids is None:
            return None
        return int(ids.max()) + 1 if len(ids) else 0

    def class_ids(self) -> np.ndarray | None:
        """int64 class ids: the labels, else the argmax of the contexts when every row is one-hot, else None."""
        if self.labels is not None:
            return self.labels
        if self.contexts is not None and _is_one_hot(self.contexts):
            return self.contexts.argmax(axis=1).astype(np.int64)
        return None

    def condition_values(self, condition: str) -> np.ndarray | None:
        """The per-sample condition for ``condition`` ∈ {"none", "class", "context"}.

        "class": int64 ids (:meth:`class_ids`). "context": the float32 contexts, or the one-hot vectors of
        the labels (so seed 002's context network trains on labelled sets). "none": None.
        """
        if condition not in CONDITIONS:
            raise UserError(f"unknown condition {condition!r}; choose one of {', '.join(CONDITIONS)}")
        if condition == "none":
            return None
        if condition == "class":
            ids = self.class_ids()
            if ids is None:
                what = "context vectors that are not one-hot" if self.contexts is not None else "no labels"
                raise UserError(f"dataset {self.name!r} has {what}, so it cannot train a class-conditional model; "
                                "use condition 'none'" + (" or 'context'" if self.contexts is not None else ""))
            return ids
        if self.contexts is not None:
            return self.contexts
        if self.labels is not None:
            return np.eye(self.num_classes, dtype=np.float32)[self.labels]
        raise UserError(f"dataset {self.name!r} has no labels or context vectors, so it cannot train a "
                        "context-conditional model; use condition 'none'")

    def facts(self, condition: str | None = None) -> dict[str, Any]:
        """What a network config may take from this data.

        Images give ``channels`` and ``image_size``; points give ``dim``. With ``condition=None`` every
        conditioning fact the data supports is added (``num_classes``, ``context_dim``); with a condition
        mode only the one that mode uses ("class" → ``num_classes``, "context" → ``context_dim``, which is
        the number of classes when one-hot labels stand in for contexts).
        """
        out: dict[str, Any] = {}
        if self.images is not None:
            out["channels"] = int(self.images.shape[3])
            out["image_size"] = int(self.images.shape[1])
        else:
            out["dim"] = int(self.points.shape[1])
        if condition is None:
            if self.num_classes is not None:
                out["num_classes"] = self.num_classes
            if self.contexts is not None:
                out["context_dim"] = int(self.contexts.shape[1])
        elif condition == "class":
            self.condition_values("class")
            out["num_classes"] = self.num_classes
        elif condition == "context":
            out["context_dim"] = int(self.condition_values("context").shape[1])
        else:
            self.condition_values(condition)
        return out


def _is_one_hot(contexts: np.ndarray) -> bool:
    """True when every row has exactly one 1 and zeros elsewhere."""
    return bool(np.all((contexts == 0) | (contexts == 1)) and np.all(contexts.sum(axis=1) == 1))
