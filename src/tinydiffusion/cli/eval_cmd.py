"""``tinydiffusion eval RUN``: sample N images and print one JSON object of quality numbers.

The numbers also go to ``RUN/eval.json`` (for the report) and, for runs that log to TensorBoard, to
the run's TensorBoard logs under ``eval/``.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import UserError
from .common import announce_long_work, device_from, progress_from
from .sample_cmd import add_sampler_flags, check_batch_size, setting_flags, settings_from

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


def run(args: argparse.Namespace) -> int:
    import time

    from ..checkpoint import atomic_write
    from ..files import check_writable
    from ..generate import check_sample_memory, network_calls, sampler_steps
    from ..metrics import evaluate_images
    from ..run import load
    from ..samplers import SAMPLERS
    from ..train.logger import log_eval_metrics
    from ..viz.grid import to_uint8

    check_batch_size(args)
    device = device_from(args)
    loaded = load(args.run, device)
    save = not args.no_save and loaded.path.parent.is_dir()
    if save:
        check_writable(loaded.path.parent, "eval.json (add --no-save to only print the scores)")
    data = loaded.data
    if data.get("kind") == "points":
        raise UserError("eval scores images; this run generates 2-D points (look at them with tinydiffusion sample)")
    settings = settings_from(args, loaded)
    check_sample_memory(args.n, loaded.shape)
    cond = loaded.conditions(args.n)  # equally many of every class (or one-hot context), class-major
    if args.guidance is not None and cond is None:
        raise UserError("--guidance needs a conditional model; this one was trained without labels")
    labels = None if cond is None else (cond if cond.dim() == 1 else cond.argmax(1)).numpy()
    steps = sampler_steps(loaded.schedule, settings)
    announce_long_work("eval", network_calls(loaded.schedule, settings, args.n, args.batch_size),
                       f"-n {args.n} with {settings.sampler} ({steps:,} steps)",
                       "a smaller -n (numbers from fewer samples are noisier) or fewer --steps are faster")
    start = time.perf_counter()
    x = loaded.sample(args.n, seed=args.seed, batch_size=args.batch_size, progress=progress_from(args),
                      **setting_flags(args))
    seconds = time.perf_counter() - start
    scores = evaluate_images(to_uint8(x), reference=args.reference or data["spec"], image_size=int(data["image_size"]),
                             labels=labels, extractor=args.features, seed=args.seed, device=device)
    scores.update({
        "run": str(args.run),
        "step": loaded.meta.get("step"),
        "sampler": settings.sampler,
        "steps": steps,
        "network_calls": SAMPLERS[settings.sampler].network_calls(steps),
        "guidance": settings.guidance if cond is not None else None,
        "sampling_seconds": round(seconds, 3),
    })
    print(json.dumps(scores, indent=None))
    if save:
        atomic_write(loaded.path.parent / "eval.json", (json.dumps(scores, indent=2) + "\n").encode())
        log_eval_metrics(loaded.path.parent, scores, int(loaded.meta.get("step") or 0))
    print(f"eval: FD {scores['fd']:.3f} (real-vs-real floor {scores['fd_floor']:.3f}; lower is better) with "
          f"{scores['features']} features, N={scores['n']}", file=sys.stderr)
    return 0
