"""The bundled sets: shapes, classes and names, and that they are exactly what the build script
makes from the real files (Fashion-MNIST subset, DCSS tiles)."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinydiffusion.data import data_root, load_dataset
from tinydiffusion.data.bundled import BUNDLED

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "tinydiffusion" / "assets"
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
TILE_NAMES = ["hero", "monster", "item", "spell_icon", "effect", "terrain"]
TILE_COUNTS = [170, 1134, 766, 523, 440, 1873]  # shared/data/README.md


def _build_script():
    spec = importlib.util.spec_from_file_location("build_bundled_data", REPO / "scripts" / "build_bundled_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("image_size", [None, 16, 28])
def test_fashion_mnist_mini(image_size):
    d = load_dataset("fashion-mnist-mini", image_size=image_size)
    size = image_size or 16
    assert d.images.shape == (10_000, size, size, 1) and d.images.dtype == np.uint8
    assert np.bincount(d.labels).tolist() == [1000] * 10
    assert d.class_names == FASHION_NAMES
    assert "Fashion-MNIST" in d.credit


@pytest.mark.parametrize("image_size", [None, 16, 32])
def test_dcss_tiles(image_size):
    d = load_dataset("dcss-tiles", image_size=image_size)
    size = image_size or 16
    assert d.images.shape == (4906, size, size, 3)
    assert np.bincount(d.labels).tolist() == TILE_COUNTS
    assert d.class_names == TILE_NAMES
    assert d.credit == "Tiles from Dungeon Crawl Stone Soup by the DCSS development team and tile artists, CC0 1.0"
    assert d.facts() == {"channels": 3, "image_size": size, "num_classes": 6}


def test_other_sizes_resize_the_largest_stored_size():
    d = load_dataset("dcss-tiles", image_size=8, resize_filter="nearest", n=3, seed=1)
    large = load_dataset("dcss-tiles", image_size=32, n=3, seed=1)
    np.testing.assert_array_equal(d.labels, large.labels)
    for got, source in zip(d.images, large.images, strict=True):
        expected = Image.fromarray(source).resize((8, 8), Image.Resampling.NEAREST)
        np.testing.assert_array_equal(got, np.asarray(expected))


def test_assets_have_fixed_zip_timestamps():
    for entry in BUNDLED.values():
        with zipfile.ZipFile(ASSETS / entry.file) as zf:
            assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_write_npz_is_byte_reproducible(tmp_path):
    write_npz = _build_script().write_npz
    arrays = {"images_4": np.arange(64, dtype=np.uint8).reshape(1, 4, 4, 4), "class_names": np.array(["a", "b"])}
    write_npz(tmp_path / "a.npz", arrays)
    write_npz(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as npz:
        np.testing.assert_array_equal(npz["images_4"], arrays["images_4"])


@pytest.fixture(scope="module")
def shared() -> Path:
    root = data_root()
    if not (root / "fashion-mnist").is_dir() or not (root / "dcss_tiles").is_dir():
        pytest.skip(f"the shared data folder is not the data root ({root})")
    return root


def test_fashion_mnist_mini_is_the_first_thousand_of_each_class(shared):
    full = load_dataset("fashion-mnist", root=shared)
    with np.load(ASSETS / BUNDLED["fashion-mnist-mini"].file) as npz:
        index, images_28, images_16 = npz["source_index"], npz["images_28"], npz["images_16"]
    expected = np.sort(np.concatenate([np.flatnonzero(full.labels == c)[:1000] for c in range(10)]))
    np.testing.assert_array_equal(index, expected)
    np.testing.assert_array_equal(images_28, full.images[index])
    for i in (0, 4321, 9999):
        small = Image.fromarray(images_28[i, :, :, 0]).resize((16, 16), Image.Resampling.BILINEAR)
        np.testing.assert_array_equal(images_16[i, :, :, 0], np.asarray(small))


def test_bundled_tiles_equal_the_shared_files(shared):
    for size in (16, 32):
        with np.load(shared / "dcss_tiles" / f"dcss_tiles_{size}.npz") as source:
            d = load_dataset("dcss-tiles", image_size=size)
            np.testing.assert_array_equal(d.images, source["images"])
            np.testing.assert_array_equal(d.labels, source["labels"])
            assert d.class_names == source["class_names"].tolist()
