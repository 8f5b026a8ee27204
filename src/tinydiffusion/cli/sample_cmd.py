"""``tinydiffusion sample RUN``: images (a PNG grid or an NPZ of arrays) and, if asked, the reverse process.

PyTorch is imported when the command runs, not when the parser is built (see :mod:`.main`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from .choices import SAMPLERS, SPACINGS, STRIP_COLUMNS, VARIANCES
from .common import (add_condition_flags, add_device, add_quiet, announce_long_work, conditions, device_from,
                     distinct_outputs, output_path, progress_from)

if TYPE_CHECKING:
    import torch

    from ..generate import SampleSettings
    from ..run import Run

HELP = "draw samples from a trained run"
GIF_FRAMES = 40
STRIP_ROWS = 8  #: samples (rows) in an image --strip


def add_sampler_flags(p: argparse.ArgumentParser) -> None:
    """--sampler/--steps/--eta/... (defaults: the run's own [sample] settings)."""
    p.add_argument("--sampler", choices=list(SAMPLERS), help="default: the run's sampler")
    p.add_argument("--steps", type=int, help="sampler steps (network calls: steps, or 2*steps-1 for heun)")
    p.add_argument("--eta", type=float, help="DDIM noise: 0 deterministic, 1 like DDPM")
    p.add_argument("--spacing", choices=list(SPACINGS), help="where the steps sit among the training timesteps")
    p.add_argument("--variance", choices=list(VARIANCES), help="DDPM: sigma^2 = beta_tilde (posterior) or beta")
    p.add_argument("--clip-x0", action=argparse.BooleanOptionalAction, default=None,
                   help="clamp the predicted clean image to the data's range at every step ([-1, 1]; [0, 1] for "
                        "seed 001's hf-mnist-basic)")
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
    p.add_argument("--gif-frames", type=int, default=GIF_FRAMES,
                   help="frames of the --gif, evenly spaced over the chain (seed 003: 100)")
    p.add_argument("--x0-strip", help="also write x_t beside the predicted x0 at a few steps (seed 001) as FILE.png")
    p.add_argument("--strip", help="also write the reverse chain at evenly spaced steps in one row per sample "
                                   f"(the first {STRIP_ROWS}) as FILE.png: seed 000's strip; for 2-D points one row "
                                   "of scatter panels, each with its own axes (seed 004)")
    p.add_argument("--strip-columns", type=int,
                   help=f"columns of the --strip (default {STRIP_COLUMNS['image']} for images as seed 000, "
                        f"{STRIP_COLUMNS['points']} for 2-D points as seed 004)")
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
    from ..viz.strip import reverse_strip, strip_indices
    from ..viz.trajectory import reverse_gif, x0_strip

    out = output_path(args.out, (".png", ".npz"))
    gif = output_path(args.gif, (".gif",), "--gif")
    strip = output_path(args.x0_strip, (".png",), "--x0-strip")
    chain = output_path(args.strip, (".png",), "--strip")
    distinct_outputs({"--out": out, "--gif": gif, "--x0-strip": strip, "--strip": chain})
    check_batch_size(args)
    if args.gif_frames < 2:
        raise UserError(f"--gif-frames must be at least 2 (the noise and the sample), got {args.gif_frames}")
    if args.strip_columns is not None and args.strip_columns < 1:
        raise UserError(f"--strip-columns must be at least 1, got {args.strip_columns}")
    loaded = load(args.run, device_from(args))
    points = loaded.data.get("kind") == "points"
    if strip and points:
        raise UserError("--x0-strip draws images; this run generates 2-D points (use --strip or --gif for their "
                        "reverse process)")
    settings = settings_from(args, loaded)
    n = args.n if args.n is not None else default_n(loaded)
    total = sampler_steps(loaded.schedule, settings)
    columns = args.strip_columns or STRIP_COLUMNS["points" if points else "image"]
    keep = set(subsample_indices(total, args.gif_frames)) | {0, total - 1} if gif or strip or chain else set()
    if chain:
        keep.update(strip_indices(total, columns))
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

                reverse_scatter_gif(steps, gif, max_frames=args.gif_frames)
            else:
                reverse_gif(steps, gif, labels, show_x0=args.gif_x0, caption=text, max_frames=args.gif_frames)
            written.append(gif)
        if strip:
            x0_strip(steps, strip)
            written.append(strip)
        if chain:
            if points:
                from ..viz.scatter import scatter_strip  # matplotlib: only for 2-D points

                scatter_strip(steps, chain, columns)
            else:
                reverse_strip(steps, chain, columns, rows=STRIP_ROWS)
    except UserError as exc:
        if not written:
            raise
        raise UserError(f"{exc}; already written: {', '.join(map(str, written))}") from None
    made = ", ".join(str(p) for p in (out, gif, strip, chain) if p is not None)
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
