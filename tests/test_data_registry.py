"""The spec registry, load options, the Dataset facts, the data root, channel conversion and the
per-class preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinydiffusion.data import DATASETS, Dataset, data_root, examples_per_class, load_dataset
from tinydiffusion.data.pixels import convert_channels
from tinydiffusion.errors import UserError

KNOWN = ("fashion-mnist, mnist, fashion-mnist-mini, dcss-tiles, folder:PATH, npz:PATH, "
         "sprites:IMAGES.npy[,LABELS.npy], s-curve, moons, swiss-roll, circles, checkerboard")


def test_registry_lists_every_spec_with_one_line_of_help():
    assert ", ".join(f"{k}:{e.argument}" if e.argument else k for k, e in DATASETS.items()) == KNOWN
    for entry in DATASETS.values():
        assert entry.description and "\n" not in entry.description


def test_unknown_spec_lists_the_known_ones():
    with pytest.raises(UserError) as error:
        load_dataset("cifar-10")
    assert str(error.value) == f"unknown dataset 'cifar-10'; known: {KNOWN}"


@pytest.mark.parametrize("kwargs, message", [
    (dict(image_size=0), "image_size must be a whole number of pixels from 1 to 1024, got 0"),
    (dict(image_size=16.5), "image_size must be a whole number of pixels from 1 to 1024, got 16.5"),
    (dict(image_size=4096), "image_size must be a whole number of pixels from 1 to 1024, got 4096"),
    (dict(channels=2), "channels must be 1 (grey) or 3 (RGB), got 2"),
    (dict(resize_filter="bicubic"), "unknown resize_filter 'bicubic'; choose one of bilinear, nearest, lanczos"),
    (dict(n=0), "n must be a positive whole number, got 0"),
    (dict(n=20_000), "n=20000 but fashion-mnist-mini has only 10000 images"),
    (dict(split="test"), "dataset 'fashion-mnist-mini' has no 'test' split; only fashion-mnist and mnist have splits"),
    (dict(background=(0, 0)), "background must be three integers 0..255 (R, G, B), got (0, 0)"),
])
def test_option_mistakes_are_one_line_errors(kwargs, message):
    with pytest.raises(UserError) as error:
        load_dataset("fashion-mnist-mini", **kwargs)
    assert str(error.value) == message


def test_a_name_with_an_argument_it_does_not_take():
    with pytest.raises(UserError) as error:
        load_dataset("moons:x")
    assert str(error.value) == "dataset 'moons' takes no ':' argument, got 'moons:x'"


def test_n_keeps_a_seeded_subset_in_dataset_order():
    full = load_dataset("fashion-mnist-mini")
    a, b, c = (load_dataset("fashion-mnist-mini", n=50, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    keep = np.sort(np.random.default_rng(1).choice(10_000, 50, replace=False))
    np.testing.assert_array_equal(a.images, full.images[keep])
    np.testing.assert_array_equal(a.labels, full.labels[keep])


def test_data_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYDIFFUSION_DATA", str(tmp_path / "d"))
    assert data_root() == tmp_path / "d"
    monkeypatch.delenv("TINYDIFFUSION_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_root() == tmp_path / "cache" / "tinydiffusion"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_root() == Path.home() / ".cache" / "tinydiffusion"


def test_rgb_to_grey_matches_pillow_per_image():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 6, 3), dtype=np.uint8)
    grey = convert_channels(rgb, 1)
    assert grey.shape == (5, 7, 6, 1)
    for i in range(5):
        np.testing.assert_array_equal(grey[i, :, :, 0], np.asarray(Image.fromarray(rgb[i]).convert("L")))
    np.testing.assert_array_equal(convert_channels(grey, 3), np.repeat(grey, 3, axis=3))


def test_facts_by_condition():
    d = Dataset("t", images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.array([0, 2, 1, 2]))
    assert d.facts() == {"channels": 3, "image_size": 8, "num_classes": 3}
    assert d.facts("none") == {"channels": 3, "image_size": 8}
    assert d.facts("class") == {"channels": 3, "image_size": 8, "num_classes": 3}
    assert d.facts("context") == {"channels": 3, "image_size": 8, "context_dim": 3}
    np.testing.assert_array_equal(d.condition_values("context"), np.eye(3, dtype=np.float32)[[0, 2, 1, 2]])
    points = Dataset("p", points=np.zeros((3, 2), np.float32))
    assert points.facts() == {"dim": 2} and points.kind == "points" and len(points) == 3


def test_condition_mistakes():
    plain = Dataset("plain", images=np.zeros((2, 4, 4, 1), np.uint8))
    with pytest.raises(UserError) as error:
        plain.condition_values("class")
    assert str(error.value) == ("dataset 'plain' has no labels, so it cannot train a class-conditional model; "
                                "use condition 'none'")
    with pytest.raises(UserError) as error:
        plain.facts("context")
    assert str(error.value) == ("dataset 'plain' has no labels or context vectors, so it cannot train a "
                                "context-conditional model; use condition 'none'")
    mixed = Dataset("mixed", images=np.zeros((2, 4, 4, 1), np.uint8),
                    contexts=np.array([[1, 0.5], [0, 1]], np.float32))
    with pytest.raises(UserError, match=r"^dataset 'mixed' has context vectors that are not one-hot, .*'context'$"):
        mixed.condition_values("class")
    with pytest.raises(UserError, match=r"^unknown condition 'label'; choose one of none, class, context$"):
        mixed.condition_values("label")


def test_examples_per_class_rows():
    images = np.arange(7, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 1), np.uint8)
    d = Dataset("t", images=images, labels=np.array([0, 1, 0, 2, 0, 0, 1]), class_names=["a", "b", "c", "empty"])
    grid, names = examples_per_class(d, per_class=3, seed=5)
    assert grid.shape == (4, 3, 2, 2, 1) and names == ["a", "b", "c", "empty"]
    assert set(grid[0, :, 0, 0, 0]) <= {0, 2, 4, 5} and len(set(grid[0, :, 0, 0, 0])) == 3
    assert grid[1, :, 0, 0, 0].tolist() == [1, 6, 255]  # two images, then a blank cell
    assert grid[2, :, 0, 0, 0].tolist() == [3, 255, 255]
    assert (grid[3] == 255).all()
    again, _ = examples_per_class(d, per_class=3, seed=5)
    np.testing.assert_array_equal(grid, again)


def test_examples_of_unlabelled_and_point_sets():
    d = Dataset("u", images=np.zeros((20, 3, 3, 3), np.uint8))
    grid, names = examples_per_class(d, per_class=8)
    assert grid.shape == (1, 8, 3, 3, 3) and names == ["examples"]
    tiles, names = examples_per_class(load_dataset("dcss-tiles"), per_class=4)
    assert tiles.shape == (6, 4, 16, 16, 3) and names[0] == "hero"
    with pytest.raises(UserError, match="is a set of 2-D points"):
        examples_per_class(load_dataset("moons", n=10))
