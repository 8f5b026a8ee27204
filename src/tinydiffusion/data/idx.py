"""MNIST and Fashion-MNIST from their standard gzipped idx files, md5-checked, downloaded when missing.

The idx format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header ``0, 0, type,
ndim`` (type 0x08 = unsigned byte), then ``ndim`` big-endian int32 sizes, then the bytes. Images are
(N, 28, 28), labels (N,). Files are checked against their published md5 (the values torchvision and
the Fashion-MNIST repository list) before use; a missing file is downloaded into the data root from
its canonical mirrors into a temporary file that is renamed only after its md5 matched.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .root import ENV_VAR

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 15.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class IdxSource:
    """One idx dataset: its data-root folder, mirrors, files with md5s, class names and credit."""

    folder: str
    mirrors: tuple[str, ...]
    files: dict[tuple[str, str], tuple[str, str]]  #: (split, "images"|"labels") → (file name, md5)
    class_names: tuple[str, ...]
    credit: str


IDX_SOURCES: dict[str, IdxSource] = {
    "mnist": IdxSource(
        folder="mnist",
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        files={
            ("train", "images"): ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            ("train", "labels"): ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            ("test", "images"): ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            ("test", "labels"): ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        },
        class_names=tuple(str(d) for d in range(10)),
        credit="MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0",
    ),
    "fashion-mnist": IdxSource(
        folder="fashion-mnist",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        files={
            ("train", "images"): ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("train", "labels"): ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ("test", "images"): ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            ("test", "labels"): ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        },
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        credit="Fashion-MNIST by Zalando Research (Xiao, Rasul and Vollgraf 2017), MIT licence",
    ),
}

SPLITS = ("train", "test", "all")  # "all" = train then test, as seed 000's loader concatenated them


def md5sum(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path: Path, expected: str) -> None:
    """Raise the one-line corrupt-file UserError unless ``path`` has md5 ``expected``."""
    got = md5sum(path)
    if got != expected:
        raise UserError(f"{path} failed its md5 check (expected {expected}, got {got}); "
                        "delete it so that it is downloaded again")


def download(name: str, folder: Path, md5: str, mirrors: Sequence[str], *,
             timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch file ``name`` from the first mirror that serves it with md5 ``md5`` into ``folder``.

    Each mirror URL is joined with ``name``. The bytes go to a temporary file in ``folder`` that is
    renamed to ``folder/name`` only when its md5 matches, so an interrupted or corrupt download never
    leaves a file behind, and folders created for it are removed again when nothing could be fetched
    (offline, a missing data root stays missing). Raises a UserError naming the file: the md5 message
    when a mirror served wrong bytes, else the missing-file message with the last network error.
    """
    target = folder / name
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{name} is missing and {folder} cannot be created to download it into "
                        f"({e.strerror or e}); set {ENV_VAR} to a writable folder, or one that has "
                        f"{folder.name}/{name}") from None
    bad_md5: str | None = None
    reason = "no mirror given"
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        log.info("downloading %s", url)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        try:
            digest = hashlib.md5()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            got = digest.hexdigest()
            if got == md5:
                os.replace(tmp, target)
                return target
            bad_md5 = (f"{name} downloaded from {url} failed its md5 check (expected {md5}, got {got}); "
                       "nothing was saved")
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = f"{url}: {getattr(e, 'reason', e)}"
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    _remove_empty(created)
    if bad_md5 is not None:
        raise UserError(bad_md5)
    raise UserError(f"{name} is missing from {folder} and could not be downloaded ({reason}); "
                    f"put the file there, or set {ENV_VAR} to a folder that has {folder.name}/{name}")


def _remove_empty(folders: Sequence[Path]) -> None:
    """Remove folders made for a download that failed (deepest first; stops at one that is not empty)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (someone else wrote there meanwhile) or not ours to remove: keep it
            return


def ensure_file(source: IdxSource, split: str, part: str, root: Path,
                mirrors: Sequence[str] | None = None) -> Path:
    """The md5-checked path of one idx file under ``root``, downloading it first when it is missing."""
    name, md5 = source.files[(split, part)]
    for folder in (root, root / source.folder):
        if folder.exists() and not folder.is_dir():
            raise UserError(f"the data folder {folder} is a file, not a folder; set {ENV_VAR} to a folder that "
                            f"holds {source.folder}/ (or remove the file)")
    path = root / source.folder / name
    if not path.exists():
        return download(name, root / source.folder, md5, source.mirrors if mirrors is None else mirrors)
    check_md5(path, md5)
    return path


def read_idx(path: Path) -> np.ndarray:
    """Decode a gzipped idx file of unsigned bytes into a uint8 array of the shape its header gives."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path} is not an idx file of unsigned bytes; delete it so that it is downloaded again")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)):
        raise UserError(f"{path} holds {len(raw) - offset} bytes but its header says {shape}; "
                        "delete it so that it is downloaded again")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def load_idx(name: str, split: str, root: Path,
             mirrors: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28, 1) and labels int64 (N,) of dataset ``name`` ("mnist" or "fashion-mnist").

    ``split`` is "train", "test" or "all" (train followed by test).
    """
    if split not in SPLITS:
        raise UserError(f"{name} has splits {', '.join(SPLITS)}, not {split!r}")
    if split == "all":
        parts = [load_idx(name, s, root, mirrors) for s in ("train", "test")]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    source = IDX_SOURCES[name]
    images = read_idx(ensure_file(source, split, "images", root, mirrors))
    labels = read_idx(ensure_file(source, split, "labels", root, mirrors))
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise UserError(f"{name} {split}: images {images.shape} and labels {labels.shape} do not match")
    return images[..., None].copy(), labels.astype(np.int64)
