"""Attack: bad data and data folders. Stray labels, hostile ``.npz`` files and a data root that is a file or
missing end in one line and exit 2 before anything is allocated, written or created."""

from __future__ import annotations

import os
import pickle
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from attack import assert_clean_error, attack, run_cli
from conftest import tiny_args
from tinydiffusion.data import idx


class Payload:
    """Unpickling this creates ``path``: the proof that pickled code ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.path, "w"))


def _images(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 8, 8), dtype=np.uint8)


def _write_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _train(spec: str, out: Path) -> list[str]:
    return tiny_args(out, 1, "data.n=8", "data.image_size=8", "model.block_out_channels=[8]") + ["--data", spec]


NPZ_CASES = {
    "label 1e9": ({"labels": np.array([0] * 7 + [10**9])}, "which would make a network with 1,000,000,001 classes"),
    "label 1e5": ({"labels": np.array([0] * 7 + [10**5])}, "100,001 classes, more than the limit of 10,000"),
    "negative label": ({"labels": np.array([0] * 7 + [-1])}, "'labels' must be non-negative integers"),
    "float labels": ({"labels": np.zeros(8)}, "'labels' must be non-negative integers"),
    "too few labels": ({"labels": np.zeros(3, dtype=np.int64)}, "'labels' has 3 entries but there are 8 images"),
    "nan images": ({"images": np.full((8, 8, 8), np.nan)}, "float images must lie in [0, 1]"),
    "5 channels": ({"images": np.zeros((8, 8, 8, 5), np.uint8)}, "images must have shape"),
    "no images": ({"images": np.zeros((0, 8, 8), np.uint8)}, "images is empty"),
    "nan contexts": ({"contexts": np.full((8, 3), np.nan, np.float32)}, "'contexts' must be finite numbers"),
    "class names too few": ({"labels": np.arange(8), "class_names": np.array(["a"])}, "but 'class_names' has only 1"),
}


@attack("data")
@pytest.mark.parametrize("case", list(NPZ_CASES))
def test_bad_npz(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    arrays, needle = NPZ_CASES[case]
    npz = _write_npz(tmp_path / "data.npz", **{"images": _images(), **arrays})
    out = tmp_path / "run"
    code, err = run_cli(_train(f"npz:{npz}", out), capsys)
    assert_clean_error(code, err, needle)
    assert not out.exists()


@attack("data")
def test_the_class_limit_names_how_to_lift_it(tmp_path: Path, capsys: pytest.CaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    npz = _write_npz(tmp_path / "data.npz", images=_images(), labels=np.array([0] * 7 + [20]))
    monkeypatch.setenv("TINYDIFFUSION_MAX_CLASSES", "16")
    code, err = run_cli(_train(f"npz:{npz}", tmp_path / "run"), capsys)
    assert_clean_error(code, err, "21 classes, more than the limit of 16", "set TINYDIFFUSION_MAX_CLASSES")


@attack("data")
@pytest.mark.parametrize("how", ["object array", "pickle renamed to npz", "pickled array inside a zip"])
def test_pickled_data_is_never_unpickled(how: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "payload-ran"
    npz = tmp_path / "data.npz"
    if how == "object array":
        np.savez(npz, images=_images(), labels=np.array([Payload(marker)] * 8, dtype=object))
    elif how == "pickle renamed to npz":
        npz.write_bytes(pickle.dumps(Payload(marker)))
    else:
        with zipfile.ZipFile(npz, "w") as z:
            z.writestr("images.npy", pickle.dumps(Payload(marker)))
    code, err = run_cli(_train(f"npz:{npz}", tmp_path / "run"), capsys)
    assert_clean_error(code, err, str(npz))
    assert not marker.exists(), "the payload ran"


@attack("data")
@pytest.mark.parametrize("how", ["truncated", "empty", "not a zip"])
def test_damaged_npz(how: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    npz = _write_npz(tmp_path / "data.npz", images=_images())
    data = npz.read_bytes()
    npz.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "not a zip": b"hello"}[how])
    code, err = run_cli(_train(f"npz:{npz}", tmp_path / "run"), capsys)
    assert_clean_error(code, err, "is not a readable .npz file")


@attack("data")
def test_data_root_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data-root"
    root.write_text("not a folder")
    monkeypatch.setenv("TINYDIFFUSION_DATA", str(root))
    code, err = run_cli(_train("mnist", tmp_path / "run"), capsys)
    assert_clean_error(code, err, f"the data folder {root} is a file", "set TINYDIFFUSION_DATA to a folder")
    assert root.read_text() == "not a folder"


@attack("data")
def test_a_missing_data_root_is_not_created_offline(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):  # noqa: ANN002, ANN003
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(idx.urllib.request, "urlopen", offline)
    root = tmp_path / "missing" / "root"
    monkeypatch.setenv("TINYDIFFUSION_DATA", str(root))
    code, err = run_cli(_train("fashion-mnist", tmp_path / "run"), capsys)
    assert_clean_error(code, err, "is missing from", "could not be downloaded", "no network")
    assert sorted(os.listdir(tmp_path)) == [], "neither the data root nor the run folder may be created"


@attack("data")
@pytest.mark.parametrize("spec, needle", [
    ("imagenet", "unknown dataset"),
    ("npz:/no/such.npz", "/no/such.npz does not exist"),
    ("folder:/no/such/folder", "/no/such/folder"),
    ("sprites:", "must be followed by ':'"),
    ("mnist:x", "takes no ':' argument"),
])
def test_bad_data_specs(spec: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(_train(spec, tmp_path / "run"), capsys)
    assert_clean_error(code, err, needle)
    assert not (tmp_path / "run").exists()
