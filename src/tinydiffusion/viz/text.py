"""Text inside pictures: one font, measured and drawn the same way by every figure.

The font is DejaVu Sans, which matplotlib (a dependency) ships in its package data and which has the
Greek letters and combining marks the figures use (ᾱ, x̂₀, ε, β, σ). It is found on disk without
importing matplotlib. Where it is missing, Pillow's built-in font is used (Pillow ≥ 10.1 scales it),
and the symbols it lacks are spelled out in ASCII (ᾱ → "abar", x̂₀ → "x0_hat", …).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

#: Point size of labels and captions; small figures stay readable at 1:1 on a screen.
FONT_SIZE = 13
#: Space in pixels around text.
TEXT_MARGIN = 4

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

#: What the fallback font writes instead of the symbols it does not have.
_ASCII = {"ᾱ": "abar", "x̂₀": "x0_hat", "x̂": "x_hat", "ε": "eps", "β": "beta", "σ": "sigma", "√": "sqrt",
          "—": "-", "–": "-", "×": "x", "₀": "0", "ₜ": "t", "→": "->", "≈": "~", "≥": ">="}


@functools.cache
def _dejavu() -> Path | None:
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return path
    return None


@functools.cache
def font(size: int = FONT_SIZE) -> Font:
    """The figure font at ``size`` pixels (cached)."""
    path = _dejavu()
    return ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size=size)


def displayable(text: str) -> str:
    """``text`` as the figure font can draw it (unchanged with DejaVu Sans, ASCII spellings otherwise)."""
    if _dejavu() is not None:
        return text
    for symbol, plain in _ASCII.items():
        text = text.replace(symbol, plain)
    return text


_MEASURE = ImageDraw.Draw(Image.new("L", (1, 1)))


def text_size(text: str, size: int = FONT_SIZE) -> tuple[int, int]:
    """Width and height in pixels of (possibly multi-line) ``text`` drawn from its top-left corner."""
    if not text:
        return 0, 0
    left, top, right, bottom = _MEASURE.multiline_textbbox((0, 0), displayable(text), font=font(size), spacing=2)
    return int(right - min(left, 0)) + 1, int(bottom) + 1


def draw_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, *, size: int = FONT_SIZE,
              fill: int | tuple[int, ...] = 0, align: str = "left") -> None:
    """Draw (possibly multi-line) ``text`` with its top-left corner at ``xy``."""
    draw.multiline_text(xy, displayable(text), font=font(size), fill=fill, spacing=2, align=align)


def ink_for(background: int) -> int:
    """Black text on a light background, white on a dark one."""
    return 0 if background >= 128 else 255


def add_text(image: Image.Image, *, above: str | None = None, below: str | None = None, size: int = FONT_SIZE,
             background: int = 255) -> Image.Image:
    """``image`` with a line (or lines) of text above and/or below it, left-aligned, widened to fit the text."""
    strips = {k: v for k, v in (("above", above), ("below", below)) if v}
    if not strips:
        return image
    sizes = {k: text_size(v, size) for k, v in strips.items()}
    width = max([image.width] + [w + 2 * TEXT_MARGIN for w, _ in sizes.values()])
    heights = {k: h + 2 * TEXT_MARGIN for k, (_, h) in sizes.items()}
    top = heights.get("above", 0)
    fill = background if image.mode == "L" else (background,) * 3
    out = Image.new(image.mode, (width, top + image.height + heights.get("below", 0)), fill)
    out.paste(image, (0, top))
    draw = ImageDraw.Draw(out)
    ink = ink_for(background) if image.mode == "L" else (ink_for(background),) * 3
    if "above" in strips:
        draw_text(draw, (TEXT_MARGIN, TEXT_MARGIN), strips["above"], size=size, fill=ink)
    if "below" in strips:
        draw_text(draw, (TEXT_MARGIN, top + image.height + TEXT_MARGIN), strips["below"], size=size, fill=ink)
    return out
