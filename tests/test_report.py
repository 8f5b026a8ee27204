"""report.html: a self-contained page built from a (fake) run directory."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinydiffusion import UserError
from tinydiffusion.report import MAX_SAMPLE_STEPS, MEDIA, SECTIONS, render_report, write_report
from tinydiffusion.viz import save_gif, save_image

IMG = re.compile(r"<img\b[^>]*>")
SRC = re.compile(r'src="([^"]*)"')
DATA_URI = re.compile(r"data:image/(png|gif);base64,([A-Za-z0-9+/=]+)")

CONFIG = '''recipe = "quickstart"
description = "Clothes <b>in 16 px</b> & \\"quotes\\""
seed = 0

[data]
spec = "fashion-mnist-mini"
hflip = false

[model]
name = "unet"

[model.params]
channels = [32, 64]

[schedule]
kind = "linear"
timesteps = 150
beta_end = 0.02
'''


def _grid(value: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(value)
    return rng.integers(0, 256, (20, 20, channels), dtype=np.uint8)


def make_run_dir(root: Path, sample_steps=(200, 1000, 3000)) -> tuple[Path, dict[str, Path]]:
    """A run directory as ``tinydiffusion train`` leaves it, plus media files for the report."""
    run = root / "run"
    (run / "samples").mkdir(parents=True)
    (run / "config.toml").write_text(CONFIG)
    rows = ["step,epoch,loss,lr,images_per_s,grad_norm,elapsed_s"]
    rows += [f"{100 * i},{i / 10:g},{0.5 / i + 0.05:.5f},0.001,{1000 + 10 * i},0.9,{1.5 * i:g}" for i in range(1, 31)]
    (run / "log.csv").write_text("\n".join(rows) + "\n")
    for step in sample_steps:
        save_image(_grid(step), run / "samples" / f"step-{step:08d}.png")
        save_image(_grid(step + 1), run / "samples" / f"step-{step:08d}-raw.png")
    (run / "eval.json").write_text(json.dumps({"fd": 12.3456789, "fd_floor": 1.5, "kid": 0.0123, "kid_se": 0.004,
                                               "precision": 0.61, "recall": 0.552, "class_accuracy": None,
                                               "features": "fashion-mnist", "n": 1000, "sampler": "ddim <50>",
                                               "reference": {"dataset": "fashion-mnist", "n": 10000}}))
    media = {
        "dataset": save_image(_grid(7, 3), root / "media" / "dataset.png"),
        "forward": save_gif([_grid(k) for k in range(4)], root / "media" / "forward.gif"),
        "reverse": save_gif([_grid(10 + k, 3) for k in range(3)], root / "media" / "reverse.gif"),
        "per_class": save_image(_grid(8), root / "media" / "per_class.png"),
    }
    return run, media


def _images(page: str) -> list[tuple[str, bytes]]:
    """(format, bytes) of every <img> on the page; fails when one is not an inline image."""
    out = []
    for tag in IMG.findall(page):
        src = SRC.search(tag).group(1)
        match = DATA_URI.fullmatch(src)
        assert match, f"not an inline image: {src[:60]}"
        out.append((match.group(1), base64.b64decode(match.group(2), validate=True)))
    return out


def test_full_report_is_self_contained(tmp_path):
    run, media = make_run_dir(tmp_path)
    path = write_report(run, media)
    assert path == run / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert 'src="http' not in page and "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    images = _images(page)
    # loss curve + 3 steps x (EMA, raw) + 4 media
    assert len(images) == 1 + 6 + 4
    for fmt, data in images:
        with Image.open(io.BytesIO(data)) as im:
            assert im.format.lower() == fmt and im.width > 0
    loss_section = page[page.index('<section id="loss">'):page.index('<section id="samples">')]
    (loss_png,) = _images(loss_section)  # the loss curve, rendered from log.csv
    with Image.open(io.BytesIO(loss_png[1])) as loss:
        assert loss.size == (1000, 360)
    gifs = [data for fmt, data in images if fmt == "gif"]
    assert gifs == [media["forward"].read_bytes(), media["reverse"].read_bytes()]


def test_report_content_and_escaping(tmp_path):
    run, media = make_run_dir(tmp_path)
    page = render_report(run, media, {"network": "unet, 717,633 parameters <v>"})
    assert "<h1>tinydiffusion run: quickstart</h1>" in page
    assert "Clothes &lt;b&gt;in 16 px&lt;/b&gt; &amp; &quot;quotes&quot;" in page
    assert "<b>in 16 px</b>" not in page
    assert "<th>spec</th><td class=\"num\">fashion-mnist-mini</td>" in page
    assert "<th>params.channels</th><td class=\"num\">[32, 64]</td>" in page
    assert "<th>hflip</th><td class=\"num\">false</td>" in page
    assert "ddim &lt;50&gt;" in page
    for key in media:
        assert f"<figcaption>{html.escape(MEDIA[key][1])}</figcaption>" in page
    # sample grids in step order, EMA before raw
    assert page.index("EMA weights, step 200") < page.index("raw weights, step 200") < page.index(
        "EMA weights, step 1000") < page.index("EMA weights, step 3000")
    # media land in their sections
    data = page[page.index('<section id="data">'):page.index('<section id="loss">')]
    assert len(IMG.findall(data)) == 1


def _section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}">')
    return page[start:page.index("</section>", start)]


def test_summary_card_comes_first_and_says_what_matters(tmp_path):
    run, media = make_run_dir(tmp_path)
    page = render_report(run, media, {"network": "unet, 717,633 parameters <v>", "data": "fashion-mnist-mini"})
    sections = re.findall(r'<section id="([a-z-]+)">', page)
    assert sections == list(SECTIONS) and sections[0] == "summary" and sections[-1] == "config"
    card = _section(page, "summary")
    assert "<th>recipe</th><td>quickstart</td>" in card
    assert "unet, 717,633 parameters &lt;v&gt;" in card  # facts, escaped
    assert "3,000 steps (3 epochs) in 45 s, 1,155 images/s" in card  # log.csv: last step, time, median speed
    assert "FD 12.3</span> against a floor of 1.5 (real vs real images) — lower is better" in card
    assert len(IMG.findall(card)) == 1 and "Samples from the final weights" in card  # the samples, in the card
    # the config is folded at the end; metrics are explained in words with 3 significant digits
    assert _section(page, "config").count("<details>") == 1
    metrics = _section(page, "metrics")
    assert "<th>Fréchet distance (FD)</th><td class=\"num\">12.3</td>" in metrics
    assert "<th>Recall</th><td class=\"num\">0.552</td>" in metrics and "diversity" in metrics
    assert "Class accuracy" not in metrics  # None: not measured, not shown
    # pictures of pixels are enlarged and drawn pixelated; plots are not
    assert "img.px { image-rendering: pixelated; }" in page
    loss = _section(page, "loss")
    assert 'class="px"' not in loss and 'class="px"' in _section(page, "samples")


def test_without_eval_json_the_report_says_how_to_add_metrics(tmp_path):
    run, media = make_run_dir(tmp_path)
    (run / "eval.json").unlink()
    page = render_report(run, media)
    assert f"not measured yet: <code>tinydiffusion eval {run}</code>" in _section(page, "summary")
    metrics = _section(page, "metrics")
    assert "No metrics yet" in metrics and f"<code>tinydiffusion eval {run}</code>" in metrics


def test_missing_inputs_leave_sections_out(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    page = write_report(run).read_text()
    assert "<section" not in page
    assert "<h1>tinydiffusion run</h1>" in page
    (run / "log.csv").write_text("step,epoch,loss,lr,images_per_s,grad_norm,elapsed_s\n")
    (run / "eval.json").write_text("{not json")
    (run / "config.toml").write_text("recipe = [unclosed")
    page = render_report(run, {"reverse": tmp_path / "not-there.gif"})
    assert '<section id="loss"><h2>Training loss</h2><p class="note">' in page
    assert "has no logged steps yet" in page
    assert "eval.json could not be read: " in page
    assert "config.toml could not be read: " in page and "<pre>recipe = [unclosed</pre>" in page
    for absent in ("samples", "process", "data"):
        assert f'<section id="{absent}">' not in page


def test_many_sample_grids_are_thinned(tmp_path):
    steps = tuple(range(100, 4100, 100))  # 40 saved grids
    run, _ = make_run_dir(tmp_path, steps)
    page = render_report(run)
    shown = [int(s) for s in re.findall(r"EMA weights, step (\d+)", page)]
    assert len(shown) == MAX_SAMPLE_STEPS and shown[0] == 100 and shown[-1] == 4000
    assert shown == sorted(shown)
    assert f"{MAX_SAMPLE_STEPS} of the 40 saved grids" in page


def test_report_errors(tmp_path):
    run, media = make_run_dir(tmp_path)
    with pytest.raises(UserError, match=r"^unknown report media movie; known: dataset, per_class, schedule, "):
        write_report(run, {**media, "movie": media["forward"]})
    with pytest.raises(UserError, match=r"^no run directory at .*nowhere; pass the --out folder of a training run$"):
        write_report(tmp_path / "nowhere")
