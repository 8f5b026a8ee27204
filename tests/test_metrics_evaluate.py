"""evaluate_images end to end on real data: real vs real sits at the floor, blur raises FD step by step."""

import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from tinydiffusion.data import Dataset, load_dataset
from tinydiffusion.errors import UserError
from tinydiffusion.metrics import Extractor, evaluate_images
from tinydiffusion.metrics.reference import real_features
from tinydiffusion.metrics.features import get_extractor

N = 1000
REFERENCE_N = 2000
KEYS = {"fd", "fd_floor", "kid", "kid_se", "precision", "recall", "class_accuracy", "features", "n", "reference",
        "seed"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("metrics-cache")


@pytest.fixture(scope="module")
def fashion_test():
    return load_dataset("fashion-mnist", split="test", n=N, seed=3)


def _blur(images: np.ndarray, radius: float) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im[:, :, 0]).filter(ImageFilter.GaussianBlur(radius)))[:, :, None]
                     for im in images])


def _evaluate(images, cache, **kwargs):
    return evaluate_images(images, reference="fashion-mnist", image_size=images.shape[1], reference_n=REFERENCE_N,
                           cache_dir=cache, kid_subsets=20, **kwargs)


def test_real_images_score_at_the_floor_and_blur_raises_fd_monotonically(cache, fashion_test):
    real = _evaluate(fashion_test.images, cache, labels=fashion_test.labels)
    assert set(real) == KEYS
    assert json.loads(json.dumps(real)) == real
    assert real["features"] == "fashion-mnist" and real["n"] == N and real["seed"] == 0
    assert real["reference"] == {"dataset": "fashion-mnist", "split": "train", "image_size": 28, "n": REFERENCE_N,
                                 "floor_split": "test", "floor_n": N, "precision_recall_n": N}
    assert real["fd"] < 1.5 * real["fd_floor"]
    assert abs(real["kid"]) < 4 * real["kid_se"] + 1e-3
    assert real["precision"] > 0.6 and real["recall"] > 0.6
    assert real["class_accuracy"] > 0.85

    fds, kids = [real["fd"]], [real["kid"]]
    # the extractors are trained to ignore a 16-px round trip, so mild blur barely moves them; these
    # Gaussian radii (in 28-px pixels) go from just beyond that to a smear
    for radius in (1.0, 1.5, 2.0):
        blurred = _evaluate(_blur(fashion_test.images, radius), cache)
        assert blurred["class_accuracy"] is None
        fds.append(blurred["fd"])
        kids.append(blurred["kid"])
    assert all(a < b for a, b in zip(fds, fds[1:])), fds
    assert all(a < b for a, b in zip(kids, kids[1:])), kids
    assert fds[1] > 2 * real["fd_floor"] and fds[3] > 20 * real["fd_floor"]
    assert real["precision"] > blurred["precision"] and real["recall"] > blurred["recall"]


def test_wrong_labels_lower_class_accuracy(cache, fashion_test):
    wrong = (fashion_test.labels + 1) % 10
    scores = _evaluate(fashion_test.images, cache, labels=wrong)
    assert scores["class_accuracy"] < 0.1


def test_sixteen_pixel_samples_against_the_sixteen_pixel_floor(cache):
    real16 = load_dataset("fashion-mnist", split="test", image_size=16, n=N, seed=4)
    scores = _evaluate(real16.images, cache, labels=real16.labels)
    assert scores["reference"]["image_size"] == 16
    assert scores["fd"] < 1.5 * scores["fd_floor"]
    assert scores["class_accuracy"] > 0.8


def test_reference_features_are_cached_and_a_broken_cache_is_recomputed(tmp_path, monkeypatch):
    calls = []
    original = Extractor.features

    def counting(self, x):
        calls.append(len(x))
        return original(self, x)

    monkeypatch.setattr(Extractor, "features", counting)
    extractor = get_extractor("dcss-tiles")
    first = real_features("dcss-tiles", image_size=16, extractor=extractor, reference_n=300, cache_dir=tmp_path)
    assert calls == [300, 300] and first.split == "first half" and first.floor_split == "second half"
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    second = real_features("dcss-tiles", image_size=16, extractor=extractor, reference_n=300, cache_dir=tmp_path)
    assert calls == [300, 300]
    np.testing.assert_array_equal(first.features, second.features)
    files[0].write_bytes(b"truncated")
    third = real_features("dcss-tiles", image_size=16, extractor=extractor, reference_n=300, cache_dir=tmp_path)
    assert calls == [300, 300, 300, 300]
    np.testing.assert_array_equal(first.features, third.features)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]


def test_a_loaded_dataset_is_halved_and_the_floor_reports_its_n(tmp_path):
    tiles = load_dataset("dcss-tiles", image_size=16)
    fake = tiles.images[::-7][:200]
    scores = evaluate_images(fake, reference=tiles, image_size=16, labels=tiles.labels[::-7][:200],
                             reference_n=400, cache_dir=tmp_path, kid_subsets=10)
    assert scores["features"] == "dcss-tiles"
    assert scores["reference"]["split"] == "first half" and scores["reference"]["n"] == 400
    assert scores["reference"]["floor_n"] == 200
    assert scores["class_accuracy"] > 0.7


def test_user_mistakes_are_one_line_errors(tmp_path):
    images = np.zeros((20, 16, 16, 1), np.uint8)
    with pytest.raises(UserError) as e:
        evaluate_images(images, reference="folder:/tmp/cats", image_size=16)
    assert str(e.value) == ("no shipped feature extractor fits dataset 'folder:/tmp/cats'; pass --features "
                            "python:module:callable (your own network) or inception:/path/to/weights.pth")
    with pytest.raises(UserError, match=r"^generated images are 16x16 but image_size is 28; evaluate at the size"):
        evaluate_images(images, reference="fashion-mnist", image_size=28)
    with pytest.raises(UserError, match=r"^evaluation needs at least 10 generated images, got 5; raise -n$"):
        evaluate_images(images[:5], reference="fashion-mnist", image_size=16)
    with pytest.raises(UserError, match=r"^generated images must be a uint8 array \(N, H, W, 1\|3\), got float32"):
        evaluate_images(images.astype(np.float32), reference="fashion-mnist", image_size=16)
    with pytest.raises(UserError, match=r"^labels must be integer class ids of shape \(20,\), got int64 \(19,\)$"):
        evaluate_images(images, reference="fashion-mnist", image_size=16, labels=np.zeros(19, np.int64))
    with pytest.raises(UserError) as e:
        evaluate_images(images, reference="dcss-tiles", image_size=16, cache_dir=tmp_path, reference_n=50)
    assert str(e.value) == "generated images have 1 channel(s) but dcss-tiles has 3"


def test_user_features_evaluate_a_dataset_without_a_shipped_extractor(tmp_path):
    (tmp_path / "pixel_stats.py").write_text(
        "import torch\n"
        "class PixelStats(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)\n"
        "def build():\n"
        "    return PixelStats()\n")
    rng = np.random.default_rng(0)
    dark = Dataset("folder:dark", images=rng.integers(0, 100, (60, 8, 8, 3), dtype=np.uint8),
                   labels=np.zeros(60, np.int64), class_names=["dark"])
    features = f"python:{tmp_path / 'pixel_stats.py'}:build"
    same = evaluate_images(rng.integers(0, 100, (30, 8, 8, 3), dtype=np.uint8), reference=dark, image_size=8,
                           labels=np.zeros(30, np.int64), extractor=features, cache_dir=tmp_path, kid_subsets=10)
    bright = evaluate_images(rng.integers(150, 256, (30, 8, 8, 3), dtype=np.uint8), reference=dark, image_size=8,
                             extractor=features, cache_dir=tmp_path, kid_subsets=10)
    assert same["features"] == features and same["class_accuracy"] is None
    assert same["reference"]["split"] == "first half" and same["reference"]["n"] == 30
    assert same["fd"] < 5 * same["fd_floor"] < bright["fd"]
    assert bright["precision"] == 0.0 and bright["recall"] == 0.0
    few = rng.integers(0, 100, (12, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(UserError) as e:
        evaluate_images(few, reference=Dataset("folder:few", images=few), image_size=8, extractor=features,
                        cache_dir=tmp_path)
    assert str(e.value) == "dataset 'folder:few' has 12 images; the metrics need at least 20 real images (two halves)"
