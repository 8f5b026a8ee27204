"""Image grids: tensors in [-1, 1] to uint8, grids of a batch, and labelled tables of grids.

Every picture the package writes goes through :func:`to_uint8` and :func:`make_grid`, so a sample
grid, a GIF frame and a report image show the same pixels for the same tensor.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from ..errors import UserError
from ..files import atomic_write, ensure_folder
from .text import draw_text, ink_for, text_size

#: Space in pixels between a label and its images, and around the labels of :func:`image_table`.
LABEL_MARGIN = 4
#: Pictures for people enlarge small images to at least this many pixels per side (see :func:`tile_scale`).
MIN_TILE = 64


def to_uint8(x: Tensor) -> np.ndarray:
    """Map images in [-1, 1] to uint8: a float (B, C, H, W) tensor becomes a (B, H, W, C) array.

    The map is fixed, round((x + 1) · 127.5) after clamping to [-1, 1]: −1 is 0, 1 is 255, and values
    outside the range saturate. Seed 003 min-max normalised every image before showing it, which
    stretches any output to full contrast and so hides a model whose samples drift out of [-1, 1] or
    collapse to grey; a fixed map shows that drift. NaN (a diverged model) shows as mid-grey.
    """
    if x.dim() != 4:
        raise ValueError(f"to_uint8 expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    x = torch.nan_to_num(x.detach().float().cpu(), nan=0.0).clamp(-1, 1)
    return ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _check_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected uint8 images shaped (N, H, W, 1 or 3), got {images.dtype} {images.shape}")
    if images.shape[0] == 0:
        raise ValueError("cannot make a grid of zero images")
    return images


def make_grid(images: np.ndarray, nrow: int | None = None, padding: int = 1, pad_value: int = 255,
              scale: int = 1) -> np.ndarray:
    """Tile N images (uint8, (N, H, W, C)) into one (H', W', C) array, row-major.

    Each image is first enlarged ``scale`` times by pixel repetition (nearest neighbour), so pixel art
    stays sharp. Images fill rows of ``ncol = min(nrow, N)`` from the top left (``nrow`` defaults to
    ceil(√N)); there are ceil(N / ncol) rows. ``padding`` pixels of ``pad_value`` separate the images
    and surround the whole grid, and fill unused cells of the last row, so
    H' = rows · H · scale + (rows + 1) · padding and W' = ncol · W · scale + (ncol + 1) · padding.
    """
    images = _check_batch(images)
    if scale < 1 or padding < 0:
        raise ValueError(f"scale must be >= 1 and padding >= 0, got scale={scale}, padding={padding}")
    n, h, w, c = images.shape
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
        h, w = h * scale, w * scale
    ncol = min(nrow if nrow is not None else math.ceil(math.sqrt(n)), n)
    if ncol < 1:
        raise ValueError(f"nrow must be at least 1, got {nrow}")
    rows = math.ceil(n / ncol)
    out = np.full((rows * h + (rows + 1) * padding, ncol * w + (ncol + 1) * padding, c), pad_value, np.uint8)
    for k in range(n):
        top = padding + (k // ncol) * (h + padding)
        left = padding + (k % ncol) * (w + padding)
        out[top:top + h, left:left + w] = images[k]
    return out


def to_image(array: np.ndarray | Image.Image) -> Image.Image:
    """A PIL image from a uint8 (H, W), (H, W, 1) or (H, W, 3) array: mode "L" for one channel, "RGB" for three."""
    if isinstance(array, Image.Image):
        return array
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3)):
        raise ValueError(f"expected a uint8 image shaped (H, W), (H, W, 1) or (H, W, 3), got {array.dtype} "
                         f"{array.shape}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return Image.fromarray(np.ascontiguousarray(array), mode="L" if array.ndim == 2 else "RGB")


def save_image(image: np.ndarray | Image.Image, path: str | Path) -> Path:
    """Write a uint8 array (see :func:`to_image`) or a PIL image; the format follows the suffix (.png, .gif, …).

    Missing parent folders are created; the file is replaced atomically. Returns the path written.
    """
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise UserError(f"{path}: unknown image file type {path.suffix!r}; use .png")
    buffer = io.BytesIO()
    to_image(image).save(buffer, format=image_format)
    ensure_folder(path.parent)
    atomic_write(path, buffer.getvalue())
    return path


def tile_scale(size: int, min_tile: int = MIN_TILE) -> int:
    """The integer enlargement that makes a ``size``-pixel image at least ``min_tile`` pixels (16 px → 4×)."""
    return max(1, math.ceil(min_tile / max(int(size), 1)))


def image_table(cells: Sequence[Sequence[np.ndarray | Image.Image]], row_names: Sequence[str] | None = None,
                col_names: Sequence[str] | None = None, *, gap: int = LABEL_MARGIN,
                background: int = 255) -> Image.Image:
    """Lay out images as a table with optional row names in a left margin and column names on top.

    ``cells[i][j]`` is the image in row i, column j (uint8 arrays or PIL images; rows may be of
    different lengths). Each column is as wide as its widest cell or name, each row as tall as its
    tallest cell or name; cells sit centred in their slot, ``gap`` pixels apart. Names may have several lines;
    they are drawn with the figure font (:mod:`.text`), black on a light ``background`` and white on a
    dark one. The result is "RGB" when any cell is in colour, "L" otherwise.
    """
    images = [[to_image(c) for c in row] for row in cells]
    if not images or not any(images):
        raise ValueError("image_table needs at least one image")
    if row_names is not None and len(row_names) != len(images):
        raise ValueError(f"{len(row_names)} row names for {len(images)} rows")
    ncols = max(len(row) for row in images)
    if col_names is not None and len(col_names) != ncols:
        raise ValueError(f"{len(col_names)} column names for {ncols} columns")
    mode = "RGB" if any(im.mode != "L" for row in images for im in row) else "L"
    col_w = []
    for j in range(ncols):
        widths = [row[j].width for row in images if j < len(row)]
        col_w.append(max(widths + ([text_size(col_names[j])[0]] if col_names else [])))
    row_h = [max([im.height for im in row] + ([text_size(row_names[i])[1]] if row_names else []))
             for i, row in enumerate(images)]
    label_w = max((text_size(name)[0] for name in row_names), default=0) + gap if row_names else 0
    head_h = max(text_size(name)[1] for name in col_names) + gap if col_names else 0
    width = gap + label_w + sum(col_w) + gap * ncols
    height = gap + head_h + sum(row_h) + gap * len(images)
    colour = background if mode == "L" else (background,) * 3
    ink = ink_for(background)
    fill = ink if mode == "L" else (ink,) * 3
    out = Image.new(mode, (width, height), colour)
    draw = ImageDraw.Draw(out)
    x0 = gap + label_w
    if col_names:
        left = x0
        for name, w in zip(col_names, col_w):
            draw_text(draw, (left + (w - text_size(name)[0]) // 2, gap), name, fill=fill, align="center")
            left += w + gap
    top = gap + head_h
    for i, row in enumerate(images):
        if row_names:
            th = text_size(row_names[i])[1]
            draw_text(draw, (gap, top + (row_h[i] - th) // 2), row_names[i], fill=fill)
        left = x0
        for j, im in enumerate(row):
            out.paste(im.convert(mode), (left + (col_w[j] - im.width) // 2, top + (row_h[i] - im.height) // 2))
            left += col_w[j] + gap
        top += row_h[i] + gap
    return out


def labelled_grid(rows: Sequence[np.ndarray], row_names: Sequence[str] | None = None, *, scale: int = 1,
                  padding: int = 1, pad_value: int = 255) -> Image.Image:
    """One line of images per entry of ``rows`` (uint8 (n_i, H, W, C) each), named in a left margin.

    The figure of samples per class: ``rows[k]`` holds the images of class k and ``row_names[k]`` its
    name. Each line is :func:`make_grid` with all n_i images side by side; lines with fewer images are
    left-aligned; lines are ``LABEL_MARGIN`` pixels apart. Returns a PIL image ("L" for one channel,
    "RGB" for three).
    """
    if len(rows) == 0:
        raise ValueError("labelled_grid needs at least one row of images")
    lines = [make_grid(r, nrow=len(r), padding=padding, pad_value=pad_value, scale=scale) for r in rows]
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=pad_value) for line in lines]
    return image_table([[line] for line in lines], row_names, background=pad_value)
