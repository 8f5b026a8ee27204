"""Make the pictures of docs/seeds.md with the tool itself, from finished runs of the seed recipes.

    python scripts/make_seed_gallery.py [--runs runs] [--out docs/images/seeds] [--only 000 004]

Expects ``RUNS/<recipe>`` for the runs it draws from (train them first, e.g.
``tinydiffusion train --recipe s-curve-fast --out runs/s-curve-fast``): dli-fashion16, hf-mnist-basic,
hf-mnist-unet2d-fast, dlai-tiles-fast, pulfer-mnist-fast and s-curve-fast. Every picture is one
``tinydiffusion`` command (printed as it runs), except the "through training" figures, which lay out
what a run saved with its previews (``samples/step-*.png`` and ``-strip.png``, what ``report.html``
shows).
Finally every picture is made small for the repository: PNGs at most ``MAX_WIDTH`` pixels wide with a
palette of ``COLOURS`` colours (they hold few colours), GIF frames at most ``MAX_GIF_WIDTH`` wide with
``GIF_COLOURS`` colours, each frame keeping its duration.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from PIL import Image, ImageSequence

from tinydiffusion.cli.main import main
from tinydiffusion.viz.gif import subsample
from tinydiffusion.viz.grid import image_table, save_image

SEEDS = ("000", "001", "002", "003", "004")
MAX_WIDTH = 1200
COLOURS = 256
MAX_GIF_WIDTH = 320
GIF_COLOURS = 32
#: Narrower GIFs where many frames of noise would make a large file (seed 003's 100 frames: one pixel per pixel).
GIF_WIDTHS = {"003-generation.gif": 60}


def tool(*args: str) -> None:
    """Run one tinydiffusion command (and say which)."""
    print("tinydiffusion " + shlex.join(args), file=sys.stderr)
    if main(list(args)) != 0:
        raise SystemExit(f"failed: tinydiffusion {shlex.join(args)}")


def through_training(run: Path, path: Path, rows: int = 6) -> None:
    """The strips a run wrote at its previews, one row per preview, named by the step (seeds 000, 004)."""
    strips = sorted((run / "samples").glob("step-*-strip.png"))
    if not strips:
        raise SystemExit(f"{run} has no samples/step-*-strip.png; train it with preview.strip > 0")
    chosen = subsample(strips, rows)
    images = [Image.open(p).convert("RGB") for p in chosen]
    names = [f"step {int(p.name.split('-')[1]):,}" for p in chosen]
    save_image(image_table([[im] for im in images], names), path)


def grids_through_training(run: Path, path: Path, count: int = 4) -> None:
    """The preview grids a run wrote (EMA weights), ``count`` of them side by side, named by the step (seed 002)."""
    grids = sorted(p for p in (run / "samples").glob("step-*.png") if p.stem.count("-") == 1)
    if not grids:
        raise SystemExit(f"{run} has no samples/step-*.png")
    chosen = subsample(grids, count)
    images = [Image.open(p).convert("RGB") for p in chosen]
    save_image(image_table([images], None, [f"step {int(p.stem.split('-')[1]):,}" for p in chosen]), path)


def shrink(path: Path) -> None:
    """Rewrite a PNG at most MAX_WIDTH wide, with a COLOURS-colour palette, optimised."""
    with Image.open(path) as im:
        image = im.convert("RGB")
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.Resampling.LANCZOS)
    image.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def shrink_gif(path: Path, max_width: int = MAX_GIF_WIDTH) -> None:
    """Rewrite a GIF with frames at most ``max_width`` wide and GIF_COLOURS colours, durations kept."""
    frames, durations = [], []
    with Image.open(path) as im:
        loop = im.info.get("loop", 0)
        for frame in ImageSequence.Iterator(im):
            durations.append(frame.info.get("duration", 100))
            image = frame.convert("RGB")
            if image.width > max_width:
                size = (max_width, round(image.height * max_width / image.width))
                image = image.resize(size, Image.Resampling.NEAREST)
            frames.append(image.quantize(colors=GIF_COLOURS, method=Image.Quantize.MEDIANCUT,
                                         dither=Image.Dither.NONE))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=loop, optimize=True)


def seed_000(runs: Path, out: Path) -> None:
    run = runs / "dli-fashion16"
    tool("show", "forward", "--recipe", "dli-fashion16", "--out", str(out / "000-forward.png"), "--gif",
         str(out / "000-forward.gif"))
    tool("show", "forward", "--recipe", "dli-fashion16", "--style", "side-by-side", "--out",
         str(out / "000-side-by-side.png"))
    through_training(run, out / "000-strips.png")
    tool("sample", str(run), "-n", "32", "--out", str(out / "000-samples.png"), "--strip",
         str(out / "000-strip.png"))
    tool("show", "samplers", str(run), "-n", "16", "--samplers", "ddpm", "ddpm-off-by-one", "--out",
         str(out / "000-off-by-one.png"))


def seed_001(runs: Path, out: Path) -> None:
    run = runs / "hf-mnist-basic"
    tool("show", "corrupt", "--out", str(out / "001-corrupt.png"))
    tool("show", "corrupt", str(run), "--out", str(out / "001-predictions.png"))
    tool("sample", str(run), "-n", "32", "--out", str(out / "001-samples.png"), "--x0-strip",
         str(out / "001-x0-strip.png"))
    tool("sample", str(runs / "hf-mnist-unet2d-fast"), "-n", "32", "--out", str(out / "001-unet2d-samples.png"))


def seed_002(runs: Path, out: Path) -> None:
    run = runs / "dlai-tiles-fast"
    grids_through_training(run, out / "002-training.png")
    tool("sample", str(run), "-n", "36", "--out", str(out / "002-per-class.png"))
    tool("sample", str(run), "-n", "6", "--out", str(out / "002-reverse.png"), "--gif", str(out / "002-reverse.gif"),
         "--gif-frames", "26")
    (out / "002-reverse.png").unlink()  # the GIF's last frame
    tool("sample", str(run), "-n", "16", "--context", "hero=1", "--context", "hero=1,spell_icon=0.6",
         "--context", "item=0.6,spell_icon=0.4", "--context", "monster=1,terrain=1", "--out",
         str(out / "002-mixtures.png"))
    tool("show", "samplers", str(run), "-n", "12", "--out", str(out / "002-no-noise.png"))


def seed_003(runs: Path, out: Path) -> None:
    run = runs / "pulfer-mnist-fast"
    tool("show", "forward", "--recipe", "pulfer-mnist", "--style", "percent", "--out", str(out / "003-percent.png"))
    tool("sample", str(run), "-n", "36", "--out", str(out / "003-samples.png"))
    tool("sample", str(run), "-n", "4", "--sampler", "ddpm", "--out", str(out / "003-generation.png"), "--gif",
         str(out / "003-generation.gif"), "--gif-frames", "100")
    (out / "003-generation.png").unlink()  # the GIF's last frame
    tool("show", "minmax", str(run), "-n", "16", "--sampler", "ddpm", "--no-clip-x0", "--out",
         str(out / "003-minmax.png"))


def seed_004(runs: Path, out: Path) -> None:
    run = runs / "s-curve-fast"
    tool("show", "forward", "--recipe", "s-curve", "--at", "0,1,2,3,4,5,6,7,8,9", "--out",
         str(out / "004-forward.png"), "--gif", str(out / "004-forward.gif"))
    tool("show", "forward", "--recipe", "s-curve", "--out", str(out / "004-forward-whole.png"))
    through_training(run, out / "004-training.png", rows=5)
    tool("sample", str(run), "-n", "2000", "--out", str(out / "004-samples.png"), "--strip",
         str(out / "004-strip.png"), "--gif", str(out / "004-reverse.gif"), "--gif-frames", "16")


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs", help="folder holding the finished runs, one per recipe")
    parser.add_argument("--out", default="docs/images/seeds", help="where the pictures go")
    parser.add_argument("--only", nargs="+", choices=SEEDS, help="only these seeds")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    makers = {"000": seed_000, "001": seed_001, "002": seed_002, "003": seed_003, "004": seed_004}
    for seed in args.only or SEEDS:
        makers[seed](Path(args.runs), out)
        for path in sorted(out.glob(f"{seed}-*.png")):
            shrink(path)
        for path in sorted(out.glob(f"{seed}-*.gif")):
            shrink_gif(path, GIF_WIDTHS.get(path.name, MAX_GIF_WIDTH))


if __name__ == "__main__":
    main_()
