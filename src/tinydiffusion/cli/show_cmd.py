"""``tinydiffusion show forward|schedule|data|samplers|corrupt|minmax``: pictures of the process itself.

PyTorch and matplotlib are imported when a picture is made, not when the parser is built.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import UserError
from .choices import SAMPLERS, SCHEDULE_KINDS
from .common import (add_condition_flags, add_device, add_quiet, announce_long_work, conditions, device_from,
                     output_path, progress_from)
from .sample_cmd import add_sampler_flags

if TYPE_CHECKING:
    from ..schedule import NoiseSchedule

HELP = "pictures of diffusion: the forward process, schedules, a dataset, samplers side by side, seed figures"
STYLES = ("grid", "side-by-side", "percent")
MAX_TIMESTEPS = 1_000_000  #: the bound of schedule.timesteps in a config, too
MAX_PER_CLASS = 256
#: Steps per sampler in ``show samplers`` unless --steps says otherwise: seconds on a CPU, and enough to
#: show seed 002's lesson (the sampler without noise collapses to average-looking images).
COMPARE_STEPS = 100
DEFAULT_DATA = "fashion-mnist-mini"

EPILOG = """\
Every figure of the five tutorials, made by the tool (docs/seeds.md shows them all):

  seed 000  show forward --recipe dli-fashion16 --out f.png --gif f.gif       10x15 grid, step by step
            show forward --style side-by-side ...                            step by step vs one jump
            sample RUN --strip s.png                                         15-column reverse strip
            train --recipe dli-fashion16 (preview.strip = 15)                strips through training
            show samplers RUN --samplers ddpm ddpm-off-by-one --steps 150    the seed's noise slip
  seed 001  show corrupt --out c.png                                         corrupted-data rows
            show corrupt RUN --out p.png                                     + the network's predictions
            sample RUN --x0-strip x.png                                      x_t beside predicted x0
  seed 002  sample RUN --context hero=1,spell_icon=0.6 --out m.png           a named mixture of contexts
            show samplers RUN --out c.png                                    DDPM beside no added noise
  seed 003  show forward --style percent --recipe pulfer-mnist --out p.png   25/50/75/100 %
            sample RUN --gif g.gif --gif-frames 100                          the 100-frame generation GIF
            show minmax RUN --out m.png                                      per-image min-max vs fixed
  seed 004  show forward --recipe s-curve --out f.png --gif f.gif            2x5 panels of q(x_t), GIF
            sample RUN --strip s.png --gif r.gif                             1x10 reverse panels, GIF

Without --data, show forward and show corrupt use the recipe's (or the run's) data.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the epilog's table as written, and shows defaults."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.formatter_class = _Formatter
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True, parser_class=type(p))

    f = sub.add_parser("forward", help="the forward process of real data (seeds 000, 003 and 004)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    f.add_argument("--data", help=f"dataset spec (default: the --recipe's data, else {DEFAULT_DATA})")
    f.add_argument("--image-size", type=int, help="resize images first (default: the --recipe's size)")
    f.add_argument("--recipe", help="take the schedule and the data from a recipe (default: seed 000's T=150 "
                                    "linear schedule)")
    _schedule_flags(f)
    f.add_argument("--style", choices=STYLES, default="grid",
                   help="grid: seed 000's step-by-step 10x15 grid; side-by-side: step-by-step vs closed form; "
                        "percent: seed 003's 25/50/75/100 %% strip; 2-D sets: seed 004's panels of q(x_t | x_0)")
    f.add_argument("--at", metavar="T,T,...",
                   help="timesteps of the 2-D panels (default: 10 evenly spaced; seed 004: 0,1,...,9)")
    f.add_argument("-n", type=int, default=8, help="images for the side-by-side, percent and GIF views")
    f.add_argument("--out", required=True, help="FILE.png")
    f.add_argument("--gif", help="also animate it as FILE.gif")
    f.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("schedule", help="beta, alpha_bar and SNR of one or several schedules")
    s.add_argument("--schedule", dest="schedules", nargs="+", metavar="KIND:T[:BETA_START:BETA_END]",
                   help="e.g. linear:1000 cosine:1000 linear:150:1e-4:0.02")
    s.add_argument("--recipe", dest="recipes", nargs="+", help="the schedules of these recipes")
    s.add_argument("--out", required=True, help="FILE.png")

    d = sub.add_parser("data", help="a grid of examples, one row per class")
    d.add_argument("spec", help="dataset spec")
    d.add_argument("--image-size", type=int)
    d.add_argument("--per-class", type=int, default=8)
    d.add_argument("--out", required=True, help="FILE.png")
    d.add_argument("--seed", type=int, default=0)

    c = sub.add_parser("samplers", help="the same noise through several samplers, side by side (seed 002's demo)")
    c.add_argument("run", metavar="RUN_DIR")
    c.add_argument("--samplers", nargs="+", default=["ddpm", "ddpm-no-noise"], choices=list(SAMPLERS))
    c.add_argument("-n", type=int, default=None, help="samples per sampler (default: 2 per class, else 16)")
    c.add_argument("--steps", type=int,
                   help=f"steps of every sampler (default: {COMPARE_STEPS} for samplers that would take all T "
                        "steps, else each one's run default)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True, help="FILE.png")
    add_condition_flags(c)
    add_device(c)
    add_quiet(c)

    k = sub.add_parser("corrupt", help="seed 001: data mixed with uniform noise at amounts 0..1; with a run "
                                       "trained on that objective, its predictions as a third row")
    k.add_argument("run", metavar="RUN_DIR", nargs="?", help="a run of the corrupt objective (hf-mnist-basic)")
    k.add_argument("--data", help="dataset spec (default: the run's data, else mnist)")
    k.add_argument("--image-size", type=int, help="resize images first")
    k.add_argument("-n", type=int, default=8, help="images, amounts evenly spaced from 0 to 1")
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--out", required=True, help="FILE.png")
    add_device(k)

    m = sub.add_parser("minmax", help="seed 003: samples under the fixed pixel map beside its per-image "
                                      "min-max stretch, which hides samples that drift out of range")
    m.add_argument("run", metavar="RUN_DIR")
    m.add_argument("-n", type=int, default=16)
    m.add_argument("--out", required=True, help="FILE.png")
    add_condition_flags(m)
    add_sampler_flags(m)


def _schedule_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schedule", choices=[k for k in SCHEDULE_KINDS if k != "custom"], help="schedule kind")
    p.add_argument("--timesteps", type=int, help="T")
    p.add_argument("--beta-start", type=float)
    p.add_argument("--beta-end", type=float)


def parse_schedule(text: str) -> NoiseSchedule:
    """``KIND:T[:BETA_START:BETA_END]`` → a schedule."""
    from ..schedule import NoiseSchedule

    parts = text.split(":")
    try:
        kind, T = parts[0], int(parts[1])
        limits = [float(v) for v in parts[2:4]]
    except (IndexError, ValueError):
        raise UserError(f"--schedule {text!r}: write KIND:T or KIND:T:BETA_START:BETA_END, e.g. linear:1000") from None
    _check_timesteps(T, f"--schedule {text!r}")
    config = {"kind": kind, "timesteps": T}
    if limits:
        if len(limits) != 2:
            raise UserError(f"--schedule {text!r}: give both BETA_START and BETA_END")
        config.update(beta_start=limits[0], beta_end=limits[1])
    return NoiseSchedule.from_config(config)


def _check_timesteps(T: int, flag: str) -> None:
    if not 1 <= T <= MAX_TIMESTEPS:
        raise UserError(f"{flag}: T must be from 1 to {MAX_TIMESTEPS}, got {T}")


def _forward_schedule(args: argparse.Namespace) -> NoiseSchedule:
    """The schedule asked for; by default seed 000's, whose ᾱ_T the figure explains (so it does not warn)."""
    from ..config import build_config
    from ..schedule import NoiseSchedule
    from ..train.setup import build_schedule

    if args.recipe:
        return build_schedule(build_config(args.recipe))
    chosen = any(v is not None for v in (args.schedule, args.timesteps, args.beta_start, args.beta_end))
    if args.timesteps is not None:
        _check_timesteps(args.timesteps, "--timesteps")
    config = {"kind": args.schedule or "linear", "timesteps": 150 if args.timesteps is None else args.timesteps}
    if (args.schedule or "linear") != "cosine":
        config.update(beta_start=args.beta_start if args.beta_start is not None else 1e-4,
                      beta_end=args.beta_end if args.beta_end is not None else 0.02)
    return NoiseSchedule.from_config(config, warn=chosen)


def _timesteps(text: str | None, T: int) -> list[int] | None:
    """``--at 0,1,2`` → [0, 1, 2] (each in 0..T−1); None when not given."""
    if text is None:
        return None
    try:
        ts = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise UserError(f"--at takes whole timesteps separated by commas, like 0,1,2,3; got {text!r}") from None
    if not ts or min(ts) < 0 or max(ts) >= T:
        raise UserError(f"--at timesteps must lie in 0..{T - 1} (the schedule has T={T}), got {text!r}")
    return ts


def _forward_data(args: argparse.Namespace) -> tuple[str, int | None, int | None]:
    """The data of ``show forward``: --data, else the --recipe's, else the default; (spec, image size, points)."""
    from ..config import build_config

    if args.data is not None or not args.recipe:
        return args.data or DEFAULT_DATA, args.image_size, None
    data = build_config(args.recipe).data
    return data.spec, args.image_size or data.image_size, data.n


def show_forward(args: argparse.Namespace) -> None:
    import torch

    from ..data import load_dataset
    from ..rng import SeededNoise
    from ..viz.forward import (forward_gif, forward_grid, forward_percent_strip, forward_side_by_side,
                               schedule_caption)
    from ..viz.grid import save_image
    from ..viz.text import add_text

    out = output_path(args.out, (".png",))
    gif = output_path(args.gif, (".gif",), "--gif")
    if args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}")
    spec, image_size, n_points = _forward_data(args)
    dataset = load_dataset(spec, image_size=image_size, seed=args.seed, n=n_points)
    schedule = _forward_schedule(args)
    if dataset.kind == "points":
        from ..viz.scatter import forward_scatter_gif, forward_scatter_grid  # matplotlib: only for 2-D points

        points = torch.from_numpy(dataset.points)
        noise = SeededNoise.range(args.seed, len(points))
        at = _timesteps(args.at, schedule.num_timesteps)
        forward_scatter_grid(schedule, points, out, at, noise)
        if gif:  # the panels' timesteps as frames, as seed 004's GIF of its 10 panels
            forward_scatter_gif(schedule, points, gif, 10 if at is None else at, generator=noise)
        return
    if args.at is not None:
        raise UserError("--at chooses the panels of a 2-D set; for images use --style percent or side-by-side")
    picks = torch.linspace(0, len(dataset) - 1, min(args.n, len(dataset))).long()  # spread over the classes
    images = torch.from_numpy(dataset.images[picks.numpy()]).permute(0, 3, 1, 2).float() / 127.5 - 1
    noise = SeededNoise.range(args.seed, len(images))
    if args.style == "grid":
        figure = forward_grid(schedule, images[:1], generator=noise[:1])
    elif args.style == "side-by-side":
        figure = forward_side_by_side(schedule, images[:1], generator=noise[:1])
    else:
        figure = forward_percent_strip(schedule, images, generator=noise)
    save_image(add_text(figure, below=schedule_caption(schedule)), out)
    if gif:
        forward_gif(schedule, images, gif, generator=noise)


def show_schedule(args: argparse.Namespace) -> None:
    from ..config import build_config
    from ..schedule import NoiseSchedule
    from ..train.setup import build_schedule
    from ..viz.plots import schedule_plot

    out = output_path(args.out, (".png",))
    schedules: dict[str, NoiseSchedule] = {}
    for text in args.schedules or []:
        schedules[text] = parse_schedule(text)
    for name in args.recipes or []:
        schedules[f"recipe {name}"] = build_schedule(build_config(name))
    if not schedules:
        schedules = {"linear:1000": NoiseSchedule.linear(1000), "cosine:1000": NoiseSchedule.cosine(1000)}
    schedule_plot(schedules, out)


def show_data(args: argparse.Namespace) -> None:
    from ..data import load_dataset
    from ..data.preview import examples_per_class
    from ..viz.grid import labelled_grid, save_image, tile_scale
    from ..viz.text import add_text

    out = output_path(args.out, (".png",))
    if not 1 <= args.per_class <= MAX_PER_CLASS:
        raise UserError(f"--per-class must be from 1 to {MAX_PER_CLASS}, got {args.per_class}")
    dataset = load_dataset(args.spec, image_size=args.image_size, seed=args.seed)
    if dataset.kind == "points":
        from ..viz.scatter import scatter_png

        scatter_png(dataset.points, out, title=dataset.name)
        return
    rows, names = examples_per_class(dataset, per_class=args.per_class, seed=args.seed)
    grid = labelled_grid(list(rows), names, scale=tile_scale(rows.shape[2]))
    save_image(add_text(grid, below=f"{dataset.name}: {len(dataset):,} images"), out)


def show_samplers(args: argparse.Namespace) -> None:
    from ..generate import network_calls, sampler_steps
    from ..run import load
    from ..viz.samples import label_names, sampling_caption
    from ..viz.trajectory import compare_samplers_figure
    from .sample_cmd import default_n, settings_from

    out = output_path(args.out, (".png",))
    if args.n is not None and args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}")
    loaded = load(args.run, device_from(args))
    if loaded.data.get("kind") == "points":
        raise UserError("show samplers draws image grids; this run generates 2-D points")
    conditional = bool(loaded.num_classes or loaded.context_dim)
    n = args.n if args.n is not None else default_n(loaded, per_class=2) if conditional else 16
    cond = conditions(args, loaded, n)
    plans = {}
    for name in args.samplers:
        flags = argparse.Namespace(sampler=name, steps=args.steps, guidance=args.guidance)
        settings = settings_from(flags, loaded)
        if args.steps is None and settings.steps is None:  # all T steps: minutes on a CPU
            settings.steps = min(COMPARE_STEPS, loaded.schedule.num_timesteps)
        plans[name] = settings
    calls = sum(network_calls(loaded.schedule, s, n) for s in plans.values())
    announce_long_work("show samplers", calls, " and ".join(f"{k} ({sampler_steps(loaded.schedule, s):,} steps)"
                                                           for k, s in plans.items()),
                       "fewer --steps are faster")
    samples = {}
    for name, settings in plans.items():
        samples[f"{name}, {sampler_steps(loaded.schedule, settings):,} steps"] = loaded.sample(
            n, classes=args.classes, contexts=cond if args.context else None, seed=args.seed,
            progress=progress_from(args), sampler=name, steps=settings.steps, guidance=args.guidance)
    guidance = next(iter(plans.values())).guidance if cond is not None else None
    text = sampling_caption("same starting noise x_T for every sampler", calls, guidance, args.seed)
    compare_samplers_figure(samples, out, label_names(cond, loaded.class_names), caption=text)
    used = ", ".join(f"{k}: {sampler_steps(loaded.schedule, s):,} steps" for k, s in plans.items())
    print(f"show samplers: {used} (T={loaded.schedule.num_timesteps:,}; --steps N to change)", file=sys.stderr)


def show_corrupt(args: argparse.Namespace) -> None:
    """Seed 001's corrupted-data rows, and with a run of the corrupt objective its predictions row."""
    import torch

    from ..data import load_dataset
    from ..objectives import corrupt
    from ..rng import SeededNoise
    from ..run import load
    from ..value_range import DEFAULT_RANGE, pixels_to_range, to_signed_unit
    from ..viz.corrupt import CORRUPT_NOISE, corrupt_figure

    out = output_path(args.out, (".png",))
    if args.n < 2:
        raise UserError(f"-n must be at least 2 (amounts 0 and 1), got {args.n}")
    device = device_from(args)
    loaded = load(args.run, device) if args.run else None
    if loaded is not None and loaded.meta.get("objective") != "corrupt":
        raise UserError(f"{args.run} was trained with the {loaded.meta.get('objective', 'diffusion')} objective; "
                        "show corrupt needs a run of seed 001's corrupt objective (tinydiffusion train --recipe "
                        "hf-mnist-basic)")
    data = loaded.data if loaded is not None else {}
    spec = args.data or data.get("spec", "mnist")
    size = args.image_size or (data.get("image_size") if loaded is not None and not args.data else None)
    dataset = load_dataset(spec, image_size=size, seed=args.seed)
    if dataset.kind == "points":
        raise UserError(f"show corrupt draws images; {dataset.name} is a set of 2-D points")
    value_range = loaded.data_range if loaded is not None else DEFAULT_RANGE
    picks = torch.linspace(0, len(dataset) - 1, args.n).long()  # spread over the classes
    x0 = pixels_to_range(torch.from_numpy(dataset.images[picks.numpy()]).permute(0, 3, 1, 2).float(), value_range)
    amount = torch.linspace(0, 1, args.n)
    low, high = value_range
    u = SeededNoise.range(args.seed, args.n).rand(x0.shape[1:], CORRUPT_NOISE) * (high - low) + low
    noisy = corrupt(x0, amount, u)
    predictions = None
    if loaded is not None:
        T = loaded.schedule.num_timesteps
        with torch.no_grad():
            predictions = loaded.model(noisy.to(device), (amount * (T - 1)).to(device)).float().cpu()
        predictions = to_signed_unit(predictions, value_range)
    corrupt_figure(to_signed_unit(x0, value_range), to_signed_unit(noisy, value_range), amount.tolist(), out,
                   predictions)


def show_minmax(args: argparse.Namespace) -> None:
    """The same samples under the fixed pixel map and under seed 003's per-image min-max stretch."""
    from ..run import load
    from ..viz.minmax import minmax_comparison
    from ..viz.samples import label_names
    from .sample_cmd import caption, settings_from, setting_flags

    out = output_path(args.out, (".png",))
    if args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}")
    loaded = load(args.run, device_from(args))
    if loaded.data.get("kind") == "points":
        raise UserError("show minmax draws images; this run generates 2-D points")
    cond = conditions(args, loaded, args.n)
    x = loaded.sample(args.n, classes=args.classes, contexts=cond if args.context else None, seed=args.seed,
                      batch_size=args.batch_size, progress=progress_from(args), **setting_flags(args))
    text = caption(loaded, settings_from(args, loaded), args.seed, cond is not None)
    minmax_comparison(x, out, label_names(cond, loaded.class_names), caption=text)


def run(args: argparse.Namespace) -> int:
    from ..limits import check_seed

    if getattr(args, "seed", None) is not None:
        check_seed(args.seed, "--seed")
    handlers = {"forward": show_forward, "schedule": show_schedule, "data": show_data, "samplers": show_samplers,
                "corrupt": show_corrupt, "minmax": show_minmax}
    handlers[args.what](args)
    print(f"wrote {args.out}" + (f" and {args.gif}" if getattr(args, "gif", None) else ""), file=sys.stderr)
    return 0
