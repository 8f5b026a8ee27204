"""Attack: bad flags and settings. Every one is refused before anything is loaded or written, in one line
that names what the user typed (the flag, or the ``--set`` setting), with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from attack import assert_clean_error, attack, run_cli
from conftest import tiny_args

#: (extra train arguments, what the one line must say)
TRAIN_SETTINGS = [
    (["--epochs", "nan"], "--epochs must be a finite number"),
    (["--epochs", "inf"], "--epochs must be a finite number"),
    (["--epochs", "-1"], "--epochs must be greater than 0"),
    (["--steps", "-5"], "--steps must be at least 1"),
    (["--set", "optim.steps=0"], "optim.steps must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--set", "log.every=0"], "log.every must be at least 1"),
    (["--set", "log.checkpoint_every=-3"], "log.checkpoint_every must be at least 1"),
    (["--set", "log.keep_last=0"], "log.keep_last must be at least 1"),
    (["--set", "runtime.threads=-1"], "runtime.threads must be from 1 to 4096"),
    (["--set", "optim.betas=[2, 2]"], "optim.betas must be two numbers in [0, 1)"),
    (["--set", "optim.betas=[0.9]"], "optim.betas must be two numbers in [0, 1)"),
    (["--set", "optim.betas=[nan, 0.9]"], "optim.betas must be two numbers in [0, 1)"),
    (["--set", "optim.weight_decay=-1"], "optim.weight_decay must be at least 0"),
    (["--set", "optim.lr=nan"], "optim.lr must be a finite number"),
    (["--set", "optim.lr=inf"], "optim.lr must be a finite number"),
    (["--set", "optim.lr=1e39"], "optim.lr must be greater than 0 and at most 10"),
    (["--set", "optim.lr=0"], "optim.lr must be greater than 0"),
    (["--set", "optim.grad_clip=nan"], "optim.grad_clip must be a finite number"),
    (["--set", "optim.warmup_steps=-1"], "optim.warmup_steps must be at least 0"),
    (["--seed", "99999999999999999999"], "--seed must be a whole number from 0 to"),
    (["--seed", "-1"], "--seed must be a whole number from 0 to"),
    (["--set", "runtime.seed=-5"], "runtime.seed must be a whole number from 0 to"),
    (["--set", "preview.seed=18446744073709551616"], "preview.seed must be a whole number"),
    (["--set", "sample.sampler=zzz"], "sample.sampler must be one of ddpm"),
    (["--set", "sample.steps=0"], "sample.steps must be at least 1"),
    (["--set", "sample.eta=nan"], "sample.eta must be a finite number"),
    (["--set", "sample.guidance=inf"], "sample.guidance must be a finite number"),
    (["--set", "sample.spacing=zzz"], "sample.spacing must be one of"),
    (["--set", "sample.sampler=x0-step"], "sample.sampler x0-step needs a model that predicts x0"),
    (["--set", "preview.n=0"], "preview.n must be from 1 to 4096"),
    (["--set", "preview.every=0"], "preview.every must be at least 1"),
    (["--set", "schedule.timesteps=0"], "schedule.timesteps must be from 1 to 1000000"),
    (["--set", "schedule.timesteps=1000000000"], "schedule.timesteps must be from 1 to 1000000"),
    (["--set", "schedule.beta_end=2"], "schedule.beta_end must be greater than 0 and at most 1"),
    (["--set", "objective.cond_drop_prob=2"], "objective.cond_drop_prob must be from 0 to 1"),
    (["--set", "objective.prediction=zzz"], "objective.prediction must be one of epsilon, x0, v"),
    (["--set", "ema.decay=1"], "ema.decay must be in [0, 1)"),
    (["--set", "data.image_size=0"], "data.image_size must be from 1 to 4096"),
    # held before: unknown names and malformed values
    (["--set", "optim.lerning_rate=1"], "unknown setting optim.lerning_rate"),
    (["--set", "optim.lr=fast"], "optim.lr: expected a number"),
    (["--set", "optim"], "--set expects section.key=value"),
    (["--learning-rate", "1"], "unrecognized arguments: --learning-rate"),
    (["--steps", "ten"], "invalid int value: 'ten'"),
    (["--recipe", "nope"], "unknown recipe 'nope'"),
    (["--config", "/no/such.toml"], "config file /no/such.toml does not exist"),
]


def _train_args(out: Path, extra: list[str]) -> list[str]:
    """A tiny run's arguments with ``extra`` on top; a flag in ``extra`` replaces the tiny run's own setting."""
    args = tiny_args(out, 2)
    pairs = [args[i:i + 2] for i in range(1, len(args), 2)]  # ["train", then (flag, value) pairs]
    if "--steps" in extra or "--epochs" in extra:
        pairs = [p for p in pairs if p[0] != "--steps"]
    if "--batch-size" in extra:
        pairs = [p for p in pairs if not p[1].startswith("optim.batch_size=")]
    return [args[0], *(a for p in pairs for a in p), *extra]


@attack("flags")
@pytest.mark.parametrize("extra, needle", TRAIN_SETTINGS, ids=[" ".join(a) for a, _ in TRAIN_SETTINGS])
def test_bad_settings_are_refused_before_anything_is_written(extra: list[str], needle: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    code, err = run_cli(_train_args(out, extra), capsys)
    assert_clean_error(code, err, needle)
    assert not out.exists(), "nothing may be written for a refused setting"


@attack("flags")
def test_a_setting_named_twice_is_named_as_the_user_gave_it_last(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--steps 3 then --set optim.steps=0: the message names the setting, not a flag that was overridden."""
    code, err = run_cli(tiny_args(tmp_path / "run", 3, "optim.steps=0"), capsys)
    assert_clean_error(code, err, "optim.steps must be at least 1")
    assert "--steps" not in err


@attack("flags")
@pytest.mark.parametrize("extra, needle", [
    (["--batch-size", "100000000"], "--batch-size) needs at least"),
    (["--set", "model.block_out_channels=[100000, 100000]"], "network these [model] settings describe"),
], ids=["batch-size 1e8", "huge network"])
def test_memory_bounds_say_the_limit_and_how_to_lift_it(extra: list[str], needle: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYDIFFUSION_MAX_MEMORY_GB", "64")
    out = tmp_path / "run"
    code, err = run_cli(_train_args(out, extra), capsys)
    assert_clean_error(code, err, needle, "limit of 64 GB", "TINYDIFFUSION_MAX_MEMORY_GB")
    assert not out.exists(), "a run refused before its first step leaves no folder behind"


@attack("flags")
@pytest.mark.parametrize("value, needle", [("abc", "must be a number"), ("-3", "must be a positive number"),
                                           ("0.000001", "limit of 1e-06 GB")])
def test_the_memory_limit_variable_is_checked_and_honoured(value: str, needle: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYDIFFUSION_MAX_MEMORY_GB", value)
    code, err = run_cli(tiny_args(tmp_path / "run", 2), capsys)
    assert_clean_error(code, err, needle, "TINYDIFFUSION_MAX_MEMORY_GB")
