"""Animated GIFs with exact per-frame timing, and subsampling of long trajectories."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from ..errors import UserError
from ..files import atomic_write, ensure_folder
from .grid import to_image

#: The shortest frame delay browsers honour; shorter delays are shown as 100 ms by most of them.
MIN_DURATION_MS = 20

Item = TypeVar("Item")


def subsample_indices(n: int, k: int) -> list[int]:
    """At most ``k`` indices into a sequence of ``n``, evenly spaced, always including 0 and n − 1.

    The indices are round(linspace(0, n − 1, k)) without repeats, so with k ≥ n every index is kept.
    """
    if n < 1:
        raise UserError("there are no frames to choose from")
    if k < 2 and n > 1:
        raise UserError(f"keeping the first and the last frame needs at least 2 frames, got {k}")
    if k >= n:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, k).round()})


def subsample(frames: Sequence[Item], k: int) -> list[Item]:
    """At most ``k`` items of ``frames``, evenly spaced, keeping the first and the last (:func:`subsample_indices`)."""
    return [frames[i] for i in subsample_indices(len(frames), k)]


def _same_size(images: list[Image.Image], background: int = 255) -> list[Image.Image]:
    """Every image on a canvas of the largest width and height, at the top left."""
    width, height = max(im.width for im in images), max(im.height for im in images)
    mode = "RGB" if any(im.mode != "L" for im in images) else "L"
    out = []
    for im in images:
        if im.size == (width, height) and im.mode == mode:
            out.append(im)
            continue
        canvas = Image.new(mode, (width, height), background if mode == "L" else (background,) * 3)
        canvas.paste(im.convert(mode), (0, 0))
        out.append(canvas)
    return out


def save_gif(frames: Sequence[np.ndarray | Image.Image], path: str | Path, *, duration_ms: int = 80,
             final_hold_ms: int | None = 1500, loop: int | None = 0) -> Path:
    """Write ``frames`` (uint8 arrays as in :func:`~tinydiffusion.viz.grid.to_image`, or PIL images) as a GIF.

    Every frame shows for ``duration_ms``, the last one for ``final_hold_ms`` (``None``: like the
    others), so the final image stays on screen before the animation restarts. ``loop=0`` repeats
    forever, ``loop=n`` n more times, ``None`` plays once. GIF stores delays in units of 10 ms, so
    durations are rounded to multiples of 10 ms; they must be at least ``MIN_DURATION_MS``.

    Pillow writes a run of identical consecutive frames as one frame showing for their summed
    durations, which looks and times the same; every other frame is written as given. Frames of one
    channel are written in grey, colour frames with an adaptive 256-colour palette per frame. Frames
    of different sizes (a longer caption on one of them) are placed top-left on a white canvas of the
    largest size. Returns the path written (missing parent folders are created; the file is replaced
    atomically).
    """
    if not frames:
        raise UserError("a GIF needs at least one frame")
    hold = duration_ms if final_hold_ms is None else final_hold_ms
    if min(duration_ms, hold) < MIN_DURATION_MS:
        raise UserError(f"GIF frame durations must be at least {MIN_DURATION_MS} ms, got {min(duration_ms, hold)}")
    images = _same_size([to_image(f) for f in frames])
    durations = [int(round(duration_ms, -1))] * (len(images) - 1) + [int(round(hold, -1))]
    path = Path(path)
    options = {} if loop is None else {"loop": loop}
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations,
                   **options)
    ensure_folder(path.parent)
    atomic_write(path, buffer.getvalue())
    return path
