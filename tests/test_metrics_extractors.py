"""Feature extractors: the shipped classifiers' accuracy, Inception without weights, user-supplied networks."""

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from tinydiffusion.data import load_dataset
from tinydiffusion.errors import UserError
from tinydiffusion.metrics import default_extractor_for, get_extractor, images_to_tensor
from tinydiffusion.metrics.features import INCEPTION_HELP, shipped_weights_path

ROOT = Path(__file__).resolve().parents[1]

# test accuracies documented in docs/metrics.md (native size, 16 px); the tests allow a small margin
# because they use a few hundred test images, not the whole test set
DOCUMENTED = {"fashion-mnist": (0.93, 0.91), "mnist": (0.99, 0.99), "dcss-tiles": (0.89, 0.88)}
MARGIN = 0.04
N_TEST = 500


def _test_images(name: str, size: int | None):
    """A few hundred held-out images (and labels) of the extractor's dataset at ``size``."""
    if name == "dcss-tiles":
        spec = importlib.util.spec_from_file_location("train_fx", ROOT / "scripts" / "train_feature_extractors.py")
        script = importlib.util.module_from_spec(spec)
        sys.modules.setdefault("train_fx", script)  # dataclasses look their module up while the script runs
        spec.loader.exec_module(script)
        data = load_dataset("dcss-tiles", image_size=size or 32)
        held_out = np.flatnonzero(script.stratified_holdout(data.labels, 0.2, 0))[:N_TEST]
        return data.images[held_out], data.labels[held_out]
    data = load_dataset(name, split="test", image_size=size, n=N_TEST, seed=1)
    return data.images, data.labels


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_shipped_extractor_loads_and_classifies_held_out_images(name):
    path = shipped_weights_path(name)
    assert path.stat().st_size < 1_500_000  # small enough to ship in the wheel
    extractor = get_extractor(name)
    meta = extractor.metadata
    assert meta["dataset"] == name and extractor.name == name
    assert int(meta["feature_dim"]) == 128 and int(meta["input_size"]) in (28, 32)
    native, low = DOCUMENTED[name]
    assert float(meta["test_accuracy"]) >= native and float(meta["test_accuracy_16px"]) >= low
    for size, documented in ((None, native), (16, low)):
        images, labels = _test_images(name, size)
        x = images_to_tensor(images)
        features = extractor.features(x)
        assert features.shape == (len(images), 128) and torch.isfinite(features).all()
        accuracy = float((extractor.logits(x).argmax(1).numpy() == labels).mean())
        assert accuracy >= documented - MARGIN, (name, size, accuracy)


def test_default_extractors_for_dataset_names():
    assert default_extractor_for("fashion-mnist-mini") == "fashion-mnist"
    assert default_extractor_for("mnist") == "mnist"
    assert default_extractor_for("dcss-tiles") == "dcss-tiles"
    assert default_extractor_for("folder:/tmp/cats") is None


def test_grey_extractor_refuses_rgb_images():
    with pytest.raises(UserError) as e:
        get_extractor("fashion-mnist").features(torch.zeros(2, 3, 16, 16))
    assert str(e.value) == ("feature extractor 'fashion-mnist' takes 1-channel images but got 3-channel ones; "
                            "choose features that match the data")


def test_inception_without_weights_is_a_user_error_and_never_downloads():
    with pytest.raises(UserError) as e:
        get_extractor("inception")
    assert str(e.value) == INCEPTION_HELP
    assert str(e.value) == ("features 'inception' needs a local weights file, as in inception:/path/to/"
                            "weights-inception-2015-12-05-6726825d.pth (tinydiffusion never downloads weights)")
    with pytest.raises(UserError, match=r"^Inception weights file /no/such/file.pth does not exist; features"):
        get_extractor("inception:/no/such/file.pth")


def test_inception_needs_torch_fidelity(tmp_path, monkeypatch):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"not really weights")
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # makes the import fail
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)
    with pytest.raises(UserError) as e:
        get_extractor(f"inception:{weights}")
    assert str(e.value) == ("features 'inception' needs the torch-fidelity package (pip install torch-fidelity), "
                            "or use the shipped features")


def test_inception_adapter_feeds_torch_fidelity_uint8_rgb(tmp_path, monkeypatch):
    """The adapter's contract with torch-fidelity, checked against a stand-in for its network."""
    seen = {}

    class StandIn(torch.nn.Module):
        def __init__(self, name, features_list, feature_extractor_weights_path=None):
            super().__init__()
            seen.update(name=name, features_list=features_list, path=feature_extractor_weights_path)

        def forward(self, x):
            seen["dtype"], seen["shape"], seen["max"] = x.dtype, tuple(x.shape), int(x.max())
            return (x.float().mean(dim=(2, 3)).repeat(1, 4),)

    module = types.ModuleType("torch_fidelity.feature_extractor_inceptionv3")
    module.FeatureExtractorInceptionV3 = StandIn
    monkeypatch.setitem(sys.modules, "torch_fidelity", types.ModuleType("torch_fidelity"))
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", module)
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    extractor = get_extractor(f"inception:{weights}")
    features = extractor.features(torch.ones(3, 1, 16, 16))  # white grey images
    assert seen == {"name": "inception-v3-compat", "features_list": ["2048"], "path": str(weights),
                    "dtype": torch.uint8, "shape": (3, 3, 16, 16), "max": 255}
    assert features.shape == (3, 12) and extractor.name == "inception"


def test_user_supplied_python_extractor(tmp_path, monkeypatch):
    source = (
        "import torch\n"
        "class MeanStd(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.stack([x.mean(dim=(1, 2, 3)), x.std(dim=(1, 2, 3))], dim=1)\n"
        "def build():\n"
        "    return MeanStd()\n"
        "def not_a_module():\n"
        "    return 42\n"
        "def wrong_shape():\n"
        "    return torch.nn.Identity()\n"
    )
    (tmp_path / "my_features.py").write_text(source)
    x = torch.linspace(-1, 1, 2 * 1 * 4 * 4).reshape(2, 1, 4, 4)
    expected = torch.stack([x.mean(dim=(1, 2, 3)), x.std(dim=(1, 2, 3))], dim=1)

    by_file = get_extractor(f"python:{tmp_path / 'my_features.py'}:build")
    torch.testing.assert_close(by_file.features(x), expected)
    monkeypatch.syspath_prepend(str(tmp_path))
    by_module = get_extractor("python:my_features:build")
    assert by_module.name == "python:my_features:build"
    torch.testing.assert_close(by_module.features(x), expected)
    with pytest.raises(UserError, match="^feature extractor 'python:my_features:build' has no classifier head"):
        by_module.logits(x)
    with pytest.raises(UserError, match="^features 'python:my_features:not_a_module' must return a torch.nn.Module"):
        get_extractor("python:my_features:not_a_module")
    with pytest.raises(UserError, match="must return features of shape \\(N, d\\), got \\(2, 1, 4, 4\\)"):
        get_extractor("python:my_features:wrong_shape").features(x)
    with pytest.raises(UserError, match="^'my_features' has no callable 'missing'"):
        get_extractor("python:my_features:missing")
    with pytest.raises(UserError, match="^cannot import 'no_such_module_xyz'"):
        get_extractor("python:no_such_module_xyz:build")


def test_unknown_features_name():
    with pytest.raises(UserError) as e:
        get_extractor("vgg16")
    assert str(e.value) == ("unknown features 'vgg16'; use one of fashion-mnist, mnist, dcss-tiles, "
                            "inception:/path/to/weights.pth or python:module:callable")


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_shipped_class_names_are_the_dataset_class_names(name):
    assert get_extractor(name).class_names == load_dataset(name, split="train", n=10).class_names
