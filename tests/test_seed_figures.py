"""Every seed recipe trains a few steps and the tool draws that tutorial's figures from it.

Each test trains the seed's recipe (its network, tiny data and batch) and makes the figures its
tutorial shows, through the CLI; every picture must exist and have more than one pixel value (a GIF:
frames that differ). docs/seeds.md shows the same figures from full runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from tinydiffusion.cli.main import main

QUICK = ["--set", "log.progress=false", "--set", "log.tensorboard=off", "--set", "log.every=1",
         "--set", "optim.warmup_steps=0"]


def train(recipe: str, out: Path, steps: int = 2, *extra: str) -> Path:
    assert main(["train", "--recipe", recipe, "--out", str(out), "--steps", str(steps), *QUICK, *extra]) == 0
    return out


def pixels(path: Path) -> np.ndarray:
    """The picture as an array; fails unless it has more than one pixel value."""
    assert path.is_file(), f"{path} was not written"
    with Image.open(path) as im:
        array = np.asarray(im.convert("RGB"))
    assert array.min() < array.max(), f"{path} is one flat colour"
    return array


def gif_frames(path: Path) -> list[np.ndarray]:
    """The frames of a GIF; fails unless there are at least two and they differ."""
    assert path.is_file(), f"{path} was not written"
    with Image.open(path) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    assert len(frames) >= 2 and any((f != frames[0]).any() for f in frames[1:]), f"{path} does not move"
    return frames


def test_seed_000_dli_fashion16(tmp_path: Path) -> None:
    run = train("dli-fashion16", tmp_path / "run", 2, "--batch-size", "8", "--set", "data.n=32",
                "--set", "preview.every=1", "--set", "preview.n=2", "--set", "preview.steps=30",
                "--set", "sample.steps=30")
    strip = pixels(run / "samples" / "step-00000002-strip.png")  # the 15-column strip of every preview
    assert strip.shape[1] > 6 * strip.shape[0]
    assert (run / "samples" / "step-00000001-strip.png").is_file()
    assert main(["show", "forward", "--recipe", "dli-fashion16", "--data", "fashion-mnist-mini", "--out",
                 str(tmp_path / "grid.png"), "--gif", str(tmp_path / "grid.gif")]) == 0
    pixels(tmp_path / "grid.png")
    gif_frames(tmp_path / "grid.gif")
    assert main(["show", "forward", "--style", "side-by-side", "--recipe", "dli-fashion16", "--data",
                 "fashion-mnist-mini", "--out", str(tmp_path / "sbs.png")]) == 0
    pixels(tmp_path / "sbs.png")
    assert main(["sample", str(run), "-n", "2", "--out", str(tmp_path / "s.png"), "--strip",
                 str(tmp_path / "strip.png")]) == 0
    assert pixels(tmp_path / "strip.png").shape[0] > pixels(run / "samples" / "step-00000002-strip.png").shape[0]
    assert main(["show", "samplers", str(run), "-n", "2", "--samplers", "ddpm", "ddpm-off-by-one", "--out",
                 str(tmp_path / "slip.png")]) == 0
    pixels(tmp_path / "slip.png")
    assert main(["report", str(run), "-n", "1"]) == 0
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "reverse process at step 2" in page and "reverse process at step 1" in page


def test_seed_001_hf_mnist_basic(tmp_path: Path) -> None:
    run = train("hf-mnist-basic", tmp_path / "run", 2, "--batch-size", "8", "--set", "data.n=32",
                "--set", "preview.n=4")
    pixels(run / "samples" / "step-00000002.png")
    assert main(["show", "corrupt", "--out", str(tmp_path / "rows.png")]) == 0
    two = pixels(tmp_path / "rows.png")
    assert main(["show", "corrupt", str(run), "--out", str(tmp_path / "predictions.png")]) == 0
    three = pixels(tmp_path / "predictions.png")
    assert three.shape[0] > two.shape[0] * 1.3  # a third row
    assert main(["sample", str(run), "-n", "4", "--out", str(tmp_path / "s.png"), "--x0-strip",
                 str(tmp_path / "x0.png")]) == 0
    pixels(tmp_path / "x0.png")


def test_seed_001_hf_mnist_unet2d(tmp_path: Path) -> None:
    run = train("hf-mnist-unet2d-fast", tmp_path / "run", 2, "--batch-size", "4", "--set", "data.n=16",
                "--set", "preview.n=2", "--set", "sample.steps=2")
    assert main(["sample", str(run), "-n", "2", "--out", str(tmp_path / "s.png"), "--gif",
                 str(tmp_path / "s.gif")]) == 0
    pixels(tmp_path / "s.png")
    gif_frames(tmp_path / "s.gif")


def test_seed_002_dlai_tiles(tmp_path: Path) -> None:
    run = train("dlai-tiles-fast", tmp_path / "run", 2, "--batch-size", "4", "--set", "data.n=24",
                "--set", "preview.n=6", "--set", "sample.steps=3")
    pixels(run / "samples" / "step-00000002.png")
    named, raw = tmp_path / "named.npz", tmp_path / "raw.npz"
    assert main(["sample", str(run), "-n", "2", "--context", "hero=1,spell_icon=0.6", "--out", str(named)]) == 0
    assert main(["sample", str(run), "-n", "2", "--context", "1,0,0,0.6,0,0", "--out", str(raw)]) == 0
    np.testing.assert_array_equal(np.load(named)["contexts"], np.load(raw)["contexts"])
    np.testing.assert_array_equal(np.load(named)["images"], np.load(raw)["images"])
    assert main(["sample", str(run), "-n", "4", "--context", "hero=1", "--context", "Spell icon=0.6,item=0.4",
                 "--out", str(tmp_path / "mix.png")]) == 0
    pixels(tmp_path / "mix.png")
    assert main(["show", "samplers", str(run), "-n", "2", "--steps", "5", "--out", str(tmp_path / "noise.png")]) == 0
    pixels(tmp_path / "noise.png")


def test_seed_003_pulfer_mnist(tmp_path: Path) -> None:
    run = train("pulfer-mnist-fast", tmp_path / "run", 2, "--batch-size", "4", "--set", "data.n=16",
                "--set", "preview.n=2", "--set", "sample.steps=2")
    assert main(["show", "forward", "--style", "percent", "--recipe", "pulfer-mnist", "-n", "4", "--out",
                 str(tmp_path / "percent.png")]) == 0
    pixels(tmp_path / "percent.png")
    gif = tmp_path / "generation.gif"
    assert main(["sample", str(run), "-n", "4", "--sampler", "ddpm", "--steps", "120", "--out",
                 str(tmp_path / "s.png"), "--gif", str(gif), "--gif-frames", "100"]) == 0
    assert len(gif_frames(gif)) == 100  # seed 003's 100 frames (the last one held on screen)
    assert main(["show", "minmax", str(run), "-n", "4", "--out", str(tmp_path / "minmax.png")]) == 0
    pixels(tmp_path / "minmax.png")


def test_seed_004_s_curve(tmp_path: Path) -> None:
    run = train("s-curve", tmp_path / "run", 2, "--set", "preview.n=200", "--set", "preview.steps=20")
    pixels(run / "samples" / "step-00000002-strip.png")
    assert main(["show", "forward", "--recipe", "s-curve", "--at", "0,1,2,3,4,5,6,7,8,9", "--out",
                 str(tmp_path / "forward.png"), "--gif", str(tmp_path / "forward.gif")]) == 0
    grid = pixels(tmp_path / "forward.png")
    assert 1.5 < grid.shape[1] / grid.shape[0] < 3.5  # 2 x 5 panels
    gif_frames(tmp_path / "forward.gif")
    assert main(["sample", str(run), "-n", "300", "--steps", "20", "--out", str(tmp_path / "s.png"), "--strip",
                 str(tmp_path / "strip.png"), "--gif", str(tmp_path / "reverse.gif")]) == 0
    strip = pixels(tmp_path / "strip.png")
    assert strip.shape[1] > 6 * strip.shape[0]  # 1 x 10 panels
    gif_frames(tmp_path / "reverse.gif")
