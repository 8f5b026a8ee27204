"""Sample grids for people: one labelled row per class, tiles enlarged to at least 64 px, a caption.

The rules every picture of samples follows (``tinydiffusion sample``, ``show``, the report, the
training previews):

* images of one class sit in one row named by the class; a class with more images than fit a row
  (``max_cols``) continues on the next rows, named once; no row holds a lone leftover image of another class;
* when there are fewer images than classes (every image its own class), the grid is near-square and
  each tile carries its class name underneath;
* unconditional samples fill a near-square grid;
* tiles are enlarged by an integer factor, nearest neighbour, to at least :data:`~.grid.MIN_TILE` pixels;
* a caption under the grid says how the samples were made (sampler, network calls, guidance, seed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from .grid import image_table, make_grid, tile_scale, to_image
from .text import FONT_SIZE, add_text

#: The most images in one row of a class before it continues on the next row.
MAX_COLS = 12


def label_names(cond: np.ndarray | Sequence | None, class_names: Sequence[str]) -> list[str] | None:
    """A text label per sample from its condition: the class name of a class id or of a one-hot context;
    a mixed context as its non-zero entries, e.g. ``"hero 1, food 0.6"``. None without conditions."""
    if cond is None:
        return None
    cond = np.asarray(cond)
    if cond.ndim == 1:
        return [class_names[int(c)] if 0 <= int(c) < len(class_names) else str(int(c)) for c in cond]
    names = list(class_names) + [str(i) for i in range(len(class_names), cond.shape[1])]
    out = []
    for row in cond:
        nonzero = np.flatnonzero(row)
        if len(nonzero) == 1 and row[nonzero[0]] == 1:
            out.append(names[nonzero[0]])
        else:
            out.append(", ".join(f"{names[i]} {row[i]:g}" for i in nonzero) or "no context")
    return out


def sampling_caption(sampler: str, calls: int, guidance: float | None = None, seed: int | None = None,
                     extra: str | None = None) -> str:
    """``"dpm++ · 20 network calls · guidance 2 · seed 0"``: how a set of samples was made."""
    parts = [sampler, f"{calls:,} network call{'s' if calls != 1 else ''}"]
    if guidance is not None:
        parts.append(f"guidance {guidance:g}")
    if seed is not None:
        parts.append(f"seed {seed}")
    if extra:
        parts.append(extra)
    return " · ".join(parts)


def _runs(labels: Sequence[str]) -> list[tuple[str, int, int]]:
    """(label, start, stop) of every run of equal consecutive labels."""
    runs: list[tuple[str, int, int]] = []
    for i, name in enumerate(labels):
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1], i + 1)
        else:
            runs.append((name, i, i + 1))
    return runs


def sample_grid(images: np.ndarray, labels: Sequence[str] | None = None, *, caption: str | None = None,
                title: str | None = None, scale: int | None = None, max_cols: int = MAX_COLS,
                background: int = 255) -> Image.Image:
    """Lay out uint8 (N, H, W, C) images by the rules of the module docstring.

    ``labels`` holds one name per image (class-major, as :meth:`tinydiffusion.Run.conditions` orders
    them); ``scale`` defaults to :func:`~.grid.tile_scale` of the image size; ``title`` goes above the
    grid and ``caption`` below it.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"expected uint8 images shaped (N, H, W, C), got {images.shape}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    scale = scale or tile_scale(max(images.shape[1:3]))
    near_square = math.ceil(math.sqrt(len(images)))

    def grid(block: np.ndarray, cols: int) -> np.ndarray:
        return make_grid(block, nrow=cols, scale=scale, pad_value=background)

    runs = _runs(labels) if labels is not None else []
    if labels is None:
        picture = to_image(grid(images, near_square))
    elif len(runs) == 1:  # one class: a near-square grid under its name
        picture = to_image(grid(images, near_square))
        title = f"{runs[0][0]}" + (f" — {title}" if title else "")
    elif all(stop - start == 1 for _, start, stop in runs):  # fewer images than classes: name every tile
        picture = tile_table([grid(images[i:i + 1], 1) for i in range(len(images))], labels, near_square,
                             background=background)
    else:  # one block of rows per class, named on its first row
        cols = min(max(stop - start for _, start, stop in runs), max_cols)
        cells, names = [], []
        for name, start, stop in runs:
            for k, first in enumerate(range(start, stop, cols)):
                line = grid(images[first:min(first + cols, stop)], cols)
                cells.append([_pad_right(line, cols, images.shape[2] * scale, background)])
                names.append(name if k == 0 else "")
        picture = image_table(cells, names, background=background, gap=2)
    return add_text(picture, above=title, below=caption, background=background)


def tile_table(tiles: Sequence[np.ndarray | Image.Image], labels: Sequence[str], ncols: int, *,
               background: int = 255, size: int = FONT_SIZE) -> Image.Image:
    """Tiles in rows of ``ncols``, each with its (possibly multi-line) label underneath in ``size``-pixel text."""
    if len(tiles) != len(labels) or not tiles:
        raise ValueError(f"{len(labels)} labels for {len(tiles)} tiles")
    cells = [add_text(to_image(t), below=name, size=size, background=background) for t, name in zip(tiles, labels)]
    return image_table([cells[k:k + ncols] for k in range(0, len(cells), ncols)], background=background, gap=2)


def _pad_right(line: np.ndarray, cols: int, tile_w: int, background: int) -> np.ndarray:
    """A row of fewer than ``cols`` tiles widened with background to the width of a full row."""
    full = cols * tile_w + (cols + 1)
    return np.pad(line, ((0, 0), (0, full - line.shape[1]), (0, 0)), constant_values=background)
