"""``folder:PATH``: a folder of image files, with class sub-folders as labels.

Layout rules:

* Image files are .png, .jpg, .jpeg, .webp and .bmp, in any letter case. Names starting with "." are
  ignored (hidden files, editor droppings); every other file that is not a readable image is skipped
  with one DataWarning saying which file and why.
* When PATH has sub-folders holding images, each first-level sub-folder is a class (labels follow the
  sorted folder names) and deeper folders belong to their first-level class; images lying directly
  in PATH are then skipped with a warning. Without such sub-folders the images are unlabelled.
* Modes: grey sources are "1", "L", "LA" and 16-bit "I;16"/"I" (scaled by 255/65535); RGB, CMYK,
  YCbCr and palettes are colour. Images with alpha (RGBA, LA, palettes with a transparent colour)
  are composited onto ``background``. The output has 1 channel when every source is grey (converted
  with Pillow's "L", exact for grey pixels), else 3; ``channels`` forces either. JPEG EXIF
  orientation is applied.
* Sizes: with ``image_size`` every image is made square (centre-cropped with ``center_crop``, else
  stretched, with one warning) and resized with ``resize_filter``; without it all images must share
  one square size.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataWarning, UserError
from .pixels import centre_square, resize_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N"}


@dataclass
class _Found:
    """The files of a folder: (path, class index or None) pairs, class names, and files to skip."""

    files: list[tuple[Path, int | None]] = field(default_factory=list)
    class_names: list[str] | None = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)


class _Skip(Exception):
    """A file that is not a usable image; the message says why."""


def is_image_name(path: Path) -> bool:
    """True for file names with an image extension (case-insensitive)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _visible_files(folder: Path) -> list[Path]:
    """All non-hidden files under ``folder`` (recursively, not entering hidden folders), sorted."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append(path)
    return out


def _scan(root: Path) -> _Found:
    """Sort the files of ``root`` into labelled/unlabelled images and files to skip."""
    found = _Found()
    files = _visible_files(root)
    classes = sorted({f.relative_to(root).parts[0] for f in files
                      if len(f.relative_to(root).parts) > 1 and is_image_name(f)})
    if not classes:
        found.files = [(p, None) for p in files]
        return found
    found.class_names = classes
    label_of = {name: i for i, name in enumerate(classes)}
    for path in files:
        parts = path.relative_to(root).parts
        if len(parts) == 1:
            found.skipped.append((path, "lies outside the class folders"))
        elif parts[0] not in label_of:
            found.skipped.append((path, f"lies in {parts[0]}/, a folder with no images"))
    for name in classes:
        found.files += [(p, label_of[name]) for p in files if p.relative_to(root).parts[0] == name]
    return found


def _flatten(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """``image`` as mode "L" (plain grey sources) or "RGB", alpha composited onto ``background``."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        wide = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(wide * (255 / 65535)), 0, 255).astype(np.uint8), "L")
    if image.mode in ("1", "L"):
        return image.convert("L")
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        canvas = Image.new("RGBA", image.size, tuple(background) + (255,))
        return Image.alpha_composite(canvas, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def _read(path: Path, background: tuple[int, int, int]) -> tuple[Image.Image, bool]:
    """Open one file: the flattened image and whether its source was grey. Raises _Skip."""
    if not is_image_name(path):
        raise _Skip(f"not an image file (extension {path.suffix or 'none'!r})")
    if path.stat().st_size == 0:
        raise _Skip("empty file")
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise _Skip(f"not a readable image ({e})") from None
    grey = image.mode in _GREY_MODES
    return _flatten(image, background), grey


def load_folder(path: str, *, image_size: int | None, channels: int | None, center_crop: bool,
                filter_name: str, background: tuple[int, int, int],
                strict: bool) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Images uint8 (N, S, S, C), labels int64 (N,) or None, and class names of the image folder ``path``."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"folder {root} does not exist")
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; folder:PATH needs a folder of images")
    found = _scan(root)
    candidates = [p for p, _ in found.files]
    if not any(map(is_image_name, candidates)):
        raise UserError(f"{root} has no images (looked for {', '.join(IMAGE_EXTENSIONS)} files)")

    def skip(file: Path, why: str) -> None:
        rel = file.relative_to(root)
        if strict:
            raise UserError(f"{root}: {rel}: {why} (strict mode stops at the first bad file)")
        warnings.warn(f"skipped {rel}: {why}", DataWarning, stacklevel=4)

    for file, why in found.skipped:
        skip(file, why)
    images: list[Image.Image] = []
    labels: list[int] = []
    all_grey = True
    for file, label in found.files:
        try:
            image, grey = _read(file, background)
        except _Skip as e:
            skip(file, str(e))
            continue
        images.append(image)
        labels.append(-1 if label is None else label)
        all_grey &= grey
    total = len(found.files) + len(found.skipped)
    if not images:
        raise UserError(f"{root} has no readable images ({total} files skipped)")
    if len(images) < total:
        warnings.warn(f"{root}: kept {len(images)} of {total} files ({total - len(images)} skipped)",
                      DataWarning, stacklevel=3)
    out_mode = "L" if (channels or (1 if all_grey else 3)) == 1 else "RGB"
    pixels = _uniform(images, root, image_size, center_crop, filter_name)
    array = np.stack([np.asarray(im.convert(out_mode)) for im in pixels])
    array = array.reshape(array.shape[:3] + (1 if out_mode == "L" else 3,))
    if found.class_names is None:
        return array, None, None
    return array, np.asarray(labels, dtype=np.int64), found.class_names


def _uniform(images: list[Image.Image], root: Path, image_size: int | None, center_crop: bool,
             filter_name: str) -> list[Image.Image]:
    """The images cropped/stretched to squares of one size (``image_size`` when given)."""
    if center_crop:
        images = [im.crop(centre_square(*im.size)) if im.width != im.height else im for im in images]
    if image_size is None:
        sizes = sorted({im.size for im in images})
        if len(sizes) > 1 or sizes[0][0] != sizes[0][1]:
            shown = " and ".join(f"{w}x{h}" for w, h in sizes[:2])
            raise UserError(f"images in {root} are not all one square size ({shown}"
                            f"{', …' if len(sizes) > 2 else ''}); set image_size to resize them")
        return images
    stretched = sum(im.width != im.height for im in images)
    if stretched:
        warnings.warn(f"{root}: {stretched} images are not square and were stretched to "
                      f"{image_size}x{image_size} (set center_crop to crop them instead)", DataWarning, stacklevel=4)
    return [resize_image(im, image_size, filter_name) for im in images]
