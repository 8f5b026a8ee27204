"""``tinydiffusion eval RUN``: sample N images and print one JSON object of quality numbers."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from ..checkpoint import atomic_write, load_model
from ..errors import UserError
from ..files import check_writable
from ..generate import check_sample_memory, generate, sample_shape
from ..metrics import evaluate_images
from ..samplers import SAMPLERS, sampler_timesteps
from ..viz.grid import to_uint8
from .common import device_from
from .sample_cmd import add_sampler_flags, check_batch_size, settings_from

HELP = "sample N images and print Fréchet distance, KID, precision/recall and class accuracy as JSON"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory")
    p.add_argument("-n", type=int, default=1000, help="number of generated (and real) images")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance weight (conditional runs)")
    p.add_argument("--features", default=None,
                   help="feature extractor: the shipped one for the dataset (default), inception:WEIGHTS.pth, "
                        "or python:module:callable")
    p.add_argument("--reference", default=None, help="real data to compare with (default: the run's dataset)")
    p.add_argument("--no-save", action="store_true", help="do not write RUN_DIR/eval.json")
    add_sampler_flags(p)


def balanced_conditions(model_config: dict, n: int) -> tuple[torch.Tensor | None, np.ndarray | None]:
    """Equal numbers of every class (or one-hot context); returns the conditions and their class ids."""
    num = int(model_config.get("num_classes") or 0) or int(model_config.get("context_dim") or 0)
    if not num:
        return None, None
    ids = torch.arange(n) % num
    cond = ids if model_config.get("num_classes") else torch.nn.functional.one_hot(ids, num).float()
    return cond, ids.numpy()


def run(args: argparse.Namespace) -> int:
    check_batch_size(args)
    device = device_from(args)
    loaded = load_model(args.run, device)
    save = not args.no_save and loaded.path.parent.is_dir()
    if save:
        check_writable(loaded.path.parent, "eval.json (add --no-save to only print the scores)")
    data = loaded.meta["data"]
    if data.get("kind") == "points":
        raise UserError("eval scores images; this run generates 2-D points (look at them with tinydiffusion sample)")
    settings = settings_from(args, loaded)
    check_sample_memory(args.n, sample_shape(data))
    cond, labels = balanced_conditions(loaded.meta["model_config"], args.n)
    if settings.guidance is not None and cond is None:
        raise UserError("--guidance needs a conditional model; this one was trained without labels")
    start = time.perf_counter()
    x = generate(loaded.model, loaded.schedule, sample_shape(data), args.n, settings=settings,
                 prediction=loaded.prediction, seed=args.seed, cond=cond, batch_size=args.batch_size, device=device,
                 data_range=loaded.data_range)
    seconds = time.perf_counter() - start
    scores = evaluate_images(to_uint8(x), reference=args.reference or data["spec"], image_size=int(data["image_size"]),
                             labels=labels, extractor=args.features, seed=args.seed, device=device)
    steps = len(sampler_timesteps(loaded.schedule, settings.sampler, settings.steps, settings.spacing))
    scores.update({
        "run": str(args.run),
        "step": loaded.meta.get("step"),
        "sampler": settings.sampler,
        "steps": steps,
        "network_calls": SAMPLERS[settings.sampler].network_calls(steps),
        "guidance": settings.guidance,
        "sampling_seconds": round(seconds, 3),
    })
    text = json.dumps(scores, indent=None)
    print(text)
    if save:
        atomic_write(loaded.path.parent / "eval.json", (json.dumps(scores, indent=2) + "\n").encode())
    print(f"eval: FD {scores['fd']:.3f} (real-vs-real floor {scores['fd_floor']:.3f}) with {scores['features']} "
          f"features, N={scores['n']}", file=sys.stderr)
    return 0
