"""Training previews: a fast sampler by default, a bounded share of the run, and no wait for a stop signal."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import tiny_args
from tinydiffusion import UserError, checkpoint
from tinydiffusion.cli.main import main
from tinydiffusion.config import build_config
from tinydiffusion.train import preview
from tinydiffusion.train.setup import build_schedule


def _parts(recipe: str, *overrides: str) -> SimpleNamespace:
    """What preview_settings reads of a run: its config and schedule."""
    cfg = build_config(recipe, overrides=list(overrides))
    return SimpleNamespace(cfg=cfg, schedule=build_schedule(cfg), total_steps=100)


@pytest.mark.filterwarnings("ignore::tinydiffusion.errors.ScheduleWarning")
@pytest.mark.parametrize("recipe, sampler, steps", [
    ("pulfer-mnist", "ddim", 20),      # the run samples with 1,000 DDPM steps; its previews with 20 DDIM steps
    ("dlai-tiles", "ddim", 20),        # 500 DDPM steps
    ("hf-mnist-unet2d", "ddim", 20),   # 1,000 DDPM steps
    ("hf-mnist-basic", "x0-step", 5),  # its own 5-step sampler is faster than anything else
    ("quickstart", "dpm++", 10),       # DPM-Solver++ in 10 steps: its own
    ("dli-fashion16", "ddpm", 150),    # the recipe asks for the seed's own sampler, for its strips
])
def test_previews_sample_fast_unless_the_recipe_says_otherwise(recipe: str, sampler: str, steps: int) -> None:
    settings = preview.preview_settings(_parts(recipe))
    assert (settings.sampler, settings.steps) == (sampler, steps)


def test_a_preview_sampler_must_fit_the_objective() -> None:
    with pytest.raises(UserError, match="^preview.sampler ddim does not fit a model trained with the corrupt "
                                        "objective; use auto$"):
        preview.preview_settings(_parts("hf-mnist-basic", "preview.sampler=ddim"))


def test_previews_keep_to_their_share_of_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10_000, 10))  # each reading of the clock is 10 s later
    monkeypatch.setattr(preview.time, "perf_counter", lambda: float(next(clock)))
    notes: list[str] = []
    previews = preview.Previews(_parts("quickstart", "preview.every=10"), notes.append)
    assert previews.due(10) and not previews.due(11)
    with previews.timed():  # a 10 s preview after 10 s of training: half the run
        pass
    assert not previews.due(20) and not previews.due(30)  # skipped while over the 10 % share
    assert previews.due(100)  # the last one is always written
    assert previews.skipped == 2 and len(notes) == 1 and "preview.max_share=1 keeps them all" in notes[0]
    previews.spent = 0.0
    assert previews.due(40)


def test_a_stop_signal_abandons_the_preview_between_sampler_steps(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    real_generate = preview.generate
    seen: list[int] = []

    def generate(*args, callback, **kwargs):  # noqa: ANN002, ANN003
        def spy(step):  # noqa: ANN001, ANN202
            seen.append(step.index)
            if step.index == 0:
                os.kill(os.getpid(), signal.SIGTERM)  # Ctrl-C / SIGTERM during the first sampler step
            callback(step)
        return real_generate(*args, callback=spy, **kwargs)

    monkeypatch.setattr(preview, "generate", generate)
    code = main(tiny_args(run, 50, "preview.every=2", "preview.sampler=ddpm", "preview.steps=200"))
    assert code == 128 + signal.SIGTERM
    assert seen == [0]  # one network call after the signal, not 200
    assert not list((run / "samples").glob("*.png"))  # nothing half-made was written
    step, _ = checkpoint.list_states(run)[-1]
    assert step == 2 and checkpoint.load_model(run).meta["step"] == 2
