"""The data sets shipped inside the package (``tinydiffusion/assets/*.npz``).

Both are built by ``scripts/build_bundled_data.py`` from the real files in ``shared/data``:

* ``fashion-mnist-mini``: 10,000 Fashion-MNIST training images (the first 1,000 of each class in
  file order), stored at 28×28 and at 16×16 (Pillow bilinear, as seed 000 resized them), with the
  positions of the images in the training file (``source_index``).
* ``dcss-tiles``: 4,906 Dungeon Crawl Stone Soup tiles in 6 classes, stored at 16×16 and 32×32.

Each file holds ``images_<size>`` arrays (N, size, size, C) uint8, ``labels`` int64 and
``class_names``. A load picks the stored size that matches ``image_size`` (the smallest when none
is asked for), else the largest stored size is resized (by :func:`tinydiffusion.data.load_dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..errors import UserError


@dataclass(frozen=True)
class BundledSet:
    """A bundled asset file and the credit line of its source."""

    file: str
    credit: str


BUNDLED: dict[str, BundledSet] = {
    "fashion-mnist-mini": BundledSet(
        "fashion_mnist_mini.npz",
        "Fashion-MNIST by Zalando Research (Xiao, Rasul and Vollgraf 2017), MIT licence; "
        "10,000-image subset of the training split"),
    "dcss-tiles": BundledSet(
        "dcss_tiles.npz",
        "Tiles from Dungeon Crawl Stone Soup by the DCSS development team and tile artists, CC0 1.0"),
}


def stored_sizes(names: list[str]) -> list[int]:
    """The image sizes an asset holds, from its ``images_<size>`` array names, ascending."""
    return sorted(int(k.split("_")[1]) for k in names if k.startswith("images_"))


def load_bundled(name: str, image_size: int | None) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """Images, labels int64, class names and credit line of bundled set ``name``.

    The images are the stored size equal to ``image_size``, else the smallest stored size when
    ``image_size`` is None, else the largest (for the caller to resize).
    """
    asset = resources.files("tinydiffusion") / "assets" / BUNDLED[name].file
    if not asset.is_file():
        raise UserError(f"the bundled data file {BUNDLED[name].file} is missing from tinydiffusion/assets; "
                        "reinstall tinydiffusion, or run scripts/build_bundled_data.py in a source checkout")
    with asset.open("rb") as f, np.load(f) as npz:
        sizes = stored_sizes(npz.files)
        if image_size in sizes:
            size = image_size
        else:
            size = sizes[0] if image_size is None else sizes[-1]
        images, labels = npz[f"images_{size}"], npz["labels"].astype(np.int64)
        class_names = [str(c) for c in npz["class_names"]]
    return images, labels, class_names, BUNDLED[name].credit
