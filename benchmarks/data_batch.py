"""Time drawing training batches of 512 on the device-resident path (CPU, and CUDA when available).

    python benchmarks/data_batch.py [--batch-size 512] [--steps 200]

Prints one row per (dataset, device, hflip): the median microseconds per batch, measured over
``--steps`` batches after 20 warm-up batches; on CUDA each batch is synchronised before the clock
stops, so the time includes the gather, flip and conversion kernels. Compare it with the time of a
training step (measured by the training benchmarks) to see whether the input pipeline matters.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tinydiffusion.data import load_dataset, make_batches

CASES = (("fashion-mnist-mini", 28), ("fashion-mnist-mini", 16), ("dcss-tiles", 32))


def median_us(batches, steps: int, sync) -> float:
    """Median wall time in µs of drawing one batch, after 20 warm-up batches."""
    for _ in range(20):
        next(batches)
    sync()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        next(batches)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{'dataset':<20} {'size':>4} {'device':<6} {'hflip':<5} {'µs/batch':>9}")
    for name, size in CASES:
        dataset = load_dataset(name, image_size=size)
        for device in devices:
            sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
            for hflip in (False, True):
                batches = make_batches(dataset, args.batch_size, device=device, condition="class", hflip=hflip)
                us = median_us(batches, args.steps, sync)
                print(f"{name:<20} {size:>4} {device:<6} {str(hflip):<5} {us:>9.1f}")


if __name__ == "__main__":
    main()
