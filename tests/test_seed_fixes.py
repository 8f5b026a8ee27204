"""What was broken in the seed recipes, and stays fixed.

* hf-mnist-basic trains in seed 001's [0, 1] range, where its SiLU output reaches the background;
* s-curve-fast puts its samples on the S after a short training;
* seed 000's off-by-one sampler is the seed's own loop (kept as a demonstration beside the fix);
* the course files' errors say where they looked, and ``sprites:`` paths are found in the data root;
* ``show forward --recipe`` uses the recipe's data; ``train --out`` makes missing folders;
* named context mixtures (seed 002) are the raw vectors they name; strips print integer steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tinydiffusion import NoiseSchedule, ScheduleWarning, UserError, checkpoint, sample
from tinydiffusion.cli.main import main
from tinydiffusion.conditioning import parse_context
from tinydiffusion.config import build_config
from tinydiffusion.data import load_dataset
from tinydiffusion.data.toy2d import s_curve
from tinydiffusion.generate import SampleSettings, generate
from tinydiffusion.models import build_model
from tinydiffusion.samplers import SamplerStep
from tinydiffusion.value_range import parse_range
from tinydiffusion.viz.strip import step_label, strip_indices

QUICK = ["--set", "log.progress=false", "--set", "log.tensorboard=off", "--set", "optim.warmup_steps=0"]


def one_line_error(args: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run the CLI, expect exit status 2, and return its one error line without the command prefix."""
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert "Traceback" not in "\n".join(err) and "error: " in err[-1]
    return err[-1].split("error: ", 1)[1]


# ------------------------------------------------------------------------------------- seed 001: [0, 1]
def _fit_background(data_range: str, steps: int = 60) -> torch.Tensor:
    """hf-mnist-basic's network (at 8x8) trained to denoise all-background images; its last outputs."""
    cfg = build_config("hf-mnist-basic", overrides=[f"data.range={data_range}"])
    low, high = parse_range(cfg.data.range)
    torch.manual_seed(0)
    model = build_model("basic-unet", {**cfg.model.params, "channels": 1, "image_size": 8})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x0 = torch.full((8, 1, 8, 8), low)  # black: the background of MNIST in this range
    for _ in range(steps):
        amount = torch.rand(8, 1, 1, 1)
        noisy = x0 * (1 - amount) + (torch.rand_like(x0) * (high - low) + low) * amount
        out = model(noisy, torch.zeros(8))
        loss = (out - x0).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return out.detach()


def test_hf_mnist_basic_network_reaches_its_background() -> None:
    assert build_config("hf-mnist-basic").data.range == "0,1"
    out = _fit_background("0,1")
    assert float(out.abs().max()) < 0.02  # the background 0 of [0, 1]
    # the old recipe's [-1, 1]: SiLU (floor -0.278) never gets near the background -1
    assert float(_fit_background("-1,1").min()) > -0.3


def test_hf_mnist_basic_records_its_range_and_samples_from_uniform_0_1(tmp_path: Path) -> None:
    run = tmp_path / "basic"
    assert main(["train", "--recipe", "hf-mnist-basic", "--out", str(run), "--steps", "1", "--batch-size", "4",
                 "--set", "data.n=8", "--set", "preview.n=2", *QUICK]) == 0
    loaded = checkpoint.load_model(run)
    assert loaded.data_range == (0.0, 1.0) and loaded.meta["data"]["range"] == [0.0, 1.0]
    starts: list[torch.Tensor] = []
    background = generate(lambda x, t: torch.zeros_like(x), loaded.schedule, (1, 8, 8), 64,
                          settings=SampleSettings("x0-step", 5), prediction="x0", data_range=loaded.data_range,
                          callback=lambda s: starts.append(s.x_t) if s.index == 0 else None)
    assert torch.equal(background, torch.full_like(background, -1.0))  # 0 in [0, 1] is black in every picture
    start = starts[0] * 0.5 + 0.5  # back to the model's [0, 1]: the course's torch.rand start
    assert 0 <= float(start.min()) and float(start.max()) <= 1 and abs(float(start.mean()) - 0.5) < 0.05


# ------------------------------------------------------------------------------------- seed 004: the S
def curve_distance(points: np.ndarray) -> np.ndarray:
    """Distance of each point to seed 004's curve (sin s, sign(s)(cos s − 1))/10, s ∈ [−3π/2, 3π/2]."""
    s = np.linspace(-1.5 * np.pi, 1.5 * np.pi, 4000)
    curve = torch.tensor(np.stack([np.sin(s), np.sign(s) * (np.cos(s) - 1)], 1) / 10, dtype=torch.float32)
    return torch.cdist(torch.as_tensor(points, dtype=torch.float32), curve).min(1).values.numpy()


NOISE_WIDTH = 0.01  # make_s_curve's noise 0.1, divided by 10 like the points


def test_the_data_lies_on_the_curve() -> None:
    points, _ = s_curve(2000, 0)
    assert np.median(curve_distance(points)) < NOISE_WIDTH


@pytest.mark.slow
def test_s_curve_fast_samples_lie_on_the_s(tmp_path: Path) -> None:
    run = tmp_path / "s"
    assert main(["train", "--recipe", "s-curve-fast", "--out", str(run), "--steps", "1500", "--set", "log.every=500",
                 "--set", "preview.n=10", "--set", "preview.strip=0", *QUICK]) == 0
    loaded = checkpoint.load_model(run)
    x = generate(loaded.model, loaded.schedule, (2,), 1000, settings=SampleSettings.from_dict(loaded.meta["sample"]))
    near = curve_distance(x.numpy()) < 4 * NOISE_WIDTH  # 59 % after these 1,500 steps, 87 % after the recipe's 8,000
    assert near.mean() > 0.5, f"only {near.mean():.0%} of the samples lie within 4 noise widths of the S"


# ------------------------------------------------------------------------------------- seed 000's slip
def test_ddpm_off_by_one_is_seed_000s_reverse_q() -> None:
    T = 150
    B = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    a = 1 - B
    a_bar = torch.cumprod(a, 0)
    sqrt_a_inv, pred_noise_coeff = torch.sqrt(1 / a), (1 - a) / torch.sqrt(1 - a_bar)

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) * 0.7 + 0.2 * torch.cos(x + 3 * t.double().view(-1, 1, 1, 1) / T)

    x_T = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    x = x_T
    for i in reversed(range(T)):  # seed 000's sample_images with its reverse_q, as written
        t = torch.full((1,), i)
        u_t = sqrt_a_inv[t] * (x - pred_noise_coeff[t] * model(x, t.expand(3)))
        x = u_t if i == 0 else u_t + torch.sqrt(B[t - 1]) * torch.randn(x.shape, generator=g, dtype=x.dtype)
    with pytest.warns(ScheduleWarning, match="alpha_bar at the last step is 0.219"):  # seed 000's, as it is
        schedule = NoiseSchedule.linear(T, 1e-4, 0.02)
    ours = sample(model, schedule, x_T, sampler="ddpm-off-by-one", generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-9)
    right = sample(model, schedule, x_T, sampler="ddpm", variance="beta", generator=torch.Generator().manual_seed(1))
    assert 0 < float((right - ours).abs().max()) < 0.1  # the slip is real and small


# ------------------------------------------------------------------------------------- the course files
def test_missing_sprites_say_where_they_were_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    root, cwd = tmp_path / "root", tmp_path / "work"
    cwd.mkdir()
    monkeypatch.setenv("TINYDIFFUSION_DATA", str(root))
    monkeypatch.chdir(cwd)
    message = (f"sprites_1788_16x16.npy not found: looked in {cwd}/sprites_1788_16x16.npy and "
               f"{root}/sprites/sprites_1788_16x16.npy (data root {root}, set by $TINYDIFFUSION_DATA); the course's "
               "sprite images are not shipped with tinydiffusion: copy sprites_1788_16x16.npy and "
               "sprite_labels_nc_1788_16x16.npy from DeepLearning.AI's \"How Diffusion Models Work\" into "
               f"{root}/sprites, or give their paths with --data sprites:IMAGES.npy,LABELS.npy")
    assert one_line_error(["train", "--recipe", "dlai-sprites", "--out", str(tmp_path / "run")], capsys) == message
    # show forward without --data takes the recipe's data, so it looks for the same files
    assert one_line_error(["show", "forward", "--recipe", "dlai-sprites", "--out", str(tmp_path / "f.png")],
                          capsys) == message


def test_sprites_are_found_in_the_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "sprites").mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(root / "sprites" / "sprites_1788_16x16.npy", rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8))
    np.save(root / "sprites" / "sprite_labels_nc_1788_16x16.npy", np.eye(5)[[0, 1, 2, 3, 4, 0]])
    monkeypatch.setenv("TINYDIFFUSION_DATA", str(root))
    monkeypatch.chdir(tmp_path)
    dataset = load_dataset(build_config("dlai-sprites").data.spec)
    assert dataset.images.shape == (6, 16, 16, 3) and dataset.contexts.shape == (6, 5)
    assert dataset.class_names == ["hero", "non-hero", "food", "spell", "side-facing"]


def test_show_forward_takes_the_recipes_data(tmp_path: Path) -> None:
    implied, explicit = tmp_path / "implied.png", tmp_path / "explicit.png"
    assert main(["show", "forward", "--style", "percent", "--recipe", "pulfer-mnist", "--out", str(implied)]) == 0
    assert main(["show", "forward", "--style", "percent", "--recipe", "pulfer-mnist", "--data", "mnist",
                 "--out", str(explicit)]) == 0
    assert implied.read_bytes() == explicit.read_bytes()


def test_train_out_makes_missing_folders(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "deeper" / "x"
    assert main(["train", "--recipe", "s-curve", "--out", str(out), "--steps", "1", "--set", "preview.n=10",
                 "--set", "preview.strip=0", *QUICK]) == 0
    assert (out / "model.safetensors").is_file()


# ------------------------------------------------------------------------------------- contexts and labels
def test_named_context_mixtures_are_the_raw_vectors() -> None:
    names = ["hero", "monster", "item", "spell_icon", "effect", "terrain"]
    assert parse_context("hero=1,spell_icon=0.6", 6, names).tolist() == pytest.approx([1, 0, 0, 0.6, 0, 0])
    assert parse_context("Spell icon=0.4, ITEM=1", 6, names).tolist() == pytest.approx([0, 0, 1, 0.4, 0, 0])
    sprites = ["hero", "non-hero", "food", "spell", "side-facing"]
    assert parse_context("hero=1,food=0.6", 5, sprites).tolist() == pytest.approx([1, 0, 0.6, 0, 0])  # the course's
    assert parse_context("non_hero=1", 5, sprites).tolist() == pytest.approx([0, 1, 0, 0, 0])


@pytest.mark.parametrize("text, names, message", [
    ("hero=1,wizard=1", ["hero", "food"], "--context: unknown name 'wizard'; this model's context names are hero, food"),
    ("hero=1,0.5", ["hero", "food"], "--context 'hero=1,0.5' mixes names and bare numbers; write name=value pairs "
                                     "like 'hero=1' for every entry"),
    ("hero=1,Hero=0", ["hero", "food"], "--context names 'hero' twice"),
    ("hero=lots", ["hero", "food"], "--context: hero=lots is not a number"),
    ("hero=1", None, "this model's 2 context entries have no names; give --context as 2 numbers like '1,0,0.6,0,0'"),
])
def test_named_context_mistakes(text: str, names: list[str] | None, message: str) -> None:
    with pytest.raises(UserError) as error:
        parse_context(text, 2, names)
    assert str(error.value) == message


def test_strips_print_integer_steps() -> None:
    x = torch.zeros(1, 1, 4, 4)
    assert step_label(SamplerStep(0, 799.2, x, x, x)) == "t=799"  # x0-step's (1 - 1/5) * 999
    assert strip_indices(150, 15) == list(range(9, 150, 10))  # seed 000: after every tenth step
    assert strip_indices(100, 10) == list(range(9, 100, 10))  # seed 004: x_seq[10], x_seq[20], ...
    assert strip_indices(3, 15) == [0, 1, 2]


def test_points_refuse_a_data_range(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    error = one_line_error(["train", "--recipe", "s-curve", "--out", str(tmp_path / "s"), "--steps", "1",
                            "--set", "data.range=0,1"], capsys)
    assert error == "data.range sets what pixels become; s-curve is a set of 2-D points, so leave it out"
    error = one_line_error(["train", "--out", str(tmp_path / "q"), "--set", "data.range=0,255"], capsys)
    assert error == "data.range must be one of '-1,1', '0,1', got '0,255'"


@pytest.fixture(scope="module")
def points_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "points"
    assert main(["train", "--recipe", "s-curve", "--out", str(out), "--steps", "1", "--set", "preview.n=10",
                 "--set", "preview.strip=0", *QUICK]) == 0
    return out


@pytest.mark.parametrize("args, message", [
    (["sample", "{points}", "--out", "{tmp}/p.png", "--x0-strip", "{tmp}/x.png"],
     "--x0-strip draws images; this run generates 2-D points (use --strip or --gif for their reverse process)"),
    (["sample", "{points}", "--out", "{tmp}/p.png", "--gif", "{tmp}/p.gif", "--gif-frames", "1"],
     "--gif-frames must be at least 2 (the noise and the sample), got 1"),
    (["sample", "{points}", "--out", "{tmp}/p.png", "--strip", "{tmp}/s.png", "--strip-columns", "0"],
     "--strip-columns must be at least 1, got 0"),
    (["show", "forward", "--recipe", "s-curve", "--at", "0,100", "--out", "{tmp}/f.png"],
     "--at timesteps must lie in 0..99 (the schedule has T=100), got '0,100'"),
    (["show", "forward", "--data", "fashion-mnist-mini", "--at", "0,1", "--out", "{tmp}/f.png"],
     "--at chooses the panels of a 2-D set; for images use --style percent or side-by-side"),
    (["show", "corrupt", "{images}", "--out", "{tmp}/c.png"],
     "{images} was trained with the diffusion objective; show corrupt needs a run of seed 001's corrupt objective "
     "(tinydiffusion train --recipe hf-mnist-basic)"),
    (["show", "minmax", "{points}", "--out", "{tmp}/m.png"], "show minmax draws images; this run generates 2-D points"),
])
def test_seed_figure_mistakes(args: list[str], message: str, points_run: Path, tiny_run: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture) -> None:
    fill = {"points": str(points_run), "images": str(tiny_run), "tmp": str(tmp_path)}
    error = one_line_error([a.format(**fill) for a in args], capsys)
    assert error == message.format(**fill)
