"""What the commands write: sample arrays and grids, animations, pictures of the process, the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_args
from tinydiffusion.cli.main import main
from tinydiffusion.samplers import SAMPLERS
from tinydiffusion.viz.samples import sample_grid


def pixels(path: Path) -> np.ndarray:
    """A picture as a uint8 (H, W, C) array."""
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    return a[..., None] if a.ndim == 2 else a


def assert_has_content(images: np.ndarray, min_std: float = 2.0) -> None:
    """Every image varies: not one flat value (black, white, or the mid-grey a NaN sample becomes)."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    assert (flat.std(1) > min_std).all(), flat.std(1)


def test_sample_npz(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.npz"
    assert main(["sample", str(tiny_run), "-n", "12", "--out", str(out), "--steps", "3"]) == 0
    d = np.load(out)
    assert d["images"].shape == (12, 16, 16, 1) and d["images"].dtype == np.uint8
    assert_has_content(d["images"])
    # every class, as evenly as 12 samples allow, class-major (one grid row per class, no orphan row)
    assert d["labels"].dtype == np.int64 and d["labels"].tolist() == [0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert d["class_names"][0] == "T-shirt/top"


def test_sample_classes_share_the_samples_and_seeds_do_not_depend_on_batch(tiny_run: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    common = ["-n", "6", "--class", "3", "7", "--steps", "3", "--seed", "5"]
    assert main(["sample", str(tiny_run), "--out", str(a), "--batch-size", "6", *common]) == 0
    assert main(["sample", str(tiny_run), "--out", str(b), "--batch-size", "4", *common]) == 0
    da, db = np.load(a), np.load(b)
    assert da["labels"].tolist() == [3, 3, 3, 7, 7, 7]  # in blocks: one grid row per class
    np.testing.assert_array_equal(da["images"], db["images"])


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++", "heun", "euler", "ddpm-no-noise"])
def test_every_sampler_from_the_cli(tiny_run: Path, tmp_path: Path, sampler: str) -> None:
    png, npz = tmp_path / f"{sampler}.png", tmp_path / f"{sampler}.npz"
    common = ["sample", str(tiny_run), "-n", "4", "--sampler", sampler, "--steps", "3", "--class", "1", "3"]
    assert main([*common, "--out", str(png)]) == 0
    assert main([*common, "--out", str(npz)]) == 0
    images = np.load(npz)["images"]
    assert_has_content(images)
    # the grid shows exactly those samples by the picture rules: a named row per class, 4x enlarged, a caption
    calls = SAMPLERS[sampler].network_calls(3)
    expected = sample_grid(images, ["Trouser", "Trouser", "Dress", "Dress"],
                           caption=f"{sampler} · {calls} network call{'s' if calls > 1 else ''} · guidance 2 · seed 0")
    np.testing.assert_array_equal(pixels(png)[..., 0], np.asarray(expected))


def test_sample_gif_and_x0_strip(tiny_run: Path, tmp_path: Path) -> None:
    gif, strip = tmp_path / "r.gif", tmp_path / "s.png"
    assert main(["sample", str(tiny_run), "-n", "4", "--steps", "5", "--out", str(tmp_path / "x.png"),
                 "--gif", str(gif), "--x0-strip", str(strip)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames >= 2
        im.seek(0)
        first = np.asarray(im.convert("L"), dtype=np.float64)
        im.seek(im.n_frames - 1)
        last = np.asarray(im.convert("L"), dtype=np.float64)
    assert first.std() > 2 and last.std() > 2 and np.abs(first - last).mean() > 2  # x_T is not the sample
    assert Image.open(strip).size[1] > 16
    assert_has_content(pixels(strip)[None])


def test_context_sampling(tmp_path: Path) -> None:
    run = tmp_path / "ctx"
    assert main(["train", "--recipe", "dlai-tiles", "--out", str(run), "--steps", "2", "--batch-size", "8",
                 "--set", "model.n_feat=16", "--set", "data.n=32", "--set", "preview.n=4", "--set",
                 "sample.steps=2", "--set", "log.progress=false", "--set", "log.tensorboard=off"]) == 0
    out = tmp_path / "mix.npz"
    assert main(["sample", str(run), "-n", "4", "--steps", "2", "--out", str(out), "--context", "1,0,0.6,0,0,0",
                 "--context", "0,0,0.6,0.4,0,0", "--guidance", "2"]) == 0
    d = np.load(out)
    assert d["images"].shape == (4, 16, 16, 3)
    assert_has_content(d["images"])
    np.testing.assert_allclose(d["contexts"][1], [1, 0, 0.6, 0, 0, 0])
    np.testing.assert_allclose(d["contexts"][2], [0, 0, 0.6, 0.4, 0, 0])


def test_points_run(tmp_path: Path) -> None:
    run = tmp_path / "s"
    assert main(["train", "--recipe", "s-curve", "--out", str(run), "--steps", "3", "--set", "preview.n=50",
                 "--set", "log.progress=false", "--set", "log.tensorboard=off"]) == 0
    out, gif = tmp_path / "p.npz", tmp_path / "p.gif"
    assert main(["sample", str(run), "-n", "50", "--out", str(out), "--gif", str(gif), "--steps", "10"]) == 0
    points = np.load(out)["points"]
    assert points.shape == (50, 2) and np.isfinite(points).all() and points.std(0).min() > 0.05
    assert Image.open(gif).n_frames > 1


@pytest.mark.parametrize("args", [
    ["show", "forward", "--out", "{tmp}/f.png", "--gif", "{tmp}/f.gif"],
    ["show", "forward", "--style", "side-by-side", "--out", "{tmp}/f.png"],
    ["show", "forward", "--style", "percent", "--recipe", "pulfer-mnist", "--data", "mnist", "--out", "{tmp}/f.png"],
    ["show", "forward", "--data", "s-curve", "--recipe", "s-curve", "--out", "{tmp}/f.png", "--gif", "{tmp}/f.gif"],
    ["show", "schedule", "--schedule", "linear:1000", "cosine:1000", "--recipe", "dli-fashion16", "--out",
     "{tmp}/f.png"],
    ["show", "data", "dcss-tiles", "--out", "{tmp}/f.png"],
])
def test_show(args: list[str], tmp_path: Path) -> None:
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 0
    picture = pixels(tmp_path / "f.png")
    assert picture.shape[1] > 32
    assert_has_content(picture[None], min_std=10)
    assert len(np.unique(picture.reshape(-1, picture.shape[-1]), axis=0)) > 16  # more than a few flat colours


def test_show_samplers(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp.png"
    assert main(["show", "samplers", str(tiny_run), "-n", "4", "--steps", "4", "--out", str(out)]) == 0
    picture = pixels(out)
    assert picture.shape[1] > 32
    assert_has_content(picture[None], min_std=10)
    assert len(np.unique(picture.reshape(-1, picture.shape[-1]), axis=0)) > 16


def test_report_end_to_end(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(tiny_args(run, 3)) == 0
    assert main(["eval", str(run), "-n", "20", "--steps", "2"]) == 0
    assert main(["report", str(run), "-n", "2"]) == 0
    page = (run / "report.html").read_text()
    assert page.count("<img") >= 6 and 'src="http' not in page
    assert json.loads((run / "eval.json").read_text())["n"] == 20


def test_eval_prints_one_json_object(tiny_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(tiny_run), "-n", "20", "--steps", "2", "--no-save", "--guidance", "2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    scores = json.loads(out[0])
    for key in ("fd", "fd_floor", "kid", "kid_se", "precision", "recall", "class_accuracy", "features", "n", "seed",
                "sampler", "network_calls"):
        assert key in scores, key
    assert scores["features"].startswith("fashion-mnist") and scores["n"] == 20
