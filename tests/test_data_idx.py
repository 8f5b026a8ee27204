"""MNIST and Fashion-MNIST from idx files: real data from the data root, md5 checks, and downloads
from a local HTTP server (atomic, md5-checked, a clear line when offline)."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinydiffusion.data import data_root, load_dataset
from tinydiffusion.data.idx import IDX_SOURCES, download, load_idx, read_idx
from tinydiffusion.errors import UserError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def root() -> Path:
    """The data root holding the real idx files (TINYDIFFUSION_DATA=/work/shared/data in this project)."""
    path = data_root()
    if not all((path / s.folder / f).exists() for s in IDX_SOURCES.values() for f, _ in s.files.values()):
        pytest.skip(f"the MNIST / Fashion-MNIST idx files are not in {path}")
    return path


@pytest.mark.parametrize("name, split, counts", [
    ("fashion-mnist", "train", [6000] * 10),
    ("fashion-mnist", "test", [1000] * 10),
    ("mnist", "train", MNIST_TRAIN_COUNTS),
    ("mnist", "test", MNIST_TEST_COUNTS),
])
def test_real_files_load_with_published_shapes_and_class_counts(root, name, split, counts):
    d = load_dataset(name, split=split)
    n = sum(counts)
    assert d.images.shape == (n, 28, 28, 1) and d.images.dtype == np.uint8
    assert d.labels.shape == (n,) and d.labels.dtype == np.int64
    assert np.bincount(d.labels).tolist() == counts
    assert d.facts() == {"channels": 1, "image_size": 28, "num_classes": 10}
    assert len(d.class_names) == 10 and d.kind == "image"
    assert 0 < d.images.mean() < 255


def test_fashion_mnist_class_names_and_credit(root):
    d = load_dataset("fashion-mnist", split="test")
    assert d.class_names == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert "Zalando" in d.credit and "MIT" in d.credit


def test_split_all_is_train_then_test(root):
    both = load_dataset("mnist", split="all")
    test = load_dataset("mnist", split="test")
    assert len(both) == 70_000
    np.testing.assert_array_equal(both.images[60_000:], test.images)
    np.testing.assert_array_equal(both.labels[60_000:], test.labels)


def test_image_size_is_pillow_bilinear_per_image(root):
    """Seed 000 resized with torchvision's Resize on PIL images, i.e. Image.resize(BILINEAR)."""
    small = load_dataset("fashion-mnist", split="test", image_size=16)
    full = load_dataset("fashion-mnist", split="test")
    assert small.images.shape == (10_000, 16, 16, 1)
    for i in (0, 1, 9_999):
        expected = Image.fromarray(full.images[i, :, :, 0]).resize((16, 16), Image.Resampling.BILINEAR)
        np.testing.assert_array_equal(small.images[i, :, :, 0], np.asarray(expected))


def test_unknown_split_is_a_clear_error(root):
    with pytest.raises(UserError, match=r"^mnist has splits train, test, all, not 'valid'$"):
        load_dataset("mnist", split="valid")


def _copy_split(root: Path, dest: Path, name: str = "mnist", split: str = "test") -> dict[str, Path]:
    """Copy the idx files of one split into ``dest/<folder>``; returns part → copied path."""
    source = IDX_SOURCES[name]
    (dest / source.folder).mkdir(parents=True, exist_ok=True)
    out = {}
    for part in ("images", "labels"):
        file, _ = source.files[(split, part)]
        out[part] = Path(shutil.copy(root / source.folder / file, dest / source.folder / file))
    return out


def _flip_byte(path: Path, offset: int = 100) -> str:
    """Flip one byte of ``path`` in place; returns the new md5."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return hashlib.md5(bytes(data)).hexdigest()


def test_a_flipped_byte_fails_the_md5_check_with_one_clear_line(root, tmp_path):
    files = _copy_split(root, tmp_path)
    got = _flip_byte(files["labels"])
    expected = "ec29112dd5afa0611ce80d1b7f02629c"
    message = (f"{files['labels']} failed its md5 check (expected {expected}, got {got}); "
               "delete it so that it is downloaded again")
    with pytest.raises(UserError) as error:
        load_dataset("mnist", split="test", root=tmp_path)
    assert str(error.value) == message


def test_read_idx_rejects_a_file_whose_header_disagrees_with_its_size(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes(3))
    with pytest.raises(UserError, match=r"holds 3 bytes but its header says \(5,\)"):
        read_idx(path)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on an ephemeral port serving ``tmp_path/served``; yields (folder, URL)."""
    served = tmp_path / "served"
    served.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_missing_files_are_downloaded_into_the_root_and_load(root, tmp_path, server):
    served, url = server
    for path in _copy_split(root, tmp_path / "copy").values():
        shutil.copy(path, served / path.name)
    cache = tmp_path / "cache"
    images, labels = load_idx("mnist", "test", cache, mirrors=[url])
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                                  "t10k-labels-idx1-ubyte.gz"]
    assert images.shape == (10_000, 28, 28, 1) and np.bincount(labels).tolist() == MNIST_TEST_COUNTS
    again = load_dataset("mnist", split="test", root=cache)  # now from disk, md5-checked
    np.testing.assert_array_equal(again.images, images)


def _tiny_idx(folder: Path) -> tuple[Path, str]:
    """A gzipped idx file of 6 labels in ``folder``; returns its path and md5."""
    path = folder / "tiny-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (6).to_bytes(4, "big") + bytes([3, 1, 4, 1, 5, 9]))
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_a_corrupt_download_fails_the_md5_check_and_leaves_nothing_behind(tmp_path, server):
    served, url = server
    path, md5 = _tiny_idx(served)
    got = _flip_byte(path, offset=20)
    cache = tmp_path / "cache" / "mnist"
    with pytest.raises(UserError) as error:
        download(path.name, cache, md5, [url])
    assert str(error.value) == (f"{path.name} downloaded from {url}{path.name} failed its md5 check "
                                f"(expected {md5}, got {got}); nothing was saved")
    assert not cache.exists(), "the folder made for the download should be removed again"


def test_the_next_mirror_is_tried_after_a_missing_file(tmp_path, server):
    served, url = server
    path, md5 = _tiny_idx(served)
    (served / "empty").mkdir()
    got = download(path.name, tmp_path / "cache", md5, [url + "empty/", url])
    assert got == tmp_path / "cache" / path.name and got.read_bytes() == path.read_bytes()
    assert read_idx(got).tolist() == [3, 1, 4, 1, 5, 9]


def test_offline_and_missing_names_the_file_and_where_to_put_it(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path / "mnist"
    url = f"http://127.0.0.1:{port}/t10k-labels-idx1-ubyte.gz"
    expected = (re.escape(f"t10k-labels-idx1-ubyte.gz is missing from {folder} and could not be downloaded ({url}: ")
                + ".+" + re.escape("); put the file there, or set TINYDIFFUSION_DATA to a folder that has "
                                   "mnist/t10k-labels-idx1-ubyte.gz"))
    with pytest.raises(UserError) as error:
        download("t10k-labels-idx1-ubyte.gz", folder, "ec29112dd5afa0611ce80d1b7f02629c",
                 [f"http://127.0.0.1:{port}/"], timeout=2)
    assert re.fullmatch(expected, str(error.value)), str(error.value)
    assert "\n" not in str(error.value)
    assert not folder.exists(), "a folder made for a failed download is removed again (offline: nothing is created)"
