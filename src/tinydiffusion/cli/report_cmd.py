"""``tinydiffusion report RUN``: make the pictures of a run and write RUN/report.html (self-contained).

PyTorch and matplotlib are imported when the command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError
from .common import add_device, add_quiet, announce_long_work, device_from, progress_from
from .show_cmd import COMPARE_STEPS

HELP = "write RUN_DIR/report.html: a summary, data, loss curve, samples, forward and reverse animations, metrics"
MEDIA_DIR = "report-media"
MAX_PER_CLASS = 64
#: Reverse-process frames kept for the animation.
GIF_FRAMES = 40


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("-n", type=int, default=8, help="samples per class in the per-class grid")
    p.add_argument("--compare", action="store_true",
                   help=f"also run DDPM beside seed 002's noise-free sampler ({COMPARE_STEPS} steps each)")
    p.add_argument("--seed", type=int, default=0)
    add_device(p)
    add_quiet(p)


def _facts(run) -> dict[str, str]:  # noqa: ANN001 (a tinydiffusion.Run)
    """Summary rows only the checkpoint knows: the network and the data."""
    params = sum(p.numel() for p in run.model.parameters())
    data = run.data
    rows = {"network": f"{run.meta['model']}, {params:,} parameters, predicts {run.prediction}"}
    if data.get("kind") == "points":
        rows["data"] = f"{data['spec']}: {data.get('dim', 2)}-D points"
    else:
        classes = run.num_classes or run.context_dim
        colour = {1: "grey", 3: "colour"}.get(int(data["channels"]), f"{data['channels']} channels")
        rows["data"] = (f"{data['spec']}: {data['image_size']}×{data['image_size']} px, {colour}"
                        + (f", {classes} classes" if classes else ""))
    return rows


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from ..data import load_dataset
    from ..data.preview import examples_per_class
    from ..files import check_writable, ensure_folder
    from ..generate import network_calls, sampler_steps
    from ..limits import check_seed
    from ..report import write_report
    from ..rng import SeededNoise
    from ..run import load
    from ..samplers import SamplerStep
    from ..viz.forward import forward_gif, forward_side_by_side
    from ..viz.gif import subsample_indices
    from ..viz.grid import labelled_grid, save_image, tile_scale, to_uint8
    from ..viz.plots import schedule_plot
    from ..viz.samples import label_names, sample_grid, sampling_caption
    from ..viz.scatter import forward_scatter_gif, forward_scatter_grid, reverse_scatter_gif, scatter_png, scatter_strip
    from ..viz.strip import IMAGE_COLUMNS, POINT_COLUMNS, reverse_strip, strip_indices
    from ..viz.trajectory import compare_samplers_figure, reverse_gif, x0_strip

    check_seed(args.seed, "--seed")
    if not 1 <= args.n <= MAX_PER_CLASS:
        raise UserError(f"-n (samples per class) must be from 1 to {MAX_PER_CLASS}, got {args.n}")
    run_dir = Path(args.run)
    loaded = load(run_dir, device_from(args))
    data, settings = loaded.data, loaded.defaults
    progress = progress_from(args)
    check_writable(run_dir, "report")
    media_dir = ensure_folder(run_dir / MEDIA_DIR)
    media: dict[str, Path] = {"schedule": schedule_plot(loaded.schedule, media_dir / "schedule.png")}
    dataset = load_dataset(data["spec"], image_size=data.get("image_size") if data.get("kind") == "image" else None,
                           seed=args.seed)
    classes = loaded.num_classes or loaded.context_dim
    n = args.n * classes if classes else args.n * args.n
    cond = loaded.conditions(n)
    total = sampler_steps(loaded.schedule, settings)
    points = dataset.kind == "points"
    columns = POINT_COLUMNS if points else IMAGE_COLUMNS
    keep = set(subsample_indices(total, GIF_FRAMES)) | set(strip_indices(total, columns))
    steps: list[SamplerStep] = []

    def callback(step: SamplerStep) -> None:
        if step.index in keep:
            steps.append(dataclasses.replace(step, x_t=step.x_t.cpu(), x0_hat=step.x0_hat.cpu(), x_next=step.x_next.cpu()))

    announce_long_work("report", network_calls(loaded.schedule, settings, n, n), f"sampling with {settings.sampler}",
                       "a smaller -n is faster")
    x = loaded.sample(n, seed=args.seed, batch_size=n, callback=callback, progress=progress)
    caption = sampling_caption(settings.sampler, network_calls(loaded.schedule, settings),
                               settings.guidance if cond is not None else None, args.seed)
    if points:
        cloud = torch.from_numpy(dataset.points)
        noise = SeededNoise.range(args.seed, len(cloud))
        media["dataset"] = scatter_png(cloud, media_dir / "dataset.png", title=dataset.name)
        media["per_class"] = scatter_png(x, media_dir / "samples.png", title=caption)
        media["forward_scatter"] = forward_scatter_gif(loaded.schedule.to("cpu"), cloud, media_dir / "forward.gif",
                                                       generator=noise)
        media["forward_panels"] = forward_scatter_grid(loaded.schedule.to("cpu"), cloud,
                                                       media_dir / "forward-panels.png", generator=noise)
        media["reverse_scatter"] = reverse_scatter_gif(steps, media_dir / "reverse.gif")
        media["reverse_strip"] = scatter_strip(steps, media_dir / "reverse-strip.png", columns)
    else:
        rows, names = examples_per_class(dataset, per_class=8, seed=args.seed)
        media["dataset"] = save_image(labelled_grid(list(rows), names, scale=tile_scale(rows.shape[2])),
                                      media_dir / "dataset.png")
        labels = label_names(cond, loaded.class_names)
        media["per_class"] = save_image(sample_grid(to_uint8(x), labels, caption=caption), media_dir / "samples.png")
        picks = torch.linspace(0, len(dataset) - 1, 8).long().numpy()
        real = torch.from_numpy(dataset.images[picks]).permute(0, 3, 1, 2).float() / 127.5 - 1
        cpu_schedule = loaded.schedule.to("cpu")
        media["forward"] = forward_gif(cpu_schedule, real, media_dir / "forward.gif",
                                       generator=SeededNoise.range(args.seed, len(real)))
        media["forward_side_by_side"] = save_image(
            forward_side_by_side(cpu_schedule, real[:1], generator=SeededNoise.range(args.seed, 1)),
            media_dir / "forward-side-by-side.png")
        # the animation with its x̂₀ pane shows up to 4 samples per class, so it fits the page at full size
        few = [i for i in range(n) if i % args.n < 4] if classes else list(range(min(n, 16)))
        trajectory = [dataclasses.replace(s, x_t=s.x_t[few], x0_hat=s.x0_hat[few], x_next=s.x_next[few])
                      for s in steps]
        media["reverse"] = reverse_gif(trajectory, media_dir / "reverse.gif", [labels[i] for i in few] if labels
                                       else None, show_x0=True, caption=caption)
        media["x0_strip"] = x0_strip(steps, media_dir / "x0-strip.png")
        media["reverse_strip"] = reverse_strip(steps, media_dir / "reverse-strip.png", columns, rows=4)
        if args.compare:  # seed 002's lesson: without the added noise, samples collapse to the average
            count = 2 * classes if classes else 16
            compare = {f"{name}, {COMPARE_STEPS} steps": loaded.sample(count, seed=args.seed, sampler=name,
                                                                       steps=COMPARE_STEPS, progress=progress)
                       for name in ("ddpm", "ddpm-no-noise")}
            media["compare_samplers"] = compare_samplers_figure(
                compare, media_dir / "compare.png", label_names(loaded.conditions(count), loaded.class_names))
    facts = _facts(loaded)
    facts["samples"] = (f"{args.n} per class" if classes else f"{n}") + f": {caption}"
    path = write_report(run_dir, media, facts)
    print(f"wrote {path}", file=sys.stderr)
    return 0

