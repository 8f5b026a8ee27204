"""Build the bundled data sets in ``src/tinydiffusion/assets`` from the real files in ``shared/data``.

    python scripts/build_bundled_data.py [SHARED_DATA]      # default: ../shared/data next to the repo

Writes

* ``fashion_mnist_mini.npz``: the first 1,000 images of each class of the Fashion-MNIST training
  split, in file order (10,000 images): ``images_28`` (N, 28, 28, 1), ``images_16`` (the same images
  resized by Pillow's antialiased bilinear filter, as seed 000 did), ``labels``, ``class_names`` and
  ``source_index`` (each image's position in ``train-images-idx3-ubyte.gz``).
* ``dcss_tiles.npz``: ``images_16``, ``images_32``, ``labels`` and ``class_names`` of
  ``dcss_tiles/dcss_tiles_{16,32}.npz``.

The idx files are md5-checked on reading. Output is byte-reproducible: zip entries get a fixed
timestamp and a fixed order, and every array is written in the .npy format.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

from tinydiffusion.data.bundled import BUNDLED
from tinydiffusion.data.idx import IDX_SOURCES, load_idx
from tinydiffusion.data.pixels import resize_images

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "tinydiffusion" / "assets"
PER_CLASS = 1000


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but with fixed zip timestamps so equal inputs give equal bytes."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue(), compresslevel=9)


def fashion_mnist_mini(shared: Path) -> dict[str, np.ndarray]:
    """The first PER_CLASS training images of each Fashion-MNIST class, at 28 and 16 pixels."""
    images, labels = load_idx("fashion-mnist", "train", shared, mirrors=())
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:PER_CLASS] for c in range(10)]))
    images_28 = images[keep]
    return {
        "images_16": resize_images(images_28, 16, "bilinear"),
        "images_28": images_28,
        "labels": labels[keep],
        "class_names": np.array(IDX_SOURCES["fashion-mnist"].class_names),
        "source_index": keep.astype(np.int32),
    }


def dcss_tiles(shared: Path) -> dict[str, np.ndarray]:
    """Images at 16 and 32 pixels, labels and class names of the shared DCSS tile set."""
    small = np.load(shared / "dcss_tiles" / "dcss_tiles_16.npz")
    large = np.load(shared / "dcss_tiles" / "dcss_tiles_32.npz")
    if not (np.array_equal(small["labels"], large["labels"])
            and np.array_equal(small["class_names"], large["class_names"])):
        raise SystemExit("dcss_tiles_16.npz and dcss_tiles_32.npz do not hold the same tiles")
    return {
        "images_16": small["images"],
        "images_32": large["images"],
        "labels": small["labels"].astype(np.int64),
        "class_names": small["class_names"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", nargs="?", type=Path, default=REPO.parent / "shared" / "data",
                        help="the shared data folder (default: ../shared/data next to the repository)")
    args = parser.parse_args()
    ASSETS.mkdir(parents=True, exist_ok=True)
    for name, build in (("fashion-mnist-mini", fashion_mnist_mini), ("dcss-tiles", dcss_tiles)):
        path = ASSETS / BUNDLED[name].file
        write_npz(path, build(args.shared))
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
