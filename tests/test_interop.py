"""diffusers interop: schedules both ways, our U-Net as UNet2DModel, and `tinydiffusion export --diffusers`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import tinydiffusion
from conftest import tiny_args
from tinydiffusion import NoiseSchedule, SeededNoise, UserError
from tinydiffusion.checkpoint import load_model, save_model
from tinydiffusion.cli.main import main
from tinydiffusion.interop.unet import check_expressible, diffusers_state_dict, unet2d_config
from tinydiffusion.models import build_model, model_config
from tinydiffusion.samplers import initial_noise
from tinydiffusion.viz import to_uint8

diffusers = pytest.importorskip("diffusers")


# --------------------------------------------------------------------------------------------- schedules

@pytest.mark.parametrize("config", [
    {"kind": "linear", "timesteps": 1000},
    {"kind": "linear", "timesteps": 150, "beta_start": 1e-4, "beta_end": 0.02},
    {"kind": "cosine", "timesteps": 1000},
    {"kind": "scaled_linear", "timesteps": 500},
    {"kind": "sigmoid", "timesteps": 300, "beta_start": 1e-4, "beta_end": 0.03},
    {"kind": "linear", "timesteps": 1000, "zero_terminal_snr": True},
    {"kind": "custom", "timesteps": 4, "betas": [0.1, 0.2, 0.3, 0.9]},
    {"kind": "linear", "timesteps": 500, "convention": "one-based"},  # seed 002: travels as explicit betas
])
def test_schedules_go_to_diffusers_and_back(config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short schedules warn about alpha_bar_T, as they should
        ours = NoiseSchedule.from_config(config)
    theirs = ours.to_diffusers()
    assert isinstance(theirs, diffusers.DDPMScheduler)
    # diffusers builds its tables in float32; ours are float64 rounded once
    np.testing.assert_allclose(theirs.alphas_cumprod.double().numpy()[:-1], ours.alpha_bar64.numpy()[:-1],
                               rtol=1e-5, atol=1e-7)
    back = NoiseSchedule.from_diffusers(theirs)
    torch.testing.assert_close(back.alpha_bar64, ours.alpha_bar64, rtol=1e-12, atol=0)
    assert NoiseSchedule.from_diffusers(theirs.config).num_timesteps == ours.num_timesteps  # a config dict works too


def test_schedule_names_and_scheduler_classes():
    cosine = NoiseSchedule.cosine(1000).to_diffusers("DDIMScheduler", prediction_type="v_prediction")
    assert isinstance(cosine, diffusers.DDIMScheduler)
    assert cosine.config.beta_schedule == "squaredcos_cap_v2" and cosine.config.prediction_type == "v_prediction"
    theirs = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=700, beta_schedule="scaled_linear",
                                                   beta_start=0.001, beta_end=0.015)
    ours = NoiseSchedule.from_diffusers(theirs)
    assert ours.config == {"timesteps": 700, "zero_terminal_snr": False, "kind": "scaled_linear",
                           "beta_start": 0.001, "beta_end": 0.015}
    with pytest.raises(UserError, match=r"^diffusers' beta_schedule 'exp' has no counterpart here; known: linear, "):
        NoiseSchedule.from_diffusers({"num_train_timesteps": 10, "beta_schedule": "exp"})


# --------------------------------------------------------------------------------------------- the network

@pytest.mark.parametrize("extra", [
    {},  # scale-shift conditioning, attention at the lowest level and in the middle
    {"time_conditioning": "add", "attention_levels": [0], "mid_attention": False},
    {"num_classes": 3, "attention_levels": [0, 1], "layers_per_block": 2},
])
def test_our_unet_is_diffusers_unet2dmodel(extra):
    config = {**dict(channels=2, image_size=16, block_out_channels=[8, 16], layers_per_block=1, norm_groups=4,
                     attention_head_dim=8, dropout=0.0), **extra}
    torch.manual_seed(0)
    ours = build_model("unet", config).eval()
    theirs = diffusers.UNet2DModel(**unet2d_config(model_config("unet", config))).eval()
    theirs.load_state_dict(diffusers_state_dict(ours.state_dict()), strict=True)
    x, t = torch.randn(3, 2, 16, 16), torch.tensor([0, 417, 999])
    labels = torch.tensor([0, 2, -1]) if extra.get("num_classes") else None
    with torch.no_grad():
        expected = ours(x, t, labels)
        got = theirs(x, t, class_labels=None if labels is None else labels % 4).sample  # -1: diffusers' row 3
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_what_diffusers_cannot_express_is_refused_in_one_line():
    base = dict(image_size=16, block_out_channels=[8, 16], norm_groups=4, attention_head_dim=8)
    with pytest.raises(UserError, match=r"^this run's network is 'dli-unet', which diffusers has no class for; "):
        check_expressible("dli-unet", {})
    with pytest.raises(UserError, match=r"^this run takes context vectors, which diffusers' UNet2DModel cannot"):
        check_expressible("unet", {**base, "context_dim": 5})
    with pytest.raises(UserError, match=r"^28x28 images reach an odd size \(7\) before a downsampler"):
        check_expressible("unet", {**base, "image_size": 28, "block_out_channels": [8, 16, 16, 16]})


# --------------------------------------------------------------------------------------------- export

def _diffusers_loop(unet, scheduler, x, steps: int, labels=None, guidance: float = 1.0, null: int = 0):
    """Sample with diffusers' own classes: the scheduler's steps, classifier-free guidance as in the README."""
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        with torch.no_grad():
            if labels is None:
                out = unet(x, t).sample
            else:
                both = unet(torch.cat([x, x]), t, class_labels=torch.cat([labels, torch.full_like(labels, null)]))
                cond, uncond = both.sample.chunk(2)
                out = uncond + guidance * (cond - uncond)
        x = scheduler.step(out, t, x).prev_sample
    return x


def test_export_round_trip_class_conditional(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported"
    assert main(["export", str(tiny_run), "--diffusers", str(out)]) == 0
    info = json.loads((out / "tinydiffusion.json").read_text())
    assert info["null_class"] == 10 and info["class_names"][7] == "Sneaker" and info["guidance"] == 2.0
    assert info["scheduler"] == "DPMSolverMultistepScheduler" and "class_labels=" in (out / "README.md").read_text()
    assert not (out / "model_index.json").exists()  # DDPMPipeline cannot pass class labels
    unet = diffusers.UNet2DModel.from_pretrained(out, subfolder="unet").eval()
    scheduler = diffusers.DPMSolverMultistepScheduler.from_pretrained(out, subfolder="scheduler")
    assert scheduler.config.prediction_type == "v_prediction" and scheduler.config.timestep_spacing == "trailing"
    # the same x_T as `tinydiffusion sample --class 3 8 -n 4 --guidance 3 --steps 3` (seeds 0..3)
    cli = tmp_path / "cli.npz"
    assert main(["sample", str(tiny_run), "--class", "3", "8", "-n", "4", "--guidance", "3", "--steps", "3",
                 "--out", str(cli)]) == 0
    x_T = initial_noise("dpm++", (1, 16, 16), SeededNoise.range(0, 4))
    theirs = _diffusers_loop(unet, scheduler, x_T, 3, torch.tensor([3, 3, 8, 8]), 3.0, info["null_class"])
    ours = tinydiffusion.load(tiny_run).sample(4, classes=[3, 8], guidance=3, steps=3)
    torch.testing.assert_close(theirs, ours, atol=2e-4, rtol=0)
    images = np.load(cli)["images"].astype(int)
    assert np.abs(to_uint8(theirs).astype(int) - images).max() <= 1  # float rounding may flip a level


@pytest.fixture(scope="module")
def uncond_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "uncond"
    assert main(tiny_args(out, 2, "data.condition=none", "sample.sampler=ddim", "sample.clip_x0=false")) == 0
    return out


def test_export_round_trip_unconditional_loads_as_a_ddpm_pipeline(uncond_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "pipe"
    assert main(["export", str(uncond_run), "--diffusers", str(out)]) == 0
    pipeline = diffusers.DDPMPipeline.from_pretrained(out)
    assert isinstance(pipeline.scheduler, diffusers.DDIMScheduler)
    images = pipeline(batch_size=2, num_inference_steps=3, output_type="np",
                      generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (2, 16, 16, 1) and 0 <= images.min() and images.max() <= 1
    x_T = initial_noise("ddim", (1, 16, 16), SeededNoise.range(5, 3))
    theirs = _diffusers_loop(pipeline.unet.eval(), pipeline.scheduler, x_T, 4)
    ours = tinydiffusion.load(uncond_run).sample(3, steps=4, seed=5)
    torch.testing.assert_close(theirs, ours, atol=2e-4, rtol=0)


def test_export_mistakes_are_one_line_and_leave_nothing(tiny_run: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    taken = tmp_path / "taken"
    (taken / "x").mkdir(parents=True)
    assert main(["export", str(tiny_run), "--diffusers", str(taken)]) == 2
    assert capsys.readouterr().err.strip().endswith("already exists and is not empty; choose a new folder "
                                                    "(or remove it)")
    # another network: one line, exit 2
    loaded = load_model(tiny_run)
    other = tmp_path / "basic"
    other.mkdir()
    net = build_model("basic-unet", {"channels": 1, "image_size": 16})
    save_model(other / "model.safetensors", net, {**loaded.meta, "model": "basic-unet",
                                                  "model_config": {"channels": 1, "image_size": 16}})
    assert main(["export", str(other), "--diffusers", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'basic-unet', which diffusers has no class for" in err
    # a failure half-way leaves neither the folder nor its temporary twin
    def broken(self, *args, **kwargs):  # noqa: ANN001, ANN202
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(diffusers.ConfigMixin, "save_config", broken)
    target = tmp_path / "full"
    assert main(["export", str(tiny_run), "--diffusers", str(target)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basic", "taken"]
