"""``tinydiffusion sample RUN``: images (a PNG grid or an NPZ of arrays) and, if asked, the reverse process."""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import LoadedModel, load_model
from ..errors import UserError
from ..files import atomic_write
from ..generate import SampleSettings, check_sample_memory, generate, sample_shape
from ..limits import check_seed
from ..samplers import SAMPLERS, SamplerStep, sampler_options, sampler_timesteps
from ..samplers.ancestral import VARIANCES
from ..samplers.common import SPACINGS
from ..viz.gif import subsample_indices
from ..viz.grid import make_grid, save_image, to_uint8
from ..viz.scatter import reverse_scatter_gif, scatter_png, scatter_strip
from ..viz.strip import IMAGE_COLUMNS, POINT_COLUMNS, reverse_strip, strip_indices
from ..viz.trajectory import reverse_gif, x0_strip
from .common import add_condition_flags, add_device, conditions, device_from, distinct_outputs, output_path

HELP = "draw samples from a trained run"
GIF_FRAMES = 60
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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory (or its model.safetensors)")
    p.add_argument("-n", type=int, default=64, help="number of samples")
    p.add_argument("--out", required=True, help="FILE.png (a grid) or FILE.npz (arrays images, labels/contexts)")
    p.add_argument("--gif", help="also write the reverse process of the samples as FILE.gif")
    p.add_argument("--gif-frames", type=int, default=GIF_FRAMES,
                   help="frames of the --gif, evenly spaced over the chain (seed 003: 100)")
    p.add_argument("--x0-strip", help="also write x_t beside the predicted x0 at a few steps (seed 001) as FILE.png")
    p.add_argument("--strip", help="also write the reverse chain at evenly spaced steps in one row per sample "
                                   f"(the first {STRIP_ROWS}) as FILE.png: seed 000's strip; for 2-D points one row "
                                   "of scatter panels, each with its own axes (seed 004)")
    p.add_argument("--strip-columns", type=int,
                   help=f"columns of the --strip (default {IMAGE_COLUMNS} for images as seed 000, "
                        f"{POINT_COLUMNS} for 2-D points as seed 004)")
    add_condition_flags(p)
    add_sampler_flags(p)


def settings_from(args: argparse.Namespace, loaded: LoadedModel) -> SampleSettings:
    """The run's sampling defaults with the flags that were given on top."""
    s = SampleSettings.from_dict(loaded.meta.get("sample", {}))
    given = set()
    if args.sampler is not None and args.sampler != s.sampler:
        s.sampler = args.sampler
        s.steps = None  # the sampler's own default unless --steps says otherwise
        given.add("sampler")
    for flag, field in (("steps", "steps"), ("eta", "eta"), ("spacing", "spacing"), ("variance", "variance"),
                        ("clip_x0", "clip_x0"), ("guidance", "guidance")):
        value = getattr(args, flag, None)
        if value is not None:
            setattr(s, field, value)
            given.add(field)

    def label(field: str) -> str:
        return f"--{field.replace('_', '-')}" if field in given else f"the run's sample.{field} (in {loaded.path})"

    s.check(label, objective=loaded.meta.get("objective"), prediction=loaded.prediction)
    # A flag the sampler does not use is an error; the run's own settings for another sampler just drop out.
    sampler_options(s.sampler, **{k: getattr(args, k, None) for k in ("eta", "variance", "spacing")})
    return s


def check_batch_size(args: argparse.Namespace) -> None:
    if args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    check_seed(args.seed, "--seed")


def run(args: argparse.Namespace) -> int:
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
    device = device_from(args)
    loaded = load_model(args.run, device)
    data = loaded.meta["data"]
    points = data.get("kind") == "points"
    if strip and points:
        raise UserError("--x0-strip draws images; this run generates 2-D points (use --strip or --gif for their "
                        "reverse process)")
    settings = settings_from(args, loaded)
    shape = sample_shape(data)
    columns = args.strip_columns or (POINT_COLUMNS if points else IMAGE_COLUMNS)
    keep: set[int] = set()
    if gif or strip or chain:
        total = _steps(loaded, settings)
        keep = set(subsample_indices(total, args.gif_frames)) | {0, total - 1}
        if chain:
            keep.update(strip_indices(total, columns))
    check_sample_memory(args.n, shape, len(keep))
    cond, per_row = conditions(args, loaded.meta["model_config"], args.n, data.get("class_names"))
    steps: list[SamplerStep] = []
    callback = None
    if keep:

        def callback(step: SamplerStep) -> None:
            if step.index in keep:
                steps.append(dataclasses.replace(step, x_t=step.x_t.cpu(), x0_hat=step.x0_hat.cpu(),
                                                 x_next=step.x_next.cpu()))

    batch = args.n if callback is not None else args.batch_size  # one chunk, so the trajectory is whole
    x = generate(loaded.model, loaded.schedule, shape, args.n, settings=settings, prediction=loaded.prediction,
                 seed=args.seed, cond=cond, batch_size=batch, device=device, callback=callback,
                 data_range=loaded.data_range)
    written: list[Path] = []
    try:
        write_samples(out, x, cond, data, per_row)
        written.append(out)
        if gif:
            if points:
                reverse_scatter_gif(steps, gif, max_frames=args.gif_frames)
            else:
                reverse_gif(steps, gif, nrow=per_row, max_frames=args.gif_frames)
            written.append(gif)
        if strip:
            x0_strip(steps, strip)
            written.append(strip)
        if chain:
            if points:
                scatter_strip(steps, chain, columns)
            else:
                reverse_strip(steps, chain, columns, rows=STRIP_ROWS)
    except UserError as exc:
        if not written:
            raise
        raise UserError(f"{exc}; already written: {', '.join(map(str, written))}") from None
    made = ", ".join(str(p) for p in (out, gif, strip, chain) if p is not None)
    print(f"wrote {made} ({args.n} samples, {settings.sampler}, "
          f"{SAMPLERS[settings.sampler].network_calls(_steps(loaded, settings))} network calls)",
          file=sys.stderr)
    return 0


def _steps(loaded: LoadedModel, s: SampleSettings) -> int:
    return len(sampler_timesteps(loaded.schedule, s.sampler, s.steps, s.spacing))


def write_samples(out: Path, x: torch.Tensor, cond: torch.Tensor | None, data: dict, per_row: int | None) -> None:
    """A PNG grid (or scatter plot for points) or an NPZ with ``images`` uint8 (N, H, W, C) and the conditions."""
    points = data.get("kind") == "points"
    if out.suffix.lower() == ".png":
        if points:
            scatter_png(x.numpy(), out)
        else:
            save_image(make_grid(to_uint8(x), nrow=per_row, scale=2), out)
        return
    arrays: dict[str, np.ndarray] = {"points": x.numpy().astype(np.float32)} if points else {"images": to_uint8(x)}
    if cond is not None:
        if cond.dtype.is_floating_point:
            arrays["contexts"] = cond.numpy().astype(np.float32)
        else:
            arrays["labels"] = cond.numpy().astype(np.int64)
    if data.get("class_names"):
        arrays["class_names"] = np.array(data["class_names"])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(out, buffer.getvalue())
