"""``npz:PATH`` and ``sprites:IMAGES.npy[,LABELS.npy]``: datasets stored as numpy arrays.

An ``.npz`` holds ``images`` — (N, H, W) or (N, H, W, C) with C ∈ {1, 3, 4}, uint8 (or any integer
type with values 0..255), or float in [0, 1] (scaled by 255 and rounded) — and optionally
``labels`` (N,) non-negative integers, ``contexts`` (N, K) floats and ``class_names`` (strings).
4-channel images are RGBA and are composited onto ``background``.

The sprites format is the DeepLearning.AI course's (seed 002): ``sprites_1788_16x16.npy`` with
(N, 16, 16, 3) uint8 images and ``sprite_labels_nc_1788_16x16.npy`` with (N, 5) one-hot float
context vectors in the order hero, non-hero, food, spell, side-facing. A relative path names a file
in the current folder or, failing that, in the data root's ``sprites/`` folder, where the course's
files live beside each other (the project's data root ships the labels; the images are not
distributed with tinydiffusion).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import UserError
from .root import data_root_origin

SPRITE_CLASS_NAMES = ["hero", "non-hero", "food", "spell", "side-facing"]
SPRITES_CREDIT = ("Sprites from DeepLearning.AI's \"How Diffusion Models Work\" by ElvGames, FrootsnVeggies and "
                  "kyrise; education and research use with attribution")


def _existing(path: str) -> Path:
    """``path`` with ~ expanded; a UserError when it is not a file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    return p


def as_uint8_images(array: np.ndarray, source: str, background: tuple[int, int, int]) -> np.ndarray:
    """Validate user images and return them as uint8 (N, H, W, C) with C ∈ {1, 3}."""
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[3] not in (1, 3, 4):
        raise UserError(f"{source}: images must have shape (N, H, W) or (N, H, W, C) with C = 1, 3 or 4, "
                        f"got {array.shape}")
    if len(array) == 0:
        raise UserError(f"{source}: images is empty")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise UserError(f"{source}: float images must lie in [0, 1], but some values are NaN or infinite")
        if array.min() < 0 or array.max() > 1:
            raise UserError(f"{source}: float images must lie in [0, 1], got values from "
                            f"{array.min():g} to {array.max():g}")
        array = np.rint(array * 255).astype(np.uint8)
    elif array.dtype.kind in "iu":
        if array.dtype != np.uint8 and (array.min() < 0 or array.max() > 255):
            raise UserError(f"{source}: integer images must lie in 0..255, got {array.min()}..{array.max()}")
        array = array.astype(np.uint8, copy=False)
    else:
        raise UserError(f"{source}: images must be uint8 or float, got {array.dtype}")
    if array.shape[3] == 4:
        alpha = array[..., 3:].astype(np.float64) / 255
        rgb = array[..., :3] * alpha + np.asarray(background, dtype=np.float64) * (1 - alpha)
        array = np.rint(rgb).astype(np.uint8)
    return np.ascontiguousarray(array)


def check_labels(labels: np.ndarray, n: int, source: str) -> np.ndarray:
    """Validate user labels: (n,) non-negative integers; returned as int64."""
    if labels.ndim != 1 or len(labels) != n:
        raise UserError(f"{source}: 'labels' has {labels.shape[0] if labels.ndim else 0} entries but there are "
                        f"{n} images; give one label per image")
    if labels.dtype.kind not in "iu" or (n and labels.min() < 0):
        raise UserError(f"{source}: 'labels' must be non-negative integers, got {labels.dtype}")
    return labels.astype(np.int64)


def check_contexts(contexts: np.ndarray, n: int, source: str, what: str = "contexts") -> np.ndarray:
    """Validate user context vectors: (n, K) finite numbers; returned as float32."""
    if contexts.ndim != 2 or len(contexts) != n:
        raise UserError(f"{source}: '{what}' has shape {contexts.shape} but there are {n} images; "
                        "give one (K,) context vector per image")
    if contexts.dtype.kind not in "fiub" or not np.isfinite(contexts).all():
        raise UserError(f"{source}: '{what}' must be finite numbers, got {contexts.dtype}")
    return contexts.astype(np.float32)


def load_npz(path: str, background: tuple[int, int, int]) -> dict[str, object]:
    """Images, labels, contexts and class names from an .npz file (the keys Dataset takes)."""
    file = _existing(path)
    if not zipfile.is_zipfile(file):
        raise UserError(f"{file} is not a readable .npz file (not a zip archive); write it with numpy.savez")
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as e:
        raise UserError(f"{file}: an array holds Python objects, which are not loaded ({e}); "
                        "save plain numeric and string arrays") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise UserError(f"{file} is not a readable .npz file ({e})") from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # numpy hands back the raw bytes of a member that is not .npy
            raise UserError(f"{file}: {key!r} is not a numpy array; write the file with numpy.savez")
    if "images" not in arrays:
        raise UserError(f"{file} has no 'images' array (it has: {', '.join(sorted(arrays)) or 'nothing'}); "
                        "save the images under the name 'images'")
    images = as_uint8_images(arrays["images"], str(file), background)
    n = len(images)
    out: dict[str, object] = {"images": images}
    if "labels" in arrays:
        out["labels"] = check_labels(arrays["labels"], n, str(file))
    if "contexts" in arrays:
        out["contexts"] = check_contexts(arrays["contexts"], n, str(file))
    if "class_names" in arrays:
        names = [str(c) for c in np.asarray(arrays["class_names"]).reshape(-1)]
        labels = out.get("labels")
        if labels is not None and n and labels.max() >= len(names):
            raise UserError(f"{file}: labels go up to {labels.max()} but 'class_names' has only {len(names)} names")
        out["class_names"] = names
    return out


SPRITE_FILES = "sprites_1788_16x16.npy and sprite_labels_nc_1788_16x16.npy"


def find_sprite_file(path: str, root: Path) -> Path:
    """A ``sprites:`` path: as given when absolute; else in the current folder, else in ``root/sprites/``.

    A file found nowhere is one UserError that says where it looked, what the data root is and how
    to supply the course's files.
    """
    given = Path(path).expanduser()
    places = [given] if given.is_absolute() else [Path.cwd() / given, root / "sprites" / given]
    for place in places:
        if place.is_file():
            return place
    looked = " and ".join(str(p) for p in places)
    raise UserError(f"{given.name} not found: looked in {looked} (data root {root}, {data_root_origin()}); "
                    f"the course's sprite images are not shipped with tinydiffusion: copy {SPRITE_FILES} from "
                    f"DeepLearning.AI's \"How Diffusion Models Work\" into {root / 'sprites'}, or give their paths "
                    "with --data sprites:IMAGES.npy,LABELS.npy")


def load_sprites(spec: str, root: Path) -> dict[str, object]:
    """Images and context vectors in the DeepLearning.AI sprites format: ``IMAGES.npy[,LABELS.npy]``.

    Relative paths are found by :func:`find_sprite_file` (the current folder, then ``root/sprites/``).
    """
    paths = [p.strip() for p in spec.split(",")]
    if len(paths) > 2 or not paths[0]:
        raise UserError(f"sprites:{spec} should name an images .npy file and optionally a labels .npy file, "
                        "like sprites:sprites_1788_16x16.npy,sprite_labels_nc_1788_16x16.npy")
    files = [find_sprite_file(p, root) for p in paths]
    images = as_uint8_images(_load_npy(str(files[0])), str(files[0]), (255, 255, 255))
    out: dict[str, object] = {"images": images}
    if len(paths) == 2:
        contexts = check_contexts(_load_npy(str(files[1])), len(images), str(files[1]), what="labels")
        out["contexts"] = contexts
        if contexts.shape[1] == len(SPRITE_CLASS_NAMES):
            out["class_names"] = list(SPRITE_CLASS_NAMES)
    return out


def _load_npy(path: str) -> np.ndarray:
    """One .npy array, with a UserError for a missing or unreadable file."""
    file = _existing(path)
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{file} is not a readable .npy array ({e})") from None
