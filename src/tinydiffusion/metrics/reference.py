"""Features of real images, cached on disk, and the real-versus-real floor of the Fréchet distance.

FD is biased upwards by small samples (TF-GAN's docs; Chong & Forsyth 2019), so an FD number means
little alone. Next to the reference features this module keeps features of a *disjoint* real set:
the test split for datasets that have one (fashion-mnist, mnist), otherwise the second half of a
seeded shuffle of the data. FD between N of those and the reference is the floor a perfect generator
would reach with the same N (:func:`fd_floor`).

Reference features: the train split (or the first half), at most ``reference_n`` images (default
10,000) chosen by a fixed seed so that every evaluation compares against the same set. They are
stored per (dataset content, image size, extractor weights, N) as ``.npz`` under
``data_root()/cache/`` (or ``cache_dir``), written to a temporary file and renamed into place, so
concurrent evaluations never read half a file; an unreadable cache file is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import DATASETS, Dataset, data_root, load_dataset
from ..data.pixels import resize_images
from ..errors import DataWarning, UserError
from .features import Extractor, images_to_tensor
from .frechet import feature_statistics, frechet_distance

DEFAULT_REFERENCE_N = 10_000
REFERENCE_SEED = 0  #: the fixed shuffle that picks reference images and halves (not the evaluation seed)
CACHE_VERSION = 1
MIN_REAL = 10  #: fewest real images per side (precision/recall need more than k = 3 neighbours)


@dataclass
class RealFeatures:
    """Features of a real reference set and of a disjoint real set (for the floor), with provenance."""

    dataset: str
    image_size: int
    channels: int
    split: str  #: "train" or "first half"
    features: np.ndarray  #: (N_ref, d) float32
    floor_split: str  #: "test" or "second half"
    floor_features: np.ndarray  #: (M, d) float32, disjoint from ``features``
    class_names: list[str] | None
    extractor: str

    def __post_init__(self) -> None:
        self.mu, self.sigma = feature_statistics(self.features)

    @property
    def n(self) -> int:
        """Number of reference images."""
        return int(self.features.shape[0])


def _image_set(reference: Dataset | str, image_size: int) -> tuple[str, Dataset, Dataset | None]:
    """(name, main set, test set or None) at ``image_size``."""
    if isinstance(reference, str):
        name = reference.partition(":")[0]
        entry = DATASETS.get(name)
        main = load_dataset(reference, image_size=image_size)
        other = load_dataset(reference, image_size=image_size, split="test") if entry and entry.has_splits else None
        return main.name, main, other
    if reference.kind != "image":
        raise UserError(f"dataset {reference.name!r} holds 2-D points; image metrics need an image dataset")
    images = reference.images
    if images.shape[1] != image_size:
        images = resize_images(images, image_size, "bilinear")
    return reference.name, Dataset(reference.name, images=images, labels=reference.labels,
                                   class_names=reference.class_names), None


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:20]


def _pick(count: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of min(count, limit) rows drawn without replacement."""
    return np.sort(rng.choice(count, min(count, limit), replace=False))


def _load_cache(path: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path) as npz:
            if str(npz["key"]) != key:
                return None
            return npz["features"], npz["floor_features"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def _save_cache(path: Path, key: str, meta: dict, features: np.ndarray, floor_features: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, key=np.array(key), meta=np.array(json.dumps(meta)), features=features,
                         floor_features=floor_features)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        warnings.warn(f"could not cache real-image features in {path.parent} ({e}); they will be recomputed "
                      "next time", DataWarning, stacklevel=3)


def real_features(reference: Dataset | str, *, image_size: int, extractor: Extractor,
                  reference_n: int | None = None, cache_dir: str | Path | None = None) -> RealFeatures:
    """Features of the reference set and of a disjoint real set, from the cache when present (module docstring).

    ``reference`` is a dataset spec (``"fashion-mnist"``) or a loaded :class:`Dataset` (which has one
    split, so it is halved). Images are resized to ``image_size`` the way ``load_dataset`` does.
    """
    limit = DEFAULT_REFERENCE_N if reference_n is None else int(reference_n)
    if limit < MIN_REAL:
        raise UserError(f"reference_n must be at least {MIN_REAL}, got {reference_n!r}")
    name, main, other = _image_set(reference, image_size)
    rng = np.random.default_rng(REFERENCE_SEED)
    if other is None:
        if len(main) < 2 * MIN_REAL:
            raise UserError(f"dataset {name!r} has {len(main)} images; the metrics need at least {2 * MIN_REAL} "
                            "real images (two halves)")
        order = rng.permutation(len(main))
        first, second = np.sort(order[:len(main) // 2]), np.sort(order[len(main) // 2:])
        ref_images = main.images[first][_pick(len(first), limit, rng)]
        floor_images = main.images[second][_pick(len(second), limit, rng)]
        split, floor_split = "first half", "second half"
    else:
        ref_images = main.images[_pick(len(main), limit, rng)]
        floor_images = other.images[_pick(len(other), limit, rng)]
        split, floor_split = "train", "test"
    meta = {"dataset": name, "image_size": image_size, "split": split, "floor_split": floor_split,
            "extractor": extractor.fingerprint, "reference_n": limit, "version": CACHE_VERSION}
    key = hashlib.sha256((json.dumps(meta, sort_keys=True) + _digest(ref_images, floor_images)).encode()).hexdigest()
    folder = Path(cache_dir).expanduser() if cache_dir is not None else data_root() / "cache"
    safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]
    path = folder / f"real-features-{safe_name}-{image_size}px-{key[:16]}.npz"
    cached = _load_cache(path, key)
    if cached is None:
        features = extractor.features(images_to_tensor(ref_images)).numpy()
        floor_features = extractor.features(images_to_tensor(floor_images)).numpy()
        _save_cache(path, key, meta, features, floor_features)
    else:
        features, floor_features = cached
    return RealFeatures(dataset=name, image_size=image_size, channels=int(ref_images.shape[3]), split=split,
                        features=features, floor_split=floor_split, floor_features=floor_features,
                        class_names=main.class_names, extractor=extractor.name)


def fd_floor(real: RealFeatures, n: int, seed: int = 0) -> tuple[float, int]:
    """FD between min(n, M) disjoint real images (drawn with ``seed``) and the reference; returns (FD, N used)."""
    rows = _pick(real.floor_features.shape[0], n, np.random.default_rng([seed, 1]))
    mu, sigma = feature_statistics(real.floor_features[rows])
    return frechet_distance(mu, sigma, real.mu, real.sigma), int(len(rows))
