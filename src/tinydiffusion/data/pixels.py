"""Resizing, cropping and channel conversion of uint8 images, all done by Pillow.

Resizing uses Pillow's ``Image.resize``; its bilinear and Lanczos filters widen their support when
shrinking, so they are antialiased. This is what torchvision's ``Resize`` does on PIL images, which is
how seed 000 made its 16×16 Fashion-MNIST; "nearest" keeps pixel art crisp.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from ..errors import DataWarning, UserError

RESIZE_FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}
MAX_IMAGE_SIZE = 1024


def resize_filter(name: str) -> Image.Resampling:
    """The Pillow filter for ``name`` ("bilinear", "nearest" or "lanczos")."""
    try:
        return RESIZE_FILTERS[name]
    except KeyError:
        raise UserError(f"unknown resize_filter {name!r}; choose one of {', '.join(RESIZE_FILTERS)}") from None


def check_image_size(image_size: int | None) -> None:
    """Raise a UserError unless ``image_size`` is None or an integer in 1..MAX_IMAGE_SIZE."""
    if image_size is None:
        return
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
            or not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise UserError(f"image_size must be a whole number of pixels from 1 to {MAX_IMAGE_SIZE}, got {image_size!r}")


def centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of the largest centred square (odd leftovers go right/bottom)."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def resize_image(image: Image.Image, size: int, filter_name: str) -> Image.Image:
    """``image`` resized to size×size with the named filter (unchanged when it already is)."""
    if image.size == (size, size):
        return image
    return image.resize((size, size), resize_filter(filter_name))


def resize_images(images: np.ndarray, size: int, filter_name: str) -> np.ndarray:
    """uint8 (N, H, W, C) → (N, size, size, C), one Pillow resize per image (H ≠ W is stretched)."""
    n, h, w, c = images.shape
    if (h, w) == (size, size):
        return images
    resample = resize_filter(filter_name)
    out = np.empty((n, size, size, c), dtype=np.uint8)
    for i in range(n):
        pil = Image.fromarray(images[i, :, :, 0] if c == 1 else images[i])
        out[i] = np.asarray(pil.resize((size, size), resample)).reshape(size, size, c)
    return out


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (N, H, W, C) with C ∈ {1, 3} → ``channels`` channels.

    Grey → RGB repeats the grey value; RGB → grey is Pillow's "L" conversion (ITU-R 601-2 luma,
    L = 0.299 R + 0.587 G + 0.114 B, rounded), applied to all images at once as one tall picture.
    """
    n, h, w, c = images.shape
    if c == channels:
        return images
    if channels == 3:
        return np.ascontiguousarray(np.repeat(images, 3, axis=3))
    grey = Image.fromarray(np.ascontiguousarray(images).reshape(n * h, w, 3)).convert("L")
    return np.asarray(grey).reshape(n, h, w, 1).copy()


def fit_images(images: np.ndarray, *, image_size: int | None, filter_name: str, center_crop: bool,
               source: str) -> np.ndarray:
    """Make uint8 (N, H, W, C) images square and ``image_size`` big.

    Non-square images are centre-cropped when ``center_crop`` is set, else stretched to a square (with
    one DataWarning), which needs ``image_size``. ``source`` names the data in messages.
    """
    n, h, w, _ = images.shape
    if h != w:
        if center_crop:
            left, top, right, bottom = centre_square(w, h)
            images = np.ascontiguousarray(images[:, top:bottom, left:right])
        elif image_size is None:
            raise UserError(f"{source} has {w}x{h} images, which are not square; set image_size to resize "
                            "them, or center_crop to crop them")
        else:
            warnings.warn(f"{source}: {w}x{h} images were stretched to {image_size}x{image_size} "
                          "(set center_crop to crop them instead)", DataWarning, stacklevel=3)
            return resize_images(images, image_size, filter_name)
    if image_size is not None:
        images = resize_images(images, image_size, filter_name)
    return images

