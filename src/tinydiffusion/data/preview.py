"""Example images of a dataset, one row per class (what ``tinydiffusion show data`` draws)."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .dataset import Dataset

BLANK = 255  #: the value of cells left empty when a class has fewer images than a row holds


def examples_per_class(dataset: Dataset, per_class: int = 8, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """uint8 (rows, per_class, H, W, C) example images and the row names.

    Labelled sets (labels, or one-hot contexts) get one row per class, named by the class names (or
    the class ids), with ``per_class`` images drawn without replacement by ``seed``, in dataset order;
    a class with fewer images leaves the rest of its row blank (white). Unlabelled sets get one row,
    "examples".
    """
    if dataset.images is None:
        raise UserError(f"{dataset.name} is a set of 2-D points; show it as a scatter plot, not as images")
    if per_class < 1:
        raise UserError(f"per_class must be 1 or more, got {per_class}")
    rng = np.random.default_rng(seed)
    ids = dataset.class_ids()
    if ids is None:
        groups, names = [np.arange(len(dataset))], ["examples"]
    else:
        num_classes = dataset.num_classes
        groups = [np.flatnonzero(ids == c) for c in range(num_classes)]
        names = dataset.class_names or [str(c) for c in range(num_classes)]
    per_class = min(per_class, max(len(g) for g in groups))  # more columns than any class fills stay blank
    out = np.full((len(groups), per_class) + dataset.images.shape[1:], BLANK, dtype=np.uint8)
    for row, members in enumerate(groups):
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        out[row, :len(chosen)] = dataset.images[chosen]
    return out, list(names)
