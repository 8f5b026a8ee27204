"""``tinydiffusion sample RUN``: images (a PNG grid or an NPZ of arrays) and, if asked, the reverse process.

PyTorch is imported when the command runs, not when the parser is built (see :mod:`.main`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from .choices import SAMPLERS, SPACINGS, VARIANCES
from .common import (add_condition_flags, add_device, add_quiet, announce_long_work, conditions, device_from,
                     distinct_outputs, output_path, progress_from)

if TYPE_CHECKING:
    import torch

    from ..generate import SampleSettings
    from ..run import Run

HELP = "draw samples from a trained run"
GIF_FRAMES = 40


def add_sampler_flags(p: argparse.ArgumentParser) -> None:
    """--sampler/--steps/--eta/... (defaults: the run's own [sample] settings)."""
    p.add_argument("--sampler", choices=list(SAMPLERS), help="default: the run's sampler")
    p.add_argument("--steps", type=int, help="sampler steps (network calls: steps, or 2*steps-1 for heun)")
    p.add_argument("--eta", type=float, help="DDIM noise: 0 deterministic, 1 like DDPM")
    p.add_argument("--spacing", choices=list(SPACINGS), help="where the steps sit among the training timesteps")
    p.add_argument("--variance", choices=list(VARIANCES), help="DDPM: sigma^2 = beta_tilde (posterior) or beta")
    p.add_argument("--clip-x0", action=argparse.BooleanOptionalAction, default=None,
                   help="clamp the predicted clean image to [-1, 1] at every step")
    p.add_argument("--seed", type=int, default=0, help="sample i uses seed SEED+i (independent of batch size)")
    p.add_argument("--batch-size", type=int, default=256, help="samples per network call")
    add_device(p)
    add_quiet(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory (or its model.safetensors)")
    p.add_argument("-n", type=int, default=None,
                   help="number of samples (default: 8 per class for conditional runs, else 64)")
    p.add_argument("--out", required=True, help="FILE.png (a labelled grid) or FILE.npz (arrays images, "
                                                "labels/contexts)")
    p.add_argument("--gif", help="also write the reverse process of the samples as FILE.gif")
    p.add_argument("--gif-x0", action="store_true", help="show the network's prediction x0 beside x_t in the GIF")
    p.add_argument("--x0-strip", help="also write x_t beside the predicted x0 at a few steps (seed 001) as FILE.png")
    add_condition_flags(p)
    add_sampler_flags(p)


def setting_flags(args: argparse.Namespace) -> dict:
    """The sampling settings given on the command line (None where a flag was not given)."""
    return {name: getattr(args, name, None)
            for name in ("sampler", "steps", "eta", "spacing", "variance", "clip_x0", "guidance")}


def settings_from(args: argparse.Namespace, run: Run) -> SampleSettings:
    """The run's sampling defaults with the flags that were given on top; a setting that cannot work is one
    line naming the flag, or the run's own setting."""
    given = {k for k, v in setting_flags(args).items() if v is not None}

    def label(field: str) -> str:
        return f"--{field.replace('_', '-')}" if field in given else f"the run's sample.{field} (in {run.path})"

    return run.settings(**setting_flags(args), label=label)


def default_n(run: Run, per_class: int = 8) -> int:
    """``per_class`` samples of every class (or one-hot context) of a conditional run, else 64."""
    classes = run.num_classes or run.context_dim
    return per_class * classes if classes else 64


def check_batch_size(args: argparse.Namespace) -> None:
    from ..limits import check_seed

    if args.n is not None and args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    check_seed(args.seed, "--seed")


def caption(run: Run, settings: SampleSettings, seed: int, conditional: bool) -> str:
    """The caption of a picture of samples: sampler, network calls, guidance, seed."""
    from ..generate import network_calls
    from ..viz.samples import sampling_caption

    return sampling_caption(settings.sampler, network_calls(run.schedule, settings),
                            settings.guidance if conditional else None, seed)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..generate import check_sample_memory, network_calls, sampler_steps
    from ..run import load
    from ..samplers import SamplerStep
    from ..viz.gif import subsample_indices
    from ..viz.samples import label_names
    from ..viz.trajectory import reverse_gif, x0_strip

    out = output_path(args.out, (".png", ".npz"))
    gif = output_path(args.gif, (".gif",), "--gif")
    strip = output_path(args.x0_strip, (".png",), "--x0-strip")
    distinct_outputs({"--out": out, "--gif": gif, "--x0-strip": strip})
    check_batch_size(args)
    loaded = load(args.run, device_from(args))
    points = loaded.data.get("kind") == "points"
    if strip and points:
        raise UserError("--x0-strip draws images; this run generates 2-D points (use --gif for their reverse "
                        "process)")
    settings = settings_from(args, loaded)
    n = args.n if args.n is not None else default_n(loaded)
    total = sampler_steps(loaded.schedule, settings)
    keep = set(subsample_indices(total, GIF_FRAMES)) if gif or strip else set()
    check_sample_memory(n, loaded.shape, len(keep))
    cond = conditions(args, loaded, n)
    steps: list[SamplerStep] = []
    callback = None
    if keep:

        def callback(step: SamplerStep) -> None:
            if step.index in keep:
                steps.append(dataclasses.replace(step, x_t=step.x_t.cpu(), x0_hat=step.x0_hat.cpu(),
                                                 x_next=step.x_next.cpu()))

    batch = n if callback is not None else args.batch_size  # one chunk, so the trajectory is whole
    calls = network_calls(loaded.schedule, settings, n, batch)
    announce_long_work("sample", calls, f"{settings.sampler} with {total:,} steps",
                       "fewer --steps (e.g. --steps 50) or --sampler dpm++ --steps 20 are much faster")
    x = loaded.sample(n, classes=args.classes, contexts=cond if args.context else None, seed=args.seed,
                      batch_size=batch, callback=callback, progress=progress_from(args), **setting_flags(args))
    labels = label_names(cond, loaded.class_names)
    text = caption(loaded, settings, args.seed, cond is not None)
    written: list[Path] = []
    try:
        write_samples(out, x, cond, loaded, labels, text)
        written.append(out)
        if gif:
            if points:
                from ..viz.scatter import reverse_scatter_gif  # matplotlib: only for 2-D points

                reverse_scatter_gif(steps, gif)
            else:
                reverse_gif(steps, gif, labels, show_x0=args.gif_x0, caption=text)
            written.append(gif)
        if strip:
            x0_strip(steps, strip)
    except UserError as exc:
        if not written:
            raise
        raise UserError(f"{exc}; already written: {', '.join(map(str, written))}") from None
    made = ", ".join(str(p) for p in (out, gif, strip) if p is not None)
    print(f"wrote {made} ({n} samples, {text})", file=sys.stderr)
    return 0


def write_samples(out: Path, x: torch.Tensor, cond: torch.Tensor | None, run: Run, labels: list[str] | None,
                  caption: str | None) -> None:
    """A labelled PNG grid (or a scatter plot for points) or an NPZ with ``images`` uint8 (N, H, W, C) and the
    conditions (``labels`` int64 or ``contexts`` float32, and ``class_names``)."""
    import io

    import numpy as np

    from ..files import atomic_write
    from ..viz.grid import save_image, to_uint8
    from ..viz.samples import sample_grid

    points = run.data.get("kind") == "points"
    if out.suffix.lower() == ".png":
        if points:
            from ..viz.scatter import scatter_png  # matplotlib: only for 2-D points

            scatter_png(x.numpy(), out, title=caption or "")
        else:
            save_image(sample_grid(to_uint8(x), labels, caption=caption), out)
        return
    arrays: dict[str, np.ndarray] = {"points": x.numpy().astype(np.float32)} if points else {"images": to_uint8(x)}
    if cond is not None:
        if cond.dtype.is_floating_point:
            arrays["contexts"] = cond.numpy().astype(np.float32)
        else:
            arrays["labels"] = cond.numpy().astype(np.int64)
    if run.data.get("class_names"):
        arrays["class_names"] = np.array(run.data["class_names"])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(out, buffer.getvalue())
