"""The quality study's variants keep working: the quickstart's own network trained a few steps with each
objective and weight average of ``benchmarks/budget.py``, then sampled; and the shipped quickstart is the
study's winner."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tinydiffusion.checkpoint import load_model
from tinydiffusion.cli.main import main
from tinydiffusion.config import build_config

REPO = Path(__file__).resolve().parents[1]


def _study():
    spec = importlib.util.spec_from_file_location("budget_study", REPO / "benchmarks" / "budget.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("budget_study", module)
    spec.loader.exec_module(module)
    return module


STUDY = _study()
#: the variants that change what is learned or averaged, not the network or the data
TRAINING_VARIANTS = [name for name, v in STUDY.VARIANTS.items()
                     if any(o.startswith(("objective.", "ema.")) for o in v.train)]


def test_the_study_covers_every_prediction_target_and_both_kinds_of_ema():
    overrides = {o for name in TRAINING_VARIANTS for o in STUDY.VARIANTS[name].train}
    assert {"objective.prediction=epsilon", "objective.prediction=x0", "objective.min_snr_gamma=5.0"} <= overrides
    assert any(o.startswith("ema.halflife_images=") for o in overrides)


@pytest.mark.parametrize("name", TRAINING_VARIANTS)
def test_each_study_variant_trains_the_quickstart_network_and_samples(name, tmp_path):
    variant = STUDY.VARIANTS[name]
    out = tmp_path / name
    args = ["train", "--config", str(STUDY.BASE), "--out", str(out), "--steps", "3", "--batch-size", "8"]
    for o in [*variant.train, *STUDY.QUIET, "log.every=1", "sample.steps=3"]:
        args += ["--set", o]
    assert main(args) == 0
    loaded = load_model(out)
    expected = dict(o.split("=", 1) for o in variant.train if o.startswith("objective.prediction="))
    assert loaded.prediction == expected.get("objective.prediction", build_config(config_file=STUDY.BASE).objective.prediction)
    npz = tmp_path / "s.npz"
    assert main(["sample", str(out), "-n", "10", "--out", str(npz)]) == 0
    images = np.load(npz)["images"]
    assert images.shape == (10, 16, 16, 1) and images.std() > 0


def test_the_shipped_quickstart_is_the_study_winner_on_0_1_0_s_base():
    """The recipe equals the study's "minsnr5-noflip" variant sampled with "dpm10-noclip"."""
    sampler = STUDY.SAMPLING["dpm10-noclip"]
    winner = build_config(config_file=STUDY.BASE, overrides=[
        *STUDY.VARIANTS["minsnr5-noflip"].train, f"sample.sampler={sampler['sampler']}", f"sample.steps={sampler['steps']}",
        f"sample.guidance={sampler['guidance']}", f"sample.clip_x0={str(sampler['clip_x0']).lower()}"])
    shipped = build_config("quickstart")
    for section in ("data", "model", "schedule", "objective", "optim", "ema", "sample"):
        ours, theirs = dataclasses.asdict(getattr(shipped, section)), dataclasses.asdict(getattr(winner, section))
        assert ours == theirs, section
