"""``train --time-budget``: the planner's arithmetic, and a short budgeted run that ends on time."""

from __future__ import annotations

import json
import time
import tomllib

import pytest

from tinydiffusion.checkpoint import load_model
from tinydiffusion.cli.main import main
from tinydiffusion.train.budget import TimeBudget, events

from conftest import tiny_args


@pytest.mark.parametrize("first, total, every, expected", [
    (0, 100, None, 4),      # 25, 50, 75, 100
    (10, 100, None, 4),     # the calibration step is not a multiple: still 25, 50, 75, 100
    (30, 100, None, 3),     # 50, 75, 100
    (0, 10, 3, 4),          # 3, 6, 9 and the last step, 10
    (0, 9, 3, 3),           # 3, 6, 9 (the last step is one of them)
    (5, 6, 100, 1),         # only the last step
])
def test_events_counts_previews_and_checkpoints_after_a_step(first, total, every, expected):
    assert events(first, total, every) == expected


def _budget_after(step_seconds: list[float], minutes: float) -> TimeBudget:
    budget = TimeBudget(minutes, started=0.0)
    now = 0.0
    for s in step_seconds:
        now += s
        budget.step_done(now)
    return budget


def test_the_plan_is_the_largest_step_count_that_fits():
    # 11 steps of 0.1 s (the first, slow one is not counted), then a 2 s preview and a 0.5 s checkpoint.
    budget = _budget_after([3.0] + [0.1] * 10, minutes=1.0)
    assert budget.calibrated and budget.seconds_per_step() == pytest.approx(0.1)
    now = 4.0 + 2.45
    plan = budget.make_plan(11, now, preview_s=2.0, checkpoint_s=0.5, preview_every=None, checkpoint_every=None)
    left = 60.0 - now

    def cost(n: int) -> float:
        return (n - 11) * 0.1 + events(11, n, None) * 2.0 + events(11, n, None) * 0.5

    assert cost(plan.planned_steps) <= left + 1e-9
    assert cost(plan.planned_steps + 1) > left
    assert plan.calibration_steps == 10 and plan.elapsed_s == pytest.approx(now)


def test_a_slow_machine_calibrates_on_fewer_steps_and_always_plans_one_more_step():
    budget = _budget_after([1.0, 1.0], minutes=0.1)  # 6 s budget: 2 s of steps are over 10 %
    assert budget.calibrated
    plan = budget.make_plan(2, 10.0, preview_s=5.0, checkpoint_s=1.0, preview_every=None, checkpoint_every=None)
    assert plan.planned_steps == 3  # already past the budget: finish with one normal final step
    assert budget.out_of_time(10.0)


def test_a_time_budget_run_ends_on_time_with_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "budget"
    budget_s = 12.0
    args = tiny_args(out, 1, "log.every=10")
    args[args.index("--steps"):args.index("--steps") + 2] = ["--time-budget", str(budget_s / 60)]
    start = time.perf_counter()
    assert main(args) == 0
    took = time.perf_counter() - start
    plan = json.loads((out / "time_budget.json").read_text())
    assert plan["budget_s"] == pytest.approx(budget_s)
    assert plan["planned_steps"] > plan["calibration_steps"] + 1
    # ends on time: within the budget plus the one step and the final save that may overrun it
    assert took <= budget_s * 1.25 + 2.0, (took, plan)
    assert took >= budget_s * 0.5, (took, plan)
    # The run ends at the planned step, or earlier, with a warning, when the machine slowed down after the
    # plan (the deadline guard); either way the config, the model and the log agree on where it ended.
    final = load_model(out).meta["step"]
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["optim"]["steps"] == final and "time_budget_minutes" not in config["optim"]
    assert (out / "log.csv").read_text().splitlines()[-1].split(",")[0] == str(final)
    assert plan["calibration_steps"] < final <= plan["planned_steps"]
    slowed = f"this machine slowed down; stopping at step {final} of {plan['planned_steps']}"
    assert (slowed in capsys.readouterr().err) == (final < plan["planned_steps"])


def test_a_time_budget_must_be_a_positive_number_of_minutes(tmp_path, capsys):
    args = tiny_args(tmp_path / "r", 1)
    args[args.index("--steps"):args.index("--steps") + 2] = ["--time-budget", "0"]
    assert main(args) == 2
    assert capsys.readouterr().err == "tinydiffusion train: error: --time-budget must be greater than 0, got 0.0\n"


# ------------------------------------------------------------------ EMA with a half-life in images
def test_halflife_decay_halves_a_weight_every_halflife_images():
    from tinydiffusion.train.ema import halflife_decay

    beta = halflife_decay(10**9, 128, 12_800.0, None)  # h = 100 steps of 128 images
    assert beta**100 == pytest.approx(0.5, rel=1e-12)
    assert halflife_decay(10**9, 64, 12_800.0, None) ** 200 == pytest.approx(0.5, rel=1e-12)


def test_halflife_rampup_caps_the_halflife_at_a_share_of_the_images_seen():
    from tinydiffusion.train.ema import halflife_decay

    # after 10,000 images with ramp-up 0.1 the half-life is 1,000 images, not the 50,000 asked for
    assert halflife_decay(10_000, 100, 50_000.0, 0.1) == pytest.approx(0.5 ** (100 / 1_000))
    assert halflife_decay(10**7, 100, 50_000.0, 0.1) == pytest.approx(0.5 ** (100 / 50_000))


def test_the_ema_follows_its_halflife_in_training(tmp_path):
    """Two steps by hand: θ̄₁ = θ₁ (first decay 0 after ramp-up of zero images is not reached), then a lerp."""
    import torch

    from tinydiffusion.train.ema import EMA, halflife_decay

    model = torch.nn.Linear(2, 2)
    ema = EMA(model, halflife_images=1_000.0, rampup=0.5, batch_images=10)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, 0)  # 10 images seen: h = 5, β = 0.5^(10/5) = 0.25
    assert ema.decay(0) == pytest.approx(halflife_decay(10, 10, 1_000.0, 0.5)) == pytest.approx(0.25)
    start = ema.model.weight.detach().clone()
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model, 1)  # 20 images: h = 10, β = 0.5
    assert torch.allclose(ema.model.weight, 0.5 * start + 0.5 * 3.0)
