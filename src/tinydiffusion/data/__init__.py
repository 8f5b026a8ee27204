"""Datasets by spec string, and the batches training draws from them.

``load_dataset("fashion-mnist-mini")``, ``load_dataset("folder:~/cats", image_size=32)``, … return a
:class:`Dataset` (uint8 images or float32 points, optional labels/contexts, a credit line);
:func:`make_batches` turns it into the endless, seeded stream of training batches. ``DATASETS`` lists
the specs with one line of help each (what ``tinydiffusion recipes`` and ``--help`` show).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .arrays import SPRITES_CREDIT, load_npz, load_sprites
from .batches import Batch, make_batches, split_batch
from .bundled import load_bundled
from .dataset import Dataset
from .folder import load_folder
from .idx import IDX_SOURCES, download, load_idx
from .pixels import check_image_size, convert_channels, fit_images, resize_filter
from .preview import examples_per_class
from .root import data_root
from .toy2d import TOY_SETS

__all__ = ["Dataset", "DATASETS", "DatasetEntry", "LoadOptions", "load_dataset", "data_root", "download",
           "Batch", "make_batches", "split_batch", "examples_per_class"]

DEFAULT_POINTS = 10_000


@dataclass(frozen=True)
class LoadOptions:
    """The keyword arguments of :func:`load_dataset`, validated, as every loader receives them."""

    image_size: int | None
    split: str
    root: Path
    strict: bool
    channels: int | None
    center_crop: bool
    resize_filter: str
    background: tuple[int, int, int]
    n: int | None
    seed: int


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its loader, one line of help, and the argument after ``name:`` if it takes one."""

    loader: Callable[[str, LoadOptions], Dataset]
    description: str
    argument: str | None = None  #: e.g. "PATH" for ``folder:PATH``; None for plain names
    has_splits: bool = False


def _idx(name: str) -> Callable[[str, LoadOptions], Dataset]:
    def load(_: str, opts: LoadOptions) -> Dataset:
        images, labels = load_idx(name, opts.split, opts.root)
        source = IDX_SOURCES[name]
        return Dataset(name, images=images, labels=labels, class_names=list(source.class_names), credit=source.credit)
    return load


def _bundled(name: str) -> Callable[[str, LoadOptions], Dataset]:
    def load(_: str, opts: LoadOptions) -> Dataset:
        images, labels, class_names, credit = load_bundled(name, opts.image_size)
        return Dataset(name, images=images, labels=labels, class_names=class_names, credit=credit)
    return load


def _folder(path: str, opts: LoadOptions) -> Dataset:
    images, labels, class_names = load_folder(
        path, image_size=opts.image_size, channels=opts.channels, center_crop=opts.center_crop,
        filter_name=opts.resize_filter, background=opts.background, strict=opts.strict)
    return Dataset(f"folder:{path}", images=images, labels=labels, class_names=class_names,
                   credit=f"images from {path}")


def _npz(path: str, opts: LoadOptions) -> Dataset:
    return Dataset(f"npz:{path}", credit=f"arrays from {path}", **load_npz(path, opts.background))


def _sprites(paths: str, opts: LoadOptions) -> Dataset:
    return Dataset(f"sprites:{paths}", credit=SPRITES_CREDIT, **load_sprites(paths, opts.root))


def _toy(name: str) -> Callable[[str, LoadOptions], Dataset]:
    generate, class_names, _ = TOY_SETS[name]

    def load(_: str, opts: LoadOptions) -> Dataset:
        points, labels = generate(DEFAULT_POINTS if opts.n is None else opts.n, opts.seed)
        return Dataset(name, points=points, labels=labels, class_names=class_names,
                       credit="synthetic 2-D points made by tinydiffusion")
    return load


DATASETS: dict[str, DatasetEntry] = {
    "fashion-mnist": DatasetEntry(_idx("fashion-mnist"), "Fashion-MNIST, 28x28 grey clothes in 10 classes "
                                  "(60,000 train / 10,000 test; downloaded into the data root)", has_splits=True),
    "mnist": DatasetEntry(_idx("mnist"), "MNIST, 28x28 grey digits in 10 classes (60,000 train / 10,000 test; "
                          "downloaded into the data root)", has_splits=True),
    "fashion-mnist-mini": DatasetEntry(_bundled("fashion-mnist-mini"), "bundled: 10,000 Fashion-MNIST images "
                                       "(1,000 per class), 16x16 (or 28x28 with image_size=28)"),
    "dcss-tiles": DatasetEntry(_bundled("dcss-tiles"), "bundled: 4,906 Dungeon Crawl Stone Soup pixel-art tiles in "
                               "6 classes, 16x16 (or 32x32 with image_size=32), CC0"),
    "folder": DatasetEntry(_folder, "your images (png/jpg/webp/bmp); first-level sub-folders become classes",
                           argument="PATH"),
    "npz": DatasetEntry(_npz, "arrays: 'images' (N,H,W[,C]) uint8, optional 'labels', 'contexts', 'class_names'",
                        argument="PATH"),
    "sprites": DatasetEntry(_sprites, "the DeepLearning.AI course sprites (16x16 RGB) with their 5-dim context "
                            "vectors", argument="IMAGES.npy[,LABELS.npy]"),
    **{name: DatasetEntry(_toy(name), f"2-D points: {line}") for name, (_, _, line) in TOY_SETS.items()},
}


def spec_names() -> list[str]:
    """Every spec as a user writes it: ``fashion-mnist``, …, ``folder:PATH``, …"""
    return [f"{name}:{e.argument}" if e.argument else name for name, e in DATASETS.items()]


def load_dataset(spec: str, *, image_size: int | None = None, split: str = "train",
                 root: str | Path | None = None, strict: bool = False, channels: int | None = None,
                 center_crop: bool = False, resize_filter: str = "bilinear",
                 background: tuple[int, int, int] = (255, 255, 255), n: int | None = None,
                 seed: int = 0) -> Dataset:
    """Load the dataset named by ``spec`` (see ``DATASETS``; the README's 'Data' section lists the specs).

    Image sets: ``image_size`` resizes (Pillow, ``resize_filter``: "bilinear" (antialiased, as
    torchvision's Resize on PIL images in seed 000), "nearest" for pixel art, "lanczos"); non-square
    images are centre-cropped with ``center_crop`` or else stretched; ``channels`` (1 or 3) forces grey
    or RGB; ``background`` is what transparent pixels become; ``n`` keeps a random subset of n images
    chosen by ``seed``. ``split`` ("train", "test", or "all" = both) applies to fashion-mnist and mnist,
    read from ``root`` (default :func:`data_root`). ``strict`` turns a skipped unreadable file of
    ``folder:`` into an error. 2-D sets: ``n`` points (default 10,000) drawn with ``seed``.

    Every user mistake raises :class:`~tinydiffusion.errors.UserError` with one line; worked-around
    problems are :class:`~tinydiffusion.errors.DataWarning`\\ s.
    """
    name, _, argument = spec.partition(":")
    entry = DATASETS.get(name)
    if entry is None:
        hint = f" (did you mean folder:{spec}?)" if Path(spec).expanduser().is_dir() else ""
        raise UserError(f"unknown dataset {spec!r}{hint}; known: {', '.join(spec_names())}")
    if entry.argument and not argument:
        raise UserError(f"{name!r} must be followed by ':' and {entry.argument}, as in {name}:{entry.argument}")
    if not entry.argument and argument:
        raise UserError(f"dataset {name!r} takes no ':' argument, got {spec!r}")
    if split != "train" and not entry.has_splits:
        raise UserError(f"dataset {name!r} has no {split!r} split; only fashion-mnist and mnist have splits")
    opts = _options(image_size, split, root, strict, channels, center_crop, resize_filter, background, n, seed)
    dataset = entry.loader(argument, opts)
    if dataset.kind == "points":
        if image_size is not None or channels is not None or center_crop:
            raise UserError(f"{name} is a set of 2-D points; image_size, channels and center_crop do not apply")
        return dataset
    return _finish_images(dataset, opts)


def _options(image_size, split, root, strict, channels, center_crop, resize_filter_name, background, n,
             seed) -> LoadOptions:
    """Validate the keyword arguments of load_dataset."""
    check_image_size(image_size)
    resize_filter(resize_filter_name)
    if channels not in (None, 1, 3):
        raise UserError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise UserError(f"n must be a positive whole number, got {n!r}")
    if len(background) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in background):
        raise UserError(f"background must be three integers 0..255 (R, G, B), got {background!r}")
    return LoadOptions(image_size=image_size, split=split, root=Path(root).expanduser() if root else data_root(),
                       strict=strict, channels=channels, center_crop=center_crop, resize_filter=resize_filter_name,
                       background=tuple(int(v) for v in background), n=n, seed=seed)


def _finish_images(dataset: Dataset, opts: LoadOptions) -> Dataset:
    """Subset, square, resize and set the channels of a loaded image set."""
    images, labels, contexts = dataset.images, dataset.labels, dataset.contexts
    if opts.n is not None and opts.n != len(images):
        if opts.n > len(images):
            raise UserError(f"n={opts.n} but {dataset.name} has only {len(images)} images")
        keep = np.sort(np.random.default_rng(opts.seed).choice(len(images), opts.n, replace=False))
        images = images[keep]
        labels = None if labels is None else labels[keep]
        contexts = None if contexts is None else contexts[keep]
    images = fit_images(images, image_size=opts.image_size, filter_name=opts.resize_filter,
                        center_crop=opts.center_crop, source=dataset.name)
    if opts.channels is not None:
        images = convert_channels(images, opts.channels)
    return Dataset(dataset.name, images=images, labels=labels, contexts=contexts, class_names=dataset.class_names,
                   credit=dataset.credit)
