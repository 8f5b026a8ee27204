"""``tinydiffusion report RUN``: make the pictures of a run and write RUN/report.html (self-contained)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from ..checkpoint import load_model
from ..data import load_dataset
from ..data.preview import examples_per_class
from ..errors import UserError
from ..files import check_writable, ensure_folder
from ..generate import SampleSettings, class_rows, generate, sample_shape
from ..limits import check_seed
from ..report import write_report
from ..rng import SeededNoise
from ..samplers import SamplerStep, sampler_timesteps
from ..viz.forward import forward_gif, forward_side_by_side
from ..viz.gif import subsample_indices
from ..viz.grid import labelled_grid, make_grid, save_image, to_uint8
from ..viz.plots import schedule_plot
from ..viz.scatter import forward_scatter_gif, forward_scatter_grid, reverse_scatter_gif, scatter_png, scatter_strip
from ..viz.strip import IMAGE_COLUMNS, POINT_COLUMNS, reverse_strip, strip_indices
from ..viz.trajectory import compare_samplers_figure, reverse_gif, x0_strip
from .common import add_device, device_from

HELP = "write RUN_DIR/report.html: config, data, loss curve, samples, forward and reverse animations, metrics"
MEDIA_DIR = "report-media"
MAX_PER_CLASS = 64


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("-n", type=int, default=8, help="samples per class in the per-class grid")
    p.add_argument("--compare", action="store_true",
                   help="also run DDPM beside seed 002's noise-free sampler (all T steps: slow on a CPU)")
    p.add_argument("--seed", type=int, default=0)
    add_device(p)


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run)
    check_seed(args.seed, "--seed")
    if not 1 <= args.n <= MAX_PER_CLASS:
        raise UserError(f"-n (samples per class) must be from 1 to {MAX_PER_CLASS}, got {args.n}")
    device = device_from(args)
    loaded = load_model(run_dir, device)
    data, meta = loaded.meta["data"], loaded.meta
    check_writable(run_dir, "report")
    media_dir = ensure_folder(run_dir / MEDIA_DIR)
    media: dict[str, Path] = {"schedule": schedule_plot(loaded.schedule, media_dir / "schedule.png")}
    settings = SampleSettings.from_dict(meta.get("sample", {}))
    dataset = load_dataset(data["spec"], image_size=data.get("image_size") if data.get("kind") == "image" else None,
                           seed=args.seed)
    shape = sample_shape(data)
    num = int(meta["model_config"].get("num_classes") or meta["model_config"].get("context_dim") or 0)
    per = args.n
    cond = class_rows(num * per, num, one_hot=not meta["model_config"].get("num_classes"))[0] if num else None
    total = len(sampler_timesteps(loaded.schedule, settings.sampler, settings.steps, settings.spacing))
    points = dataset.kind == "points"
    columns = POINT_COLUMNS if points else IMAGE_COLUMNS
    keep = set(subsample_indices(total, 40)) | set(strip_indices(total, columns))
    steps: list[SamplerStep] = []

    def callback(step: SamplerStep) -> None:
        if step.index in keep:
            steps.append(dataclasses.replace(step, x_t=step.x_t.cpu(), x0_hat=step.x0_hat.cpu(), x_next=step.x_next.cpu()))

    n = len(cond) if cond is not None else per * per
    x = generate(loaded.model, loaded.schedule, shape, n, settings=settings, prediction=loaded.prediction,
                 seed=args.seed, cond=cond, batch_size=n, device=device, callback=callback,
                 data_range=loaded.data_range)
    if dataset.kind == "points":
        points = torch.from_numpy(dataset.points)
        media["dataset"] = scatter_png(points, media_dir / "dataset.png", title=dataset.name)
        media["per_class"] = scatter_png(x, media_dir / "samples.png", title="samples")
        noise = SeededNoise.range(args.seed, len(points))
        media["forward_scatter"] = forward_scatter_gif(loaded.schedule.to("cpu"), points, media_dir / "forward.gif",
                                                       generator=noise)
        media["forward_panels"] = forward_scatter_grid(loaded.schedule.to("cpu"), points,
                                                       media_dir / "forward-panels.png", generator=noise)
        media["reverse_scatter"] = reverse_scatter_gif(steps, media_dir / "reverse.gif")
        media["reverse_strip"] = scatter_strip(steps, media_dir / "reverse-strip.png", columns)
    else:
        rows, names = examples_per_class(dataset, per_class=8, seed=args.seed)
        media["dataset"] = save_image(labelled_grid(list(rows), names, scale=2), media_dir / "dataset.png")
        images = to_uint8(x)
        if num:
            class_names = data.get("class_names") or [str(i) for i in range(num)]
            grid = labelled_grid([images[i * per:(i + 1) * per] for i in range(num)], class_names[:num], scale=2)
        else:
            grid = make_grid(images, nrow=per, scale=2)
        media["per_class"] = save_image(grid, media_dir / "samples.png")
        picks = torch.linspace(0, len(dataset) - 1, 8).long().numpy()
        real = torch.from_numpy(dataset.images[picks]).permute(0, 3, 1, 2).float() / 127.5 - 1
        cpu_schedule = loaded.schedule.to("cpu")
        media["forward"] = forward_gif(cpu_schedule, real, media_dir / "forward.gif",
                                       generator=SeededNoise.range(args.seed, len(real)))
        media["forward_side_by_side"] = save_image(
            forward_side_by_side(cpu_schedule, real[:1], generator=SeededNoise.range(args.seed, 1)),
            media_dir / "forward-side-by-side.png")
        media["reverse"] = reverse_gif(steps, media_dir / "reverse.gif", nrow=per)
        media["x0_strip"] = x0_strip(steps, media_dir / "x0-strip.png")
        media["reverse_strip"] = reverse_strip(steps, media_dir / "reverse-strip.png", columns, rows=4)
        if args.compare:
            compare = {}
            for name in ("ddpm", "ddpm-no-noise"):
                s = dataclasses.replace(settings, sampler=name, steps=None)
                compare[name] = generate(loaded.model, loaded.schedule, shape, min(n, 16), settings=s,
                                         prediction=loaded.prediction, seed=args.seed,
                                         cond=cond[:16] if cond is not None else None, device=device,
                                         data_range=loaded.data_range)
            media["compare_samplers"] = compare_samplers_figure(compare, media_dir / "compare.png")
    path = write_report(run_dir, media)
    print(f"wrote {path}", file=sys.stderr)
    return 0
