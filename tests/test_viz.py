"""tinydiffusion.viz: grids, GIFs, forward-process pictures, plots, trajectories and scatter plots."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from tinydiffusion import NoiseSchedule, SamplerStep, SeededNoise, UserError, sample
from tinydiffusion.viz import (compare_samplers_image, forward_gif, forward_grid, forward_jumps,
                               forward_percent_strip, forward_scatter_gif, forward_side_by_side, forward_trajectory,
                               image_table, labelled_grid, loss_curve, make_grid, percent_timesteps, reverse_gif,
                               reverse_scatter_gif, save_gif, save_image, scatter_png, schedule_plot, subsample,
                               subsample_indices, to_uint8, x0_strip, x0_strip_image)
from tinydiffusion.rng import Stream, stream
from tinydiffusion.viz.forward import TILE_FONT_SIZE, step_label
from tinydiffusion.viz.grid import LABEL_MARGIN
from tinydiffusion.viz.plots import smooth
from tinydiffusion.viz.samples import sample_grid, tile_table
from tinydiffusion.viz.text import add_text, text_size
from tinydiffusion.viz.scatter import square_limits


def _schedule(T: int = 150) -> NoiseSchedule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seed 000's T=150 schedule leaves ᾱ_T = 0.22 on purpose
        return NoiseSchedule.linear(T)


def _gif_frames(path) -> tuple[list[np.ndarray], list[int], dict]:
    with Image.open(path) as im:
        info = dict(im.info)
        frames, durations = [], []
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert("RGB")))
            durations.append(im.info["duration"])
    return frames, durations, info


def _assert_frame(frame: np.ndarray, expected: Image.Image) -> None:
    """A GIF frame shows ``expected`` at its top left, on white (frames share the largest frame's size)."""
    want = np.asarray(expected)
    h, w = want.shape[:2]
    np.testing.assert_array_equal(frame[:h, :w, 0], want)
    assert (frame[h:] == 255).all() and (frame[:, w:] == 255).all()


# ----------------------------------------------------------------------------------------------- to_uint8


def test_to_uint8_is_a_fixed_map_not_min_max():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0, -3.0, math.nan]).reshape(1, 1, 1, 8)
    out = to_uint8(x)
    assert out.dtype == np.uint8 and out.shape == (1, 1, 8, 1)
    # round((x + 1) * 127.5), clamped; 127.5 rounds half to even (128); NaN shows as mid-grey
    assert out[0, 0, :, 0].tolist() == [0, 64, 128, 191, 255, 255, 0, 128]
    # a low-contrast image stays low-contrast (seed 003's min-max stretch would give 0..255)
    faint = to_uint8(torch.tensor([-0.1, 0.1]).reshape(1, 1, 1, 2))
    assert faint[0, 0, :, 0].tolist() == [115, 140]


def test_to_uint8_moves_channels_last():
    x = torch.zeros(2, 3, 4, 5)
    x[1, 2, 3, 4] = 1.0
    out = to_uint8(x)
    assert out.shape == (2, 4, 5, 3)
    assert out[1, 3, 4].tolist() == [128, 128, 255]
    with pytest.raises(ValueError, match=r"to_uint8 expects a \(B, C, H, W\) tensor, got shape \(3, 4, 5\)"):
        to_uint8(torch.zeros(3, 4, 5))


# ----------------------------------------------------------------------------------------------- make_grid


def test_make_grid_golden_one_channel():
    images = np.stack([np.full((2, 2, 1), v, np.uint8) for v in (10, 20, 30, 40, 50)])
    W = 255
    expected = np.array([
        [W, W, W, W, W, W, W, W, W, W],
        [W, 10, 10, W, 20, 20, W, 30, 30, W],
        [W, 10, 10, W, 20, 20, W, 30, 30, W],
        [W, W, W, W, W, W, W, W, W, W],
        [W, 40, 40, W, 50, 50, W, W, W, W],
        [W, 40, 40, W, 50, 50, W, W, W, W],
        [W, W, W, W, W, W, W, W, W, W],
    ], np.uint8)[..., None]
    grid = make_grid(images, nrow=3, padding=1, pad_value=255)
    assert grid.dtype == np.uint8
    np.testing.assert_array_equal(grid, expected)


def test_make_grid_golden_three_channels_and_pad_value():
    images = np.array([[[[1, 2, 3]]], [[[4, 5, 6]]]], np.uint8)  # two 1x1 RGB images
    grid = make_grid(images, nrow=2, padding=1, pad_value=0)
    Z = [0, 0, 0]
    expected = np.array([[Z, Z, Z, Z, Z], [Z, [1, 2, 3], Z, [4, 5, 6], Z], [Z, Z, Z, Z, Z]], np.uint8)
    np.testing.assert_array_equal(grid, expected)


def test_make_grid_scale_is_nearest_neighbour():
    image = np.array([[1, 2], [3, 4]], np.uint8).reshape(1, 2, 2, 1)
    grid = make_grid(image, padding=0, scale=2)
    np.testing.assert_array_equal(grid[..., 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])


def test_make_grid_default_layout_and_sizes():
    images = np.zeros((10, 3, 5, 1), np.uint8)
    # nrow defaults to ceil(sqrt(10)) = 4 columns, ceil(10 / 4) = 3 rows
    assert make_grid(images, padding=2).shape == (3 * 3 + 4 * 2, 4 * 5 + 5 * 2, 1)
    # more columns than images: one row of all of them
    assert make_grid(images[:3], nrow=8, padding=1).shape == (3 + 2, 3 * 5 + 4, 1)
    with pytest.raises(ValueError, match=r"expected uint8 images shaped \(N, H, W, 1 or 3\), got float32"):
        make_grid(np.zeros((2, 3, 3, 1), np.float32))


# ----------------------------------------------------------------------------------------------- labelled grids


def _text_width(text: str) -> int:
    return text_size(text)[0]


def test_labelled_grid_size_and_placement():
    a = np.full((3, 4, 4, 1), 50, np.uint8)
    b = np.full((2, 4, 4, 1), 100, np.uint8)
    image = labelled_grid([a, b], ["a", "longer name"], scale=2, padding=1)
    g = LABEL_MARGIN
    line_w, line_h = 3 * 8 + 4, 8 + 2  # three 8-px images (scale 2) with padding 1; one row
    label_w = _text_width("longer name") + g
    row_a, row_b = (max(line_h, text_size(name)[1]) for name in ("a", "longer name"))  # a row fits its name
    assert image.mode == "L"
    assert image.size == (g + label_w + line_w + g, g + row_a + g + row_b + g)
    pixels = np.asarray(image)
    left = g + label_w
    top_a = g + (row_a - line_h) // 2  # lines sit centred in their rows
    top_b = 2 * g + row_a + (row_b - line_h) // 2
    np.testing.assert_array_equal(pixels[top_a:top_a + line_h, left:left + line_w],
                                  make_grid(a, nrow=3, scale=2)[..., 0])
    second = pixels[top_b:top_b + line_h, left:left + line_w]
    np.testing.assert_array_equal(second[:, :19], make_grid(b, nrow=2, scale=2)[..., 0])
    assert (second[:, 19:] == 255).all()  # the shorter line is padded on the right
    # the names are drawn in dark ink in the left margin of their own row
    assert pixels[g:g + row_a, g:left].min() < 100 and pixels[2 * g + row_a:, g:left].min() < 100


def _tile_blocks(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def test_sample_grid_puts_class_names_in_the_image():
    images = np.full((4, 16, 16, 1), 128, np.uint8)  # mid-grey tiles: neither background nor ink
    grid = np.asarray(sample_grid(images, ["Trouser", "Trouser", "Bag", "Bag"]))
    tiles = grid == 128
    rows, cols = _tile_blocks(tiles.any(axis=1)), _tile_blocks(tiles.any(axis=0))
    assert len(rows) == 2 and len(cols) == 2  # one row per class, two tiles each
    assert all(stop - start == 64 for start, stop in rows + cols)  # 16 px enlarged 4x (nearest neighbour)
    strip = grid[:, :cols[0][0]]  # the label strip left of the tiles
    first, second = (strip[a:b] for a, b in rows)
    assert first.min() < 100 and second.min() < 100  # ink on the white background, in each row
    assert not np.array_equal(first, second)  # two different names
    plain = np.asarray(sample_grid(images))  # without labels: no strip, a near-square grid
    assert (plain == 128).any(axis=0).argmax() <= 2 and plain.shape[1] < grid.shape[1]
    captioned = np.asarray(sample_grid(images, caption="dpm++ · 20 network calls · seed 0"))
    assert captioned.shape[0] > plain.shape[0] and captioned[plain.shape[0]:].min() < 100


def test_sample_grid_has_no_orphan_rows_and_names_tiles_below_the_class_count():
    names = [f"class {c}" for c in range(10)]
    sixty_four = sorted(np.arange(64) % 10)  # 7, 7, 7, 7, 6, 6, ... per class
    images = np.full((64, 8, 8, 1), 128, np.uint8)
    grid = np.asarray(sample_grid(images, [names[c] for c in sixty_four]))
    assert len(_tile_blocks((grid == 128).any(axis=1))) == 10  # ten rows, one per class, none left over
    assert len(_tile_blocks((grid == 128).any(axis=0))) == 7
    few = np.asarray(sample_grid(images[:4], names[:4]))  # fewer images than classes: 2 x 2, named below
    rows = _tile_blocks((few == 128).any(axis=1))
    assert len(rows) == 2 and few[rows[0][1]:rows[1][0]].min() < 100  # a name between the two tile rows


def test_labelled_grid_colour_and_unnamed():
    rows = [np.zeros((2, 3, 3, 3), np.uint8)]
    image = labelled_grid(rows)
    assert image.mode == "RGB"
    assert image.size == (2 * 3 + 3 + 2 * LABEL_MARGIN, 3 + 2 + 2 * LABEL_MARGIN)


def test_image_table_columns_fit_their_names():
    cell = np.zeros((2, 2), np.uint8)
    image = image_table([[cell, cell]], None, ["a rather long title", "b"], gap=3)
    assert image.width == 3 + _text_width("a rather long title") + 3 + max(2, _text_width("b")) + 3
    with pytest.raises(ValueError, match="1 column names for 2 columns"):
        image_table([[cell, cell]], None, ["one"])


def test_save_image_modes_round_trip(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4, 1) * 20
    colour = np.arange(36, dtype=np.uint8).reshape(3, 4, 3) * 7
    p1 = save_image(grey, tmp_path / "sub" / "grey.png")
    p2 = save_image(colour, tmp_path / "colour.png")
    with Image.open(p1) as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), grey[..., 0])
    with Image.open(p2) as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), colour)


# ----------------------------------------------------------------------------------------------- GIFs


def _distinct_frames(n: int, channels: int = 1) -> list[np.ndarray]:
    return [np.full((6, 5, channels), 20 * k + 10, np.uint8) for k in range(n)]


def test_save_gif_frame_count_durations_and_final_hold(tmp_path):
    frames = _distinct_frames(5)
    path = save_gif(frames, tmp_path / "a.gif", duration_ms=40, final_hold_ms=500)
    read, durations, info = _gif_frames(path)
    assert len(read) == 5
    assert durations == [40, 40, 40, 40, 500]
    assert info["loop"] == 0
    for got, want in zip(read, frames):  # grey frames come back exactly
        np.testing.assert_array_equal(got[..., 0], want[..., 0])


def test_save_gif_without_hold_plays_once(tmp_path):
    path = save_gif(_distinct_frames(3, channels=3), tmp_path / "b.gif", duration_ms=70, final_hold_ms=None,
                    loop=None)
    read, durations, info = _gif_frames(path)
    assert len(read) == 3 and durations == [70, 70, 70]
    assert "loop" not in info


def test_save_gif_merges_identical_neighbours_keeping_time(tmp_path):
    a, b = _distinct_frames(2)
    _, durations, _ = _gif_frames(save_gif([a, a, b], tmp_path / "c.gif", duration_ms=30, final_hold_ms=200))
    assert durations == [60, 200]


def test_save_gif_rejects_too_short_frames(tmp_path):
    with pytest.raises(UserError, match="^GIF frame durations must be at least 20 ms, got 10$"):
        save_gif(_distinct_frames(2), tmp_path / "d.gif", duration_ms=10)


def test_subsample_keeps_first_and_last():
    idx = subsample_indices(100, 10)
    assert idx[0] == 0 and idx[-1] == 99 and len(idx) == 10
    assert all(a < b for a, b in zip(idx, idx[1:]))
    assert subsample_indices(5, 10) == [0, 1, 2, 3, 4]
    assert subsample_indices(10, 2) == [0, 9]
    assert subsample(list("abcdefg"), 3) == ["a", "d", "g"]
    with pytest.raises(UserError, match="^keeping the first and the last frame needs at least 2 frames, got 1$"):
        subsample_indices(10, 1)


# ----------------------------------------------------------------------------------------------- forward process


def test_forward_trajectory_has_T_frames_and_per_sample_seeds():
    s = _schedule(150)
    x0 = torch.rand(2, 1, 4, 4) * 2 - 1
    traj = forward_trajectory(s, x0, SeededNoise([7, 8]))
    assert traj.shape == (150, 2, 1, 4, 4)
    alone = forward_trajectory(s, x0[1:], SeededNoise([8]))
    torch.testing.assert_close(traj[:, 1:], alone)  # a sample's chain does not depend on its batch
    kept = forward_trajectory(s, x0, SeededNoise([7, 8]), [149, 3])
    torch.testing.assert_close(kept, traj[[149, 3]])
    # applying q(x_t | x_{t-1}) once from x0 is DDPM eq. 2 at t = 0
    noise = SeededNoise([7, 8]).randn((1, 4, 4), stream(Stream.FORWARD_STEP, 0))
    beta0 = float(s.betas64[0])
    torch.testing.assert_close(traj[0], math.sqrt(1 - beta0) * x0 + math.sqrt(beta0) * noise)


@pytest.mark.parametrize("t", [5, 60, 148])
def test_step_by_step_and_closed_form_have_the_same_moments(t):
    s = _schedule(150)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(8, 1, 32, 32, generator=g) * 2 - 1  # 8192 pixels
    ab = s.alpha_bar_at(t)
    chain, chain_next = forward_trajectory(s, x0, torch.Generator().manual_seed(1), [t, t + 1])
    jump = forward_jumps(s, x0, [t], torch.Generator().manual_seed(2))[0]
    n = x0.numel()
    for x in (chain, jump):
        r = (x - math.sqrt(ab) * x0).double()  # should be N(0, 1 - ᾱ_t) per pixel
        var = 1 - ab
        assert abs(float(r.mean())) < 4 * math.sqrt(var / n)
        assert abs(float(r.var()) / var - 1) < 4 * math.sqrt(2 / n)
        # and uncorrelated with the clean image
        assert abs(float(torch.corrcoef(torch.stack([r.flatten(), x0.double().flatten()]))[0, 1])) < 4 / math.sqrt(n)
    # the chain is one Markov chain: x_{t+1} − √α_{t+1}·x_t is fresh N(0, β_{t+1}) noise (DDPM eq. 2)
    beta = float(s.betas64[t + 1])
    step = (chain_next - math.sqrt(1 - beta) * chain).double()
    assert abs(float(step.var()) / beta - 1) < 4 * math.sqrt(2 / n)


def test_forward_grid_shows_every_step_of_seed_000():
    s = _schedule(150)
    x0 = torch.rand(1, 1, 16, 16) * 2 - 1
    grid = forward_grid(s, x0, 10, 15, torch.Generator().manual_seed(3))
    traj = to_uint8(forward_trajectory(s, x0, torch.Generator().manual_seed(3))[:, 0])
    tiles = [make_grid(f[None], padding=0, scale=4) for f in traj]  # 16 px tiles enlarged to 64 px
    labels = [f"t={t}\nᾱ={float(s.alpha_bar64[t]):.2f}" for t in range(150)]
    assert labels[149] == "t=149\nᾱ=0.22" and step_label(s, 149) == labels[149]
    np.testing.assert_array_equal(np.asarray(grid), np.asarray(tile_table(tiles, labels, 15, size=TILE_FONT_SIZE)))
    assert grid.width > 15 * 64 and grid.height > 10 * 64


def test_forward_grid_subsamples_long_schedules():
    s = _schedule(1000)
    x0 = torch.rand(1, 4, 4) * 2 - 1  # a single (C, H, W) image is accepted too
    grid = forward_grid(s, x0, 2, 3, torch.Generator().manual_seed(4), scale=1)
    keep = [0, 200, 400, 599, 799, 999]
    assert subsample_indices(1000, 6) == keep
    traj = to_uint8(forward_trajectory(s, x0[None], torch.Generator().manual_seed(4), keep)[:, 0])
    expected = tile_table([make_grid(f[None], padding=0) for f in traj], [step_label(s, t) for t in keep], 3,
                          size=TILE_FONT_SIZE)
    np.testing.assert_array_equal(np.asarray(grid), np.asarray(expected))
    assert step_label(s, 999) == f"t=999\nᾱ={float(s.alpha_bar64[999]):.2g}"  # small ᾱ: two significant digits


def test_forward_timesteps_are_checked():
    s = _schedule(150)
    for draw in (forward_trajectory, lambda s, x, g, ts: forward_jumps(s, x, ts, g)):
        with pytest.raises(UserError, match=r"^forward-process timesteps must lie in \[0, 149\]$"):
            draw(s, torch.zeros(1, 1, 2, 2), None, [10, 150])
    with pytest.raises(UserError, match="^2 seeds for a batch of 1 images$"):
        forward_jumps(s, torch.zeros(1, 1, 2, 2), [3], SeededNoise([1, 2]))


def test_percent_timesteps_follow_seed_003():
    assert percent_timesteps(1000, (0.25, 0.5, 0.75, 1)) == [249, 499, 749, 999]
    assert percent_timesteps(150, (0.5,)) == [74]
    with pytest.raises(UserError, match=r"^forward fractions must lie in \[1/T, 1\] with T=1000, got 0, 0.5$"):
        percent_timesteps(1000, (0, 0.5))


def test_forward_figures_and_gif(tmp_path):
    s = _schedule(150)
    batch = torch.rand(4, 3, 8, 8) * 2 - 1
    strip = forward_percent_strip(s, batch, generator=torch.Generator().manual_seed(0), scale=2)
    row_h = max(8 * 2 + 2, text_size("25%: t=36, ᾱ=0.89")[1])
    assert strip.mode == "RGB" and strip.height == 5 * row_h + 6 * LABEL_MARGIN
    side = forward_side_by_side(s, batch[:1], [0, 74, 149], SeededNoise([1]), scale=2)
    assert side.height > 2 * 16 and side.width > 4 * 16
    grey = batch[:, :1]
    path = forward_gif(s, grey, tmp_path / "f.gif", torch.Generator().manual_seed(0), max_frames=20, scale=1)
    frames, durations, _ = _gif_frames(path)
    assert len(frames) == 20 and durations == [120] * 19 + [1500]
    clean = sample_grid(to_uint8(grey), title="x_0: clean images", scale=1)  # the clean batch under its title
    _assert_frame(frames[0], clean)
    last = forward_trajectory(s, grey, torch.Generator().manual_seed(0), [149])[0]
    end = sample_grid(to_uint8(last), title=f"x_t, t=149 · ᾱ={float(s.alpha_bar64[149]):.2f}", scale=1)
    _assert_frame(frames[-1], end)  # t = T - 1, labelled


# ----------------------------------------------------------------------------------------------- plots


def test_smooth_is_a_centred_average_that_does_not_lag():
    np.testing.assert_allclose(smooth(np.array([1.0, 2.0, 6.0, 4.0, 5.0]), 1), [1, 3, 4, 5, 5])
    np.testing.assert_allclose(smooth(np.array([1.0, 2.0, 6.0, 4.0, 5.0]), 2), [1, 3, 3.6, 5, 5])
    np.testing.assert_allclose(smooth(np.array([1.0, math.nan, 3.0, 5.0]), 1), [1, math.nan, 3, 5])
    # a steadily falling loss (a short run): the smoothed line lies on it, at the start, middle and end
    falling = np.linspace(1.0, 0.1, 16)
    np.testing.assert_allclose(smooth(falling), falling)
    ema = [falling[0]]
    for y in falling[1:]:  # what a trailing EMA (weight 0.9, debiased or not) does instead: lag above it
        ema.append(0.9 * ema[-1] + 0.1 * y)
    assert ema[-1] > falling[-1] + 0.3
    with pytest.raises(UserError, match="half-width must be 0 or more"):
        smooth(falling, -1)


def _write_log(path, rows: int, lr: bool = True) -> None:
    cols = "step,epoch,loss,lr,images_per_s,grad_norm,elapsed_s" if lr else "step,loss"
    lines = [cols]
    for i in range(1, rows + 1):
        lines.append(f"{10 * i},{i / 10},{1 / i:.5f},{1e-3},{500 + i},1.0,{i}" if lr else f"{10 * i},{1 / i:.5f}")
    path.write_text("\n".join(lines) + "\n")


def test_loss_curve_and_schedule_plot_write_pngs(tmp_path):
    _write_log(tmp_path / "log.csv", 30)
    with Image.open(loss_curve(tmp_path / "log.csv", tmp_path / "out" / "loss.png")) as im:
        assert im.size == (1000, 360)
    _write_log(tmp_path / "plain.csv", 30, lr=False)
    with Image.open(loss_curve(tmp_path / "plain.csv", tmp_path / "plain.png")) as im:
        assert im.size == (600, 360)  # no learning-rate panel
    with Image.open(schedule_plot({"linear": _schedule(1000), "cosine": NoiseSchedule.cosine(1000)},
                                  tmp_path / "s.png")) as im:
        assert im.size == (1200, 360)


def test_loss_curve_errors(tmp_path):
    with pytest.raises(UserError, match="^no training log at .*missing.csv; train the run first$"):
        loss_curve(tmp_path / "missing.csv", tmp_path / "x.png")
    (tmp_path / "empty.csv").write_text("step,loss\n")
    with pytest.raises(UserError, match="empty.csv has no logged steps yet$"):
        loss_curve(tmp_path / "empty.csv", tmp_path / "x.png")


# ----------------------------------------------------------------------------------------------- trajectories


def _trajectory(T: int = 20, n: int = 4) -> tuple[list[SamplerStep], torch.Tensor]:
    s = _schedule(T)
    target = torch.linspace(-1, 1, 16).reshape(1, 1, 4, 4)

    def model(x, t):  # an x0-model that always predicts the same image
        return target.expand_as(x)

    steps: list[SamplerStep] = []
    x_T = torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    out = sample(model, s, x_T, sampler="ddpm", prediction="x0", callback=steps.append,
                 generator=torch.Generator().manual_seed(1))
    return steps, out


def test_reverse_gif_frames(tmp_path):
    steps, out = _trajectory()
    frames, durations, _ = _gif_frames(reverse_gif(steps, tmp_path / "r.gif", scale=1, max_frames=8))
    assert len(frames) == 8 and durations == [300] * 7 + [2000]  # about 5 s, at most 300 ms a frame
    first = add_text(sample_grid(to_uint8(steps[0].x_t), scale=1), above="x_T: pure noise (t=19)")
    _assert_frame(frames[0], first)
    final = add_text(sample_grid(to_uint8(out), scale=1), above="sample, after 20 steps")
    _assert_frame(frames[-1], final)
    # with the x̂₀ pane, a frame holds x_t and the prediction side by side, and class names
    path = reverse_gif(steps, tmp_path / "x0.gif", ["a", "a", "b", "b"], show_x0=True, caption="ddpm · seed 0")
    wide, _, _ = _gif_frames(path)
    assert wide[0].shape[1] > 2 * frames[0].shape[1]


def test_x0_strip_and_sampler_comparison(tmp_path):
    steps, out = _trajectory()
    image = x0_strip_image(steps, rows=5, n_images=3, scale=1)
    assert image.mode == "L"
    assert image.height >= 5 * 6 and image.width >= 2 * (3 * 4 + 4)
    with Image.open(x0_strip(steps, tmp_path / "x0.png", rows=3, scale=1)) as saved:
        assert saved.size[1] < image.size[1]  # three rows instead of five
    both = compare_samplers_image({"DDPM": out, "no noise": out * 0}, scale=1)
    assert both.width >= 2 * make_grid(to_uint8(out)).shape[1]
    with pytest.raises(UserError, match=r"^image pictures need \(B, C, H, W\) samples, got \(5, 2\); "):
        reverse_gif([SamplerStep(0, 9.0, torch.zeros(5, 2), torch.zeros(5, 2), torch.zeros(5, 2))], tmp_path / "x")


# ----------------------------------------------------------------------------------------------- 2-D scatter


def test_square_limits():
    lo, hi = square_limits([np.array([[1.0, -3.0], [0.5, 2.0]]), np.array([[0.0, 0.0], [math.nan, 9.0]])])
    assert (lo, hi) == pytest.approx((-3.15, 3.15))


def _axes_centre(frame: np.ndarray) -> tuple[int, int]:
    dark = frame.max(axis=2) < 60  # the black frame of the axes: dark lines across most of the image
    rows = np.flatnonzero(dark.sum(axis=1) > frame.shape[1] // 2)
    cols = np.flatnonzero(dark.sum(axis=0) > frame.shape[0] // 2)
    return (rows[0] + rows[-1]) // 2, (cols[0] + cols[-1]) // 2


def _red_extent(frame: np.ndarray) -> float:
    """The width of the red points' bounding box as a share of the frame's width."""
    red = np.flatnonzero(((frame[..., 0].astype(int) - frame[..., 1]) > 60).any(axis=0))
    return (red[-1] - red[0]) / frame.shape[1]


def test_scatter_gif_axes_follow_the_data_unless_fixed(tmp_path):
    g = torch.Generator().manual_seed(0)
    wide, small = torch.randn(300, 2, generator=g) * 3, torch.randn(300, 2, generator=g) * 0.05
    steps = [SamplerStep(0, 10.0, wide, wide, small)]
    frames, _, _ = _gif_frames(reverse_scatter_gif(steps, tmp_path / "follow.gif"))
    assert len(frames) == 2
    assert _red_extent(frames[0]) > 0.5 and _red_extent(frames[1]) > 0.5  # the sample fills its frame
    fixed, _, _ = _gif_frames(reverse_scatter_gif(steps, tmp_path / "fixed.gif", limits=(-10.0, 10.0)))
    assert _red_extent(fixed[1]) < 0.1  # one window for all frames: the sample is a dot
    r, c = _axes_centre(fixed[1])
    red = fixed[1][r - 3:r + 4, c - 3:c + 4].astype(int)
    assert (red[..., 0] - red[..., 1]).max() > 60  # ... at the origin, the middle of the fixed window


def test_scatter_png_and_forward_gif(tmp_path):
    points = torch.randn(300, 2, generator=torch.Generator().manual_seed(0)) * 0.3
    with Image.open(scatter_png(points, tmp_path / "p.png", title="data")) as im:
        assert im.size == (400, 400)
    s = _schedule(100)
    frames, _, _ = _gif_frames(forward_scatter_gif(s, points, tmp_path / "fs.gif", [0, 50, 99],
                                                   torch.Generator().manual_seed(1)))
    assert len(frames) == 4  # the data, then three timesteps
    with pytest.raises(UserError, match=r"^a scatter plot needs points shaped \(N, 2\), got \(3, 3\)$"):
        scatter_png(np.zeros((3, 3)), tmp_path / "bad.png")


# ----------------------------------------------------------------------------------------------- seed 003's display


def test_minmax_display_hides_what_the_fixed_map_shows():
    from tinydiffusion.viz.minmax import minmax_uint8, outside_share

    ramp = torch.linspace(0, 1, 16).view(1, 1, 4, 4)
    good, drifted = ramp * 2 - 1, ramp + 2  # a sample in range, and one that overshot far past white
    x = torch.cat([good, drifted])
    stretched = minmax_uint8(x)
    np.testing.assert_array_equal(stretched[0], stretched[1])  # min-max shows both as the same clean ramp
    fixed = to_uint8(x)
    assert (fixed[1] == 255).all() and fixed[0].min() == 0  # the fixed map shows the drift: all white
    assert outside_share(x) == pytest.approx(0.5)
    assert minmax_uint8(torch.zeros(1, 1, 2, 2)).max() == 0  # a flat image does not divide by zero
