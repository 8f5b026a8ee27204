"""``folder:PATH``: a messy folder of real image files made with Pillow — modes, sizes, class folders,
and files that must be skipped with one warning each (or stop a strict load)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinydiffusion.data import load_dataset
from tinydiffusion.errors import DataWarning, UserError

RED, GREEN = (255, 0, 0), (0, 255, 0)


def _rgba(size: int) -> Image.Image:
    """Opaque red with a fully transparent top-left pixel and a half-transparent one next to it."""
    a = np.zeros((size, size, 4), np.uint8)
    a[...] = (255, 0, 0, 255)
    a[0, 0] = (0, 0, 255, 0)
    a[0, 1] = (0, 0, 0, 128)
    return Image.fromarray(a, "RGBA")


def _palette_with_transparency(size: int) -> Image.Image:
    """Palette image: index 0 (declared transparent) at the top-left, index 1 (blue) elsewhere."""
    im = Image.new("P", (size, size), 1)
    im.putpalette([10, 20, 30, 0, 0, 255] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.info["transparency"] = 0
    return im


def _messy(root: Path) -> Path:
    """Two classes (nested folders inside one), mixed modes and sizes, and 5 files that must be skipped."""
    shirts, shoes = root / "shirts", root / "shoes"
    (shirts / "deeper" / "deepest").mkdir(parents=True)
    shoes.mkdir()
    Image.new("L", (8, 8), 100).save(shirts / "a_grey.png")
    Image.new("RGB", (8, 8), (10, 200, 30)).save(shirts / "b_rgb.bmp")
    _rgba(8).save(shirts / "c_rgba.png")
    _palette_with_transparency(8).save(shirts / "deeper" / "d_palette.png")
    Image.fromarray(np.full((8, 8), 257 * 40, np.uint16)).save(shirts / "deeper" / "deepest" / "e_16bit.png")
    (shirts / "f_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (shirts / "g_empty.PNG").write_bytes(b"")
    Image.new("RGB", (12, 12), (0, 0, 200)).save(shoes / "h_big.JPG", quality=95)
    Image.new("RGB", (8, 8), (5, 5, 5)).save(shoes / "i.webp", lossless=True)
    (shoes / "notes.txt").write_text("not a picture")
    Image.new("RGB", (8, 8)).save(root / "stray.png")
    (root / "docs").mkdir()
    (root / "docs" / "readme.md").write_text("hello")
    (root / ".cache").mkdir()
    Image.new("RGB", (8, 8)).save(root / ".cache" / "hidden.png")
    (root / ".DS_Store").write_bytes(b"junk")
    return root


def _load(path: Path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load_dataset(f"folder:{path}", **kwargs)
    return d, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def test_messy_folder_loads_with_one_warning_per_skipped_file(tmp_path):
    root = _messy(tmp_path / "pics")
    d, messages = _load(root, image_size=8, background=GREEN)
    assert d.class_names == ["shirts", "shoes"]
    assert d.images.shape == (7, 8, 8, 3) and d.images.dtype == np.uint8
    assert d.labels.tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert d.facts() == {"channels": 3, "image_size": 8, "num_classes": 2}
    skipped = [m for m in messages if m.startswith("skipped")]
    assert len(skipped) == 5
    assert "skipped stray.png: lies outside the class folders" in skipped
    assert "skipped docs/readme.md: lies in docs/, a folder with no images" in skipped
    assert "skipped shirts/g_empty.PNG: empty file" in skipped
    assert "skipped shoes/notes.txt: not an image file (extension '.txt')" in skipped
    assert any(m.startswith("skipped shirts/f_corrupt.png: not a readable image (") for m in skipped)
    assert messages[-1] == f"{root}: kept 7 of 12 files (5 skipped)"
    assert len(messages) == 6


def test_modes_are_flattened_onto_the_background(tmp_path):
    root = _messy(tmp_path / "pics")
    d, _ = _load(root, image_size=8, background=GREEN)
    grey, rgb, rgba, palette, wide = d.images[:5]
    assert (grey == 100).all()  # L → the grey value in all three channels
    assert (rgb == (10, 200, 30)).all()
    assert tuple(rgba[0, 0]) == GREEN and tuple(rgba[3, 3]) == RED
    assert tuple(rgba[0, 1]) == (0, 127, 0)  # black at alpha 128/255 over green: round(255·127/255)
    assert tuple(palette[0, 0]) == GREEN and tuple(palette[4, 4]) == (0, 0, 255)
    assert (wide == 40).all()  # 16-bit 257·40 → 40
    big_jpeg = d.images[5]
    assert np.abs(big_jpeg.astype(int) - (0, 0, 200)).max() <= 3  # 12x12 JPEG resized to 8x8


def test_strict_stops_at_the_first_bad_file(tmp_path):
    root = _messy(tmp_path / "pics")
    with pytest.raises(UserError) as error:
        load_dataset(f"folder:{root}", image_size=8, strict=True)
    assert str(error.value) == f"{root}: docs/readme.md: lies in docs/, a folder with no images " \
                               "(strict mode stops at the first bad file)"


def test_grey_folder_gives_one_channel_unless_forced(tmp_path):
    root = tmp_path / "grey"
    root.mkdir()
    Image.new("L", (6, 6), 30).save(root / "a.png")
    Image.fromarray(np.full((6, 6), 65535, np.uint16)).save(root / "b.png")
    la = Image.new("LA", (6, 6), (200, 0))
    la.save(root / "c.png")
    d, messages = _load(root, background=(255, 255, 255))
    assert messages == []
    assert d.images.shape == (3, 6, 6, 1) and d.labels is None and d.class_names is None
    assert d.facts() == {"channels": 1, "image_size": 6}
    assert d.images[:, 0, 0, 0].tolist() == [30, 255, 255]  # the LA image is fully transparent → white
    rgb, _ = _load(root, channels=3)
    assert rgb.images.shape == (3, 6, 6, 3)
    np.testing.assert_array_equal(rgb.images, np.repeat(d.images, 3, axis=3))


def test_colour_forced_to_grey_uses_pillow_luma(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    Image.new("RGB", (4, 4), (200, 100, 50)).save(root / "a.png")
    d, _ = _load(root, channels=1)
    assert d.images.shape == (1, 4, 4, 1)
    assert d.images[0, 0, 0, 0] == Image.new("RGB", (1, 1), (200, 100, 50)).convert("L").getpixel((0, 0))


def test_sizes_must_agree_without_image_size(tmp_path):
    root = tmp_path / "sizes"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(root / "a.png")
    Image.new("RGB", (10, 10)).save(root / "b.png")
    with pytest.raises(UserError) as error:
        load_dataset(f"folder:{root}")
    assert str(error.value) == f"images in {root} are not all one square size (8x8 and 10x10); " \
                               "set image_size to resize them"


def test_non_square_images_are_cropped_or_stretched_with_one_warning(tmp_path):
    root = tmp_path / "wide"
    root.mkdir()
    a = np.zeros((4, 8, 3), np.uint8)
    a[:, 2:6] = 255  # a white centre square between black side bands
    for name in ("a.png", "b.png"):
        Image.fromarray(a).save(root / name)
    cropped, messages = _load(root, center_crop=True)
    assert messages == [] and cropped.images.shape == (2, 4, 4, 3) and (cropped.images == 255).all()
    stretched, messages = _load(root, image_size=4, resize_filter="nearest")
    assert messages == [f"{root}: 2 images are not square and were stretched to 4x4 "
                        "(set center_crop to crop them instead)"]
    np.testing.assert_array_equal(stretched.images[0, 0, :, 0], [0, 255, 255, 0])


def test_folder_mistakes_are_one_line_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(UserError) as error:
        load_dataset(f"folder:{missing}")
    assert str(error.value) == f"folder {missing} does not exist"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError) as error:
        load_dataset(f"folder:{empty}")
    assert str(error.value) == f"{empty} has no images (looked for .png, .jpg, .jpeg, .webp, .bmp files)"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"")
    with pytest.raises(UserError) as error, pytest.warns(DataWarning, match="skipped x.png: empty file"):
        load_dataset(f"folder:{broken}")
    assert str(error.value) == f"{broken} has no readable images (1 files skipped)"


def test_folder_spec_without_a_path_and_a_bare_folder_name(tmp_path):
    with pytest.raises(UserError) as error:
        load_dataset("folder")
    assert str(error.value) == "'folder' must be followed by ':' and PATH, as in folder:PATH"
    with pytest.raises(UserError, match=r"did you mean folder:"):
        load_dataset(str(tmp_path))
