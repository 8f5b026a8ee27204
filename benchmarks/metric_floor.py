"""The metrics' reference points with the shipped extractors: the FD floor and the blur sensitivity.

    python benchmarks/metric_floor.py [--datasets fashion-mnist mnist ...] [--blur-radii 1 1.5 2 3]

Floor: FD between N real images of the floor set (the test split, or the second half of a single-split
set) and the reference (``metrics.reference.real_features``), at N = 1,000 (seed 0, and mean ± standard
deviation (n − 1) over seeds 0–4), 2,000, 5,000 and 10,000, at 16 px and at the dataset's native size.
Sensitivity: Fashion-MNIST test images blurred with a Gaussian of radius r, scored at 28 px with N = 1,000
by ``evaluate_images`` (labels: the images' own classes) exactly as samples are scored.
Prints the two Markdown tables of docs/metrics.md ("Measured reference points").
"""

from __future__ import annotations

import argparse
import statistics
from datetime import date

import numpy as np
import torch
from PIL import Image, ImageFilter

from tinydiffusion.data import load_dataset
from tinydiffusion.metrics.evaluate import evaluate_images, resolve_extractor
from tinydiffusion.metrics.reference import fd_floor, real_features

from quality import cpu_name  # beside this script

#: (dataset, native size): the sets with a shipped extractor
DATASETS = {"fashion-mnist": 28, "fashion-mnist-mini": 28, "mnist": 28, "dcss-tiles": 32}
FLOOR_N = (1_000, 2_000, 5_000, 10_000)
SEEDS = range(5)
BLUR_N = 1_000


def floor_row(name: str, size: int) -> tuple[str, float]:
    """One row of the floor table (the floor at each N, or '—' past the real images available) and the
    reference features' total variance tr Σ, the scale the floors are small against."""
    real = real_features(name, image_size=size, extractor=resolve_extractor(None, name, "cpu"))
    available = real.floor_features.shape[0]
    cells = [f"{fd_floor(real, FLOOR_N[0], 0)[0]:.3f}"]
    spread = [fd_floor(real, FLOOR_N[0], seed)[0] for seed in SEEDS]
    cells.append(f"{statistics.mean(spread):.3f} ± {statistics.stdev(spread):.3f}")
    for n in FLOOR_N[1:]:
        if n <= available:
            cells.append(f"{fd_floor(real, n, 0)[0]:.3f}")
        elif FLOOR_N[FLOOR_N.index(n) - 1] < available:
            cells.append(f"{fd_floor(real, n, 0)[0]:.3f} (N = {available:,}, all available)")
        else:
            cells.append(f"— ({available:,} available)")
    reference = f"{real.n:,} {real.split}" if real.split == "train" else f"{real.n:,} ({real.split})"
    row = f"| `{name}` | {size} px | {reference} | {real.floor_split} | " + " | ".join(cells) + " |"
    return row, float(np.trace(real.sigma))


def blurred(images: np.ndarray, radius: float) -> np.ndarray:
    """uint8 (N, H, W, 1) images through Pillow's Gaussian blur of ``radius`` pixels."""
    if radius == 0:
        return images
    out = [np.asarray(Image.fromarray(im[..., 0]).filter(ImageFilter.GaussianBlur(radius))) for im in images]
    return np.stack(out)[..., None]


def blur_rows(radii: list[float]) -> list[str]:
    test = load_dataset("fashion-mnist", image_size=28, split="test")
    rows = np.sort(np.random.default_rng(0).choice(len(test), BLUR_N, replace=False))
    images, labels = test.images[rows], np.asarray(test.labels)[rows].astype(np.int64)
    lines = []
    for r in [0.0, *radii]:
        m = evaluate_images(blurred(images, r), reference="fashion-mnist", image_size=28, labels=labels)
        fd = f"{m['fd']:.3g} (floor {m['fd_floor']:.3f})" if r == 0 else f"{m['fd']:.3g}"
        what = "0 (real test images)" if r == 0 else f"{r:g} px"
        lines.append(f"| {what} | {fd} | {m['kid'] * 1e3:.2f} ± {m['kid_se'] * 1e3:.2f} | {m['precision']:.3f} | "
                     f"{m['recall']:.3f} | {m['class_accuracy']:.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--blur-radii", nargs="*", type=float, default=[1.0, 1.5, 2.0, 3.0],
                        help="Fashion-MNIST blur radii for the sensitivity table (none: skip it)")
    args = parser.parse_args()
    print(f"{date.today()}, {cpu_name()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    print("| dataset | size | reference | floor set | N = 1,000 | N = 1,000 over 5 seeds | N = 2,000 | N = 5,000 "
          "| N = 10,000 |\n|---|---|---|---|---|---|---|---|---|")
    traces = []
    for name in args.datasets:
        for size in (16, DATASETS[name]):
            row, trace = floor_row(name, size)
            traces.append(f"{name} {size} px {trace:.1f}")
            print(row, flush=True)
    print("\ntotal variance of the reference features (tr Σ): " + ", ".join(traces))
    if args.blur_radii:
        print("\n| blur radius r | `fd` | `kid` ×10³ (± se) | `precision` | `recall` | `class_accuracy` |\n"
              "|---|---|---|---|---|---|")
        for line in blur_rows(args.blur_radii):
            print(line, flush=True)


if __name__ == "__main__":
    main()
