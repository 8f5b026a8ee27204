"""tinydiffusion.load: one line from a run to images, the same images as the CLI, and the prediction-type check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import tinydiffusion
from tinydiffusion import UserError, sample
from tinydiffusion.cli.main import main
from tinydiffusion.viz import to_uint8


def test_load_sample_equals_the_cli_for_the_same_seed(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.npz"
    assert main(["sample", str(tiny_run), "--class", "7", "-n", "5", "--guidance", "3", "--steps", "3",
                 "--seed", "4", "--clip-x0", "--out", str(out)]) == 0
    run = tinydiffusion.load(tiny_run)
    images = run.sample(5, classes=[7], guidance=3, steps=3, seed=4, clip_x0=True)
    assert images.shape == (5, 1, 16, 16) and images.dtype == torch.float32
    assert -1 <= float(images.min()) and float(images.max()) <= 1  # clipped x̂₀ keeps DPM-Solver++ inside
    saved = np.load(out)
    np.testing.assert_array_equal(to_uint8(images), saved["images"])
    assert saved["labels"].tolist() == [7] * 5
    # and with the run's own defaults (its sampler, steps and guidance, one block of rows per class)
    default = tmp_path / "d.npz"
    assert main(["sample", str(tiny_run), "-n", "12", "--out", str(default)]) == 0
    np.testing.assert_array_equal(to_uint8(run.sample(12)), np.load(default)["images"])


def test_run_carries_the_checkpoint_description(tiny_run: Path) -> None:
    run = tinydiffusion.load(tiny_run)
    assert run.prediction == "v" and run.model.tinydiffusion_prediction == "v"
    assert run.num_classes == 10 and run.class_names[7] == "Sneaker" and run.shape == (1, 16, 16)
    assert (run.defaults.sampler, run.defaults.steps, run.defaults.guidance) == ("dpm++", 2, 2.0)
    assert run.settings(sampler="ddim").steps is None  # a new sampler starts from its own default
    assert run.conditions(12).tolist() == [0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert run.conditions(5, classes=[3, 7]).tolist() == [3, 3, 3, 7, 7]
    with pytest.raises(UserError, match=r"^class id 10 is out of range: this model knows classes 0..9$"):
        run.conditions(2, classes=[10])
    with pytest.raises(UserError, match=r"^this model takes no context vectors \(it takes class ids 0..9\)$"):
        run.sample(2, contexts=[[1.0, 0.0]])


def test_sample_refuses_a_prediction_type_that_contradicts_the_model(tiny_run: Path) -> None:
    run = tinydiffusion.load(tiny_run)
    x_T = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with pytest.raises(UserError, match=r"^prediction='epsilon' contradicts this model, which was trained to predict "
                                        r"'v' \(its model.safetensors says so\); leave prediction out or pass "
                                        r"prediction='v'$"):
        sample(run.model, run.schedule, x_T, sampler="ddim", steps=3, prediction="epsilon")
    # without prediction=, the declared type is used
    declared = sample(run.model, run.schedule, x_T, sampler="ddim", steps=3)
    explicit = sample(run.model, run.schedule, x_T, sampler="ddim", steps=3, prediction="v")
    torch.testing.assert_close(declared, explicit, rtol=0, atol=0)
    # what the check prevents: the same network read as an ε-model (no declaration) blows up at t = T − 1
    anonymous = _Plain(run.model)
    wrong = sample(anonymous, run.schedule, x_T, sampler="ddim", steps=3)
    assert float(declared.abs().max()) < 10 < float(wrong.abs().max())


class _Plain(nn.Module):
    """A network without tinydiffusion's prediction-type declaration."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, t, cond)


def test_a_model_returning_a_diffusers_output_is_accepted(tiny_run: Path) -> None:
    unet_2d = pytest.importorskip("diffusers.models.unets.unet_2d")
    run = tinydiffusion.load(tiny_run)

    class Wrapped(_Plain):
        def forward(self, x, t, cond=None):  # noqa: ANN001, ANN202
            return unet_2d.UNet2DOutput(sample=self.net(x, t, cond))

    x_T = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([1, 2, 3])
    ours = sample(run.model, run.schedule, x_T, sampler="dpm++", steps=3, cond=labels, guidance=2.0)
    theirs = sample(Wrapped(run.model), run.schedule, x_T, sampler="dpm++", steps=3, cond=labels, guidance=2.0,
                    prediction="v")
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    with pytest.raises(UserError, match=r"^the model returned a tuple; it must return a tensor shaped like x"):
        sample(lambda x, t: (x,), run.schedule, x_T, steps=2)
