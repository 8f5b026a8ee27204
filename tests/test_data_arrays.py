"""``npz:PATH`` and ``sprites:IMAGES.npy[,LABELS.npy]``: array datasets, their checks and messages."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from tinydiffusion.data import data_root, load_dataset
from tinydiffusion.data.dataset import Dataset
from tinydiffusion.errors import DataWarning, UserError

SPRITE_COUNTS = [8000, 32400, 6000, 35000, 8000]  # shared/data/README.md


def test_npz_with_labels_contexts_and_names(tmp_path):
    path = tmp_path / "set.npz"
    images = np.arange(6 * 4 * 4 * 3, dtype=np.uint8).reshape(6, 4, 4, 3)
    contexts = np.eye(3, dtype=np.float64)[[0, 1, 2, 0, 1, 2]] * 0.5
    np.savez(path, images=images, labels=np.array([0, 1, 2, 0, 1, 2], np.int32), contexts=contexts,
             class_names=np.array(["a", "b", "c"]))
    d = load_dataset(f"npz:{path}")
    np.testing.assert_array_equal(d.images, images)
    assert d.labels.dtype == np.int64 and d.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert d.contexts.dtype == np.float32 and d.contexts.shape == (6, 3)
    assert d.class_names == ["a", "b", "c"] and d.name == f"npz:{path}"
    assert d.facts() == {"channels": 3, "image_size": 4, "num_classes": 3, "context_dim": 3}


def test_npz_grey_float_images_are_scaled_to_uint8(tmp_path):
    path = tmp_path / "float.npz"
    np.savez(path, images=np.array([[[0.0, 0.5], [1.0, 0.2]]]))
    d = load_dataset(f"npz:{path}")
    assert d.images.shape == (1, 2, 2, 1) and d.images[0, :, :, 0].tolist() == [[0, 128], [255, 51]]


def test_npz_rgba_is_composited_on_the_background(tmp_path):
    path = tmp_path / "rgba.npz"
    rgba = np.zeros((1, 2, 2, 4), np.uint8)
    rgba[0, 0, 0] = (255, 0, 0, 255)  # opaque red; the other pixels are transparent
    np.savez(path, images=rgba)
    d = load_dataset(f"npz:{path}", background=(0, 0, 255))
    assert tuple(d.images[0, 0, 0]) == (255, 0, 0) and tuple(d.images[0, 1, 1]) == (0, 0, 255)


def test_npz_resize_and_channels(tmp_path):
    path = tmp_path / "big.npz"
    np.savez(path, images=np.full((3, 8, 8, 3), 90, np.uint8))
    d = load_dataset(f"npz:{path}", image_size=4, channels=1)
    assert d.images.shape == (3, 4, 4, 1) and (d.images == 90).all()


def test_npz_without_images_names_what_it_has(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, pictures=np.zeros((2, 4, 4), np.uint8), labels=np.zeros(2, np.int64))
    with pytest.raises(UserError) as error:
        load_dataset(f"npz:{path}")
    assert str(error.value) == f"{path} has no 'images' array (it has: labels, pictures); " \
                               "save the images under the name 'images'"


def test_npz_labels_of_the_wrong_length(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=np.zeros((5, 4, 4), np.uint8), labels=np.zeros(4, np.int64))
    with pytest.raises(UserError) as error:
        load_dataset(f"npz:{path}")
    assert str(error.value) == f"{path}: 'labels' has 4 entries but there are 5 images; give one label per image"


@pytest.mark.parametrize("arrays, message", [
    (dict(images=np.zeros((2, 4, 4, 2), np.uint8)),
     "images must have shape (N, H, W) or (N, H, W, C) with C = 1, 3 or 4, got (2, 4, 4, 2)"),
    (dict(images=np.full((2, 4, 4), 1.5)), "float images must lie in [0, 1], got values from 1.5 to 1.5"),
    (dict(images=np.full((2, 4, 4), 300, np.int32)), "integer images must lie in 0..255, got 300..300"),
    (dict(images=np.zeros((2, 4, 4), np.uint8), labels=np.array([0.0, 1.0])),
     "'labels' must be non-negative integers, got float64"),
    (dict(images=np.zeros((2, 4, 4), np.uint8), contexts=np.zeros((3, 5))),
     "'contexts' has shape (3, 5) but there are 2 images; give one (K,) context vector per image"),
    (dict(images=np.zeros((2, 4, 4), np.uint8), labels=np.array([0, 3]), class_names=np.array(["a", "b"])),
     "labels go up to 3 but 'class_names' has only 2 names"),
])
def test_npz_content_mistakes(tmp_path, arrays, message):
    path = tmp_path / "x.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError) as error:
        load_dataset(f"npz:{path}")
    assert str(error.value) == f"{path}: {message}"


def test_npz_file_mistakes(tmp_path):
    with pytest.raises(UserError) as error:
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")
    assert str(error.value) == f"{tmp_path / 'missing.npz'} does not exist"
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(UserError) as error:
        load_dataset(f"npz:{text}")
    assert str(error.value) == f"{text} is not a readable .npz file (not a zip archive); write it with numpy.savez"
    objects = tmp_path / "objects.npz"
    np.savez(objects, images=np.array([None, 1], dtype=object))
    with pytest.raises(UserError, match=r"holds Python objects"):
        load_dataset(f"npz:{objects}")


@pytest.fixture(scope="module")
def sprite_labels() -> Path:
    path = data_root() / "sprites" / "sprite_labels_nc_1788_16x16.npy"
    if not path.exists():
        pytest.skip(f"the course's sprite labels are not in {path.parent}")
    return path


def test_sprites_with_the_real_labels_file(tmp_path, sprite_labels):
    """The course's images file is unavailable: a synthetic one of the right shape stands in."""
    images = tmp_path / "sprites_1788_16x16.npy"
    pixels = np.broadcast_to((np.arange(89_400) % 251).astype(np.uint8)[:, None, None, None], (89_400, 16, 16, 3))
    np.save(images, pixels)
    d = load_dataset(f"sprites:{images},{sprite_labels}")
    assert d.images.shape == (89_400, 16, 16, 3) and d.images[1000, 3, 3, 2] == 1000 % 251
    assert d.contexts.shape == (89_400, 5) and d.contexts.dtype == np.float32 and d.labels is None
    assert d.class_names == ["hero", "non-hero", "food", "spell", "side-facing"]
    assert np.bincount(d.condition_values("class")).tolist() == SPRITE_COUNTS  # argmax of the one-hot rows
    np.testing.assert_array_equal(d.condition_values("context"), np.load(sprite_labels).astype(np.float32))
    assert d.facts() == {"channels": 3, "image_size": 16, "num_classes": 5, "context_dim": 5}
    assert d.facts("context") == {"channels": 3, "image_size": 16, "context_dim": 5}
    assert "ElvGames" in d.credit


def test_sprites_images_only_and_mismatched_labels(tmp_path):
    images = tmp_path / "img.npy"
    np.save(images, np.zeros((10, 16, 16, 3), np.uint8))
    d = load_dataset(f"sprites:{images}")
    assert len(d) == 10 and d.contexts is None and d.facts() == {"channels": 3, "image_size": 16}
    labels = tmp_path / "lab.npy"
    np.save(labels, np.eye(5)[[0, 1, 2, 3, 4, 0, 1]])
    with pytest.raises(UserError) as error:
        load_dataset(f"sprites:{images},{labels}")
    assert str(error.value) == (f"{labels}: 'labels' has shape (7, 5) but there are 10 images; "
                                "give one (K,) context vector per image")


def test_sparse_unnamed_labels_warn_and_named_ones_do_not() -> None:
    images = np.zeros((3, 4, 4, 1), np.uint8)
    with pytest.warns(DataWarning, match="the labels use 2 of the 51 class ids 0..50"):
        Dataset("stray", images=images, labels=np.array([0, 0, 50]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Dataset("subset", images=images, labels=np.array([0, 0, 50]), class_names=[str(i) for i in range(51)])
