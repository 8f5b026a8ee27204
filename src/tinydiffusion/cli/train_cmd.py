"""``tinydiffusion train``: resolve a config, pick a run directory, train.

PyTorch is imported when the command runs, not when the parser is built (see :mod:`.main`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import build_config
from ..errors import UserError
from ..provenance import current_config

HELP = "train a model (no arguments: the quickstart recipe on the bundled Fashion-MNIST subset)"
RUNS = Path("runs")

__all__ = ["HELP", "add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", help="a recipe name (see 'tinydiffusion recipes'); default quickstart")
    p.add_argument("--config", help="a TOML file with settings (applied after the recipe)")
    p.add_argument("--data", help="dataset spec: fashion-mnist, mnist, fashion-mnist-mini, dcss-tiles, folder:PATH, "
                                  "npz:PATH, sprites:IMAGES.npy[,LABELS.npy], s-curve, moons, ...")
    p.add_argument("--out", help="run directory (default: runs/RECIPE, or runs/RECIPE-2, ... if taken)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="optimiser steps")
    length.add_argument("--epochs", type=float, help="passes over the data")
    length.add_argument("--time-budget", type=float, metavar="MINUTES",
                        help="train for this many minutes: the run times its first steps and plans the step count "
                             "(and the learning-rate schedule) to end on time")
    p.add_argument("--batch-size", type=int, help="images per optimiser step (over all processes)")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, help="seed of data order, noise and timesteps")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any setting, e.g. --set optim.lr=2e-4 --set model.dropout=0")


def choose_run_dir(out: str | None, recipe: str, resume: bool) -> Path:
    """The run directory: never overwrite a finished run by accident, never resume into nothing.

    The checks that matter for safety (a run already there, another training writing into it) are made
    again by the training under the run directory's lock (:mod:`tinydiffusion.train.rundir`).
    """
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise UserError(f"--out {out} is a file; give a folder for the run")
        return path  # missing folders on the way are created by the run directory's lock
    from ..train.rundir import holds_run

    base = RUNS / recipe
    if resume:
        return base
    candidate, k = base, 1
    while holds_run(candidate):
        k += 1
        candidate = RUNS / f"{recipe}-{k}"
    return candidate


def run(args: argparse.Namespace) -> int:
    from ..train.loop import train

    config_file = args.config
    if args.resume and args.recipe is None and config_file is None:
        # Continue the run with the settings it trained with last (config.toml, or the newest
        # config-resume-<step>.toml; see tinydiffusion.provenance).
        config_file = current_config(Path(args.out or RUNS / "quickstart"))
    flags = {
        "data.spec": args.data,
        "optim.steps": args.steps,
        "optim.epochs": args.epochs,
        "optim.time_budget_minutes": args.time_budget,
        "optim.batch_size": args.batch_size,
        "runtime.device": args.device,
        "runtime.seed": args.seed,
    }
    cfg = build_config(args.recipe, config_file, flags, args.overrides)
    is_main = int(os.environ.get("RANK", "0")) == 0
    out = choose_run_dir(args.out, cfg.recipe, args.resume)
    cfg.out = str(out)
    run_dir = train(cfg, resume=args.resume)
    if is_main:
        print(f"done: {run_dir} (model.safetensors, config.toml, log.csv, samples/)\n"
              f"next: tinydiffusion sample {run_dir} --out samples.png    "
              f"tinydiffusion report {run_dir}", file=sys.stderr)
    return 0
