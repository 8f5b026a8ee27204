"""One call that scores generated images against real ones: FD, its floor, KID, precision/recall, class accuracy.

``evaluate_images`` is what ``tinydiffusion eval`` prints. All numbers live in one feature space (by
default the shipped classifier for the reference dataset, :mod:`.features`) and depend on N, the
image size and the extractor, so compare only numbers with the same ``features``, ``n`` and
``reference``. Precision and recall use equally many real and generated feature vectors (the k-NN
radii depend on the set size); KID uses subsets of at most ``kid_subset_size`` from each side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset
from ..errors import UserError
from .features import Extractor, default_extractor_for, get_extractor, images_to_tensor
from .frechet import feature_statistics, frechet_distance
from .kid import kernel_inception_distance
from .prdc import precision_recall
from .reference import fd_floor, real_features

MIN_SAMPLES = 10
PR_NEIGHBOURS = 3


def _check_fake(fake: np.ndarray, image_size: int) -> None:
    if not isinstance(fake, np.ndarray) or fake.dtype != np.uint8 or fake.ndim != 4 or fake.shape[-1] not in (1, 3):
        what = f"{fake.dtype} {fake.shape}" if isinstance(fake, np.ndarray) else type(fake).__name__
        raise UserError(f"generated images must be a uint8 array (N, H, W, 1|3), got {what}")
    if fake.shape[1:3] != (image_size, image_size):
        raise UserError(f"generated images are {fake.shape[2]}x{fake.shape[1]} but image_size is {image_size}; "
                        "evaluate at the size the model generates")
    if len(fake) < MIN_SAMPLES:
        raise UserError(f"evaluation needs at least {MIN_SAMPLES} generated images, got {len(fake)}; raise -n")


def class_accuracy(logits: torch.Tensor, labels: np.ndarray) -> float:
    """Fraction of samples whose arg-max class equals the requested label."""
    return float((logits.argmax(dim=1).numpy() == labels).mean())


def _class_score(extractor: Extractor, fake_x: torch.Tensor, labels: np.ndarray | None,
                 reference_classes: list[str] | None) -> float | None:
    """Class accuracy, or None when no labels were given or the extractor cannot name the reference's classes."""
    if labels is None or not extractor.has_classifier:
        return None
    if reference_classes is not None and list(reference_classes) != list(extractor.class_names):
        return None
    if labels.min() < 0 or labels.max() >= len(extractor.class_names):
        raise UserError(f"labels must be class ids 0..{len(extractor.class_names) - 1} "
                        f"for features {extractor.name!r}, got {labels.min()}..{labels.max()}")
    return class_accuracy(extractor.logits(fake_x), labels)


def resolve_extractor(extractor: str | Extractor | None, reference: Dataset | str,
                      device: torch.device | str) -> Extractor:
    """``extractor`` as an :class:`Extractor`, or the shipped one for the reference dataset when None."""
    if extractor is None:
        name = reference if isinstance(reference, str) else reference.name
        extractor = default_extractor_for(name.partition(":")[0])
        if extractor is None:
            raise UserError(f"no shipped feature extractor fits dataset {name!r}; pass --features "
                            "python:module:callable (your own network) or inception:/path/to/weights.pth")
    return get_extractor(extractor, device)


def evaluate_images(fake: np.ndarray, *, reference: Dataset | str, image_size: int,
                    labels: np.ndarray | None = None, extractor: str | Extractor | None = None, seed: int = 0,
                    device: torch.device | str = "cpu", reference_n: int | None = None,
                    cache_dir: str | Path | None = None, kid_subsets: int = 100,
                    kid_subset_size: int = 1000) -> dict[str, Any]:
    """Score generated uint8 images (N, H, W, C) against ``reference``; returns one JSON-able dict.

    Keys: ``fd`` (Heusel et al. 2017), ``fd_floor`` (real vs real at the same N, :func:`.fd_floor`),
    ``kid`` / ``kid_se`` (Bińkowski et al. 2018), ``precision`` / ``recall`` (Kynkäänniemi et al.
    2019, k = 3), ``class_accuracy`` (the extractor's arg-max vs ``labels``; None without labels, or
    when the extractor has no head for the reference's classes), ``features``, ``n``, ``reference``
    (dataset, split, image size, N, and the floor's split and N) and ``seed`` (which draws the KID
    subsets, the floor's real images and the real images precision/recall compare with).

    ``extractor`` is a name for :func:`.get_extractor` or an :class:`.Extractor`; None picks the shipped
    one for the reference dataset (:func:`.default_extractor_for`). ``reference_n`` caps the reference
    images (default 10,000), ``cache_dir`` replaces ``data_root()/cache``, and ``kid_subsets`` /
    ``kid_subset_size`` go to :func:`.kernel_inception_distance`.
    """
    _check_fake(fake, image_size)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(fake),) or not np.issubdtype(labels.dtype, np.integer):
            raise UserError(f"labels must be integer class ids of shape ({len(fake)},), "
                            f"got {labels.dtype} {labels.shape}")
    ext = resolve_extractor(extractor, reference, device)
    real = real_features(reference, image_size=image_size, extractor=ext, reference_n=reference_n,
                         cache_dir=cache_dir)
    if real.channels != fake.shape[3]:
        raise UserError(f"generated images have {fake.shape[3]} channel(s) but {real.dataset} has {real.channels}")
    fake_x = images_to_tensor(fake)
    fake_features = ext.features(fake_x).numpy()
    mu, sigma = feature_statistics(fake_features)
    floor, floor_n = fd_floor(real, len(fake), seed)
    kid, kid_se = kernel_inception_distance(real.features, fake_features, num_subsets=kid_subsets,
                                            subset_size=kid_subset_size, seed=seed)
    rng = np.random.default_rng([seed, 2])
    m = min(len(fake_features), real.n)
    real_rows = np.sort(rng.choice(real.n, m, replace=False))
    fake_rows = np.sort(rng.choice(len(fake_features), m, replace=False))
    precision, recall = precision_recall(real.features[real_rows], fake_features[fake_rows], k=PR_NEIGHBOURS)
    return {
        "fd": frechet_distance(mu, sigma, real.mu, real.sigma),
        "fd_floor": floor,
        "kid": kid,
        "kid_se": kid_se,
        "precision": precision,
        "recall": recall,
        "class_accuracy": _class_score(ext, fake_x, labels, real.class_names),
        "features": ext.name,
        "n": int(len(fake)),
        "reference": {"dataset": real.dataset, "split": real.split, "image_size": image_size, "n": real.n,
                      "floor_split": real.floor_split, "floor_n": floor_n, "precision_recall_n": m},
        "seed": int(seed),
    }
