"""Seconds per training step of the seed recipes, and what that makes of their run lengths.

    python benchmarks/seed_step_time.py [--recipes NAME ...] [--steps 20] [--warmup 5] [--threads 2]

For each recipe: its network, data and batch on the CPU; ``--warmup`` optimiser steps, then the
median of ``--steps`` timed steps (``Trainer.train_step`` on ``make_batches``, exactly what
``tinydiffusion train`` runs), then one training preview with the recipe's preview settings.
Prints a Markdown table: seconds per step, the full run in minutes, the preview in seconds, and for
each seed recipe the minutes to recognisable samples, i.e. ``RECOGNISABLE_AT`` (the step counts at
which their samples were seen to become recognisable, docs/seeds.md) times the step time plus the
previews written up to there. Run it on an otherwise idle machine: timings on shared cores mean nothing.
``dlai-sprites*`` run on the bundled tiles (the course's sprite images are not shipped): the same
network, one more context input.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from tinydiffusion.config import build_config, recipe_names
from tinydiffusion.errors import ScheduleWarning
from tinydiffusion.data import make_batches
from tinydiffusion.train.distributed import Dist
from tinydiffusion.train.loop import Trainer
from tinydiffusion.train.preview import write_preview
from tinydiffusion.train.setup import setup_run

SEED_RECIPES = ("dli-fashion16", "hf-mnist-basic", "hf-mnist-unet2d", "dlai-tiles", "dlai-sprites", "pulfer-mnist",
                "pulfer-fashion", "s-curve")

#: Optimiser steps after which a CPU variant's samples were recognisable (measured in docs/seeds.md).
RECOGNISABLE_AT = {
    "dli-fashion16": 700,          # blurry garments, the notebook's "if you squint"
    "hf-mnist-basic": 800,         # as the course's samples; the run is 1,407 steps
    "hf-mnist-unet2d-fast": 1000,  # the whole run
    "dlai-tiles-fast": 1500,       # the whole run
    "dlai-sprites-fast": 1500,     # assumed as dlai-tiles-fast (the course's images are not available)
    "pulfer-mnist-fast": 750,      # of 1,500
    "pulfer-fashion-fast": 750,    # assumed as pulfer-mnist-fast
    "s-curve-fast": 8000,          # the whole run: 87 % of the samples within 3 noise widths of the S
}


def recipes_to_time(names: list[str] | None) -> list[str]:
    if names:
        return names
    known = set(recipe_names())
    return [r for base in SEED_RECIPES for r in (base, f"{base}-fast") if r in known]


def time_recipe(name: str, steps: int, warmup: int) -> dict[str, float]:
    overrides = ["log.progress=false", "log.tensorboard=off"]
    if name.startswith("dlai-sprites"):
        overrides += ["data.spec=dcss-tiles", "data.image_size=16"]
    cfg = build_config(name, overrides=overrides)
    parts = setup_run(cfg, torch.device("cpu"), 1)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(parts, Path(tmp), Dist())
        batches = make_batches(parts.dataset, cfg.optim.batch_size, device="cpu", seed=0, condition=parts.condition,
                               hflip=cfg.data.hflip)
        trainer.net.train()
        times = []
        for i, batch in zip(range(warmup + steps), batches):
            start = time.perf_counter()
            trainer.train_step(batch, cfg.optim.lr)
            if i >= warmup:
                times.append(time.perf_counter() - start)
        trainer.model.eval()
        start = time.perf_counter()
        write_preview(trainer.model, parts, Path(tmp) / "preview.png", strip=cfg.preview.strip)
        grids = 2 if cfg.ema.enabled and cfg.preview.raw else 1  # the averaged and the raw weights
        preview_s = (time.perf_counter() - start) * grids
    per_step = statistics.median(times)
    every = cfg.preview.every or max(1, parts.total_steps // 4)
    return {"total_steps": parts.total_steps, "s_per_step": per_step, "preview_every": every,
            "run_min": (parts.total_steps * per_step + previews_until(parts.total_steps, every) * preview_s) / 60,
            "preview_s": preview_s}


def previews_until(step: int, every: int) -> int:
    """The previews a run has written by ``step``: one every ``every`` steps, and one at ``step`` itself."""
    return step // every + (1 if step % every else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", help="default: every seed recipe and its -fast variant")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per recipe")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (the 2-core laptop of the docs)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ScheduleWarning)  # seeds 000 and 004 keep their schedules, which warn
    torch.set_num_threads(args.threads)
    print(f"CPU, {args.threads} threads, median of {args.steps} steps after {args.warmup}\n")
    print("| recipe | steps | s/step | full run (min) | preview (s) | recognisable at | minutes to recognisable |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in recipes_to_time(args.recipes):
        r = time_recipe(name, args.steps, args.warmup)
        at = RECOGNISABLE_AT.get(name)
        to_recognise = ""
        if at is not None:
            previews = previews_until(at, r["preview_every"])
            to_recognise = f"{(at * r['s_per_step'] + previews * r['preview_s']) / 60:.1f}"
        print(f"| `{name}` | {r['total_steps']:,} | {r['s_per_step']:.3f} | {r['run_min']:.1f} | "
              f"{r['preview_s']:.1f} | {'' if at is None else f'{at:,}'} | {to_recognise} |", flush=True)


if __name__ == "__main__":
    main()
