"""Training that survives anything: exact resume, signals, SIGKILL mid-write, NaN, many processes."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from conftest import tiny_args
from tinydiffusion import checkpoint
from tinydiffusion.cli.main import main
from tinydiffusion.objectives import DiffusionLoss

CONSTANT_LR = ("optim.lr_schedule=constant",)


def weights(run: Path) -> dict[str, torch.Tensor]:
    _, state = checkpoint.latest_state(run)
    return {**{f"model.{k}": v for k, v in state["model"].items()},
            **{f"ema.{k}": v for k, v in state["ema"].items()}}


def log_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_run_directory_contents(tiny_run: Path) -> None:
    for name in ("config.toml", "model.safetensors", "log.csv"):
        assert (tiny_run / name).is_file(), name
    assert checkpoint.list_states(tiny_run)
    assert sorted(p.name for p in (tiny_run / "samples").glob("*.png"))[-1].startswith("step-00000003")
    assert [r["step"] for r in log_rows(tiny_run)] == ["1", "2", "3"]
    loaded = checkpoint.load_model(tiny_run)
    assert loaded.meta["data"]["class_names"][0] == "T-shirt/top"
    assert loaded.meta["step"] == 3


def test_resume_is_exact(tmp_path: Path) -> None:
    """N steps, then --resume for M more, equals N+M steps in one run (weights, EMA and optimiser)."""
    assert main(tiny_args(tmp_path / "once", 6, *CONSTANT_LR)) == 0
    assert main(tiny_args(tmp_path / "twice", 4, *CONSTANT_LR)) == 0
    assert main(tiny_args(tmp_path / "twice", 6, *CONSTANT_LR) + ["--resume"]) == 0
    a, b = weights(tmp_path / "once"), weights(tmp_path / "twice")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6, rtol=0), key
    assert [r["loss"] for r in log_rows(tmp_path / "once")] == [r["loss"] for r in log_rows(tmp_path / "twice")]


def test_resume_uses_the_runs_own_config(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(tiny_args(run, 2, *CONSTANT_LR)) == 0
    assert main(["train", "--resume", "--out", str(run), "--steps", "3"]) == 0
    assert checkpoint.latest_state(run)[1]["step"] == 3


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    real_call = DiffusionLoss.__call__
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        calls["n"] += 1
        loss = real_call(self, *args, **kwargs)
        return loss * float("nan") if calls["n"] > 4 else loss

    monkeypatch.setattr(DiffusionLoss, "__call__", poisoned)
    run = tmp_path / "run"
    code = main(tiny_args(run, 8, "log.checkpoint_every=2", "log.every=1"))
    err = capsys.readouterr().err
    assert code == 2 and "became NaN or infinite by step 5" in err and "step-00000004.pt" in err
    step, path = checkpoint.list_states(run)[-1]
    assert step == 4
    state = checkpoint.load_state(path)
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    loaded = checkpoint.load_model(run)
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())


def _spawn(code: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float = 120.0) -> None:  # noqa: ANN001
    start = time.time()
    while not predicate():
        if time.time() - start > timeout:
            raise TimeoutError("the training process did not get there in time")
        time.sleep(0.05)


def test_sigint_saves_and_exits_with_a_message(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _spawn(f"""
        import sys
        from tinydiffusion.cli.main import main
        sys.exit(main({tiny_args(run, 100000, "log.checkpoint_every=100000")!r}))
    """, tmp_path)
    _wait_for(lambda: (run / "log.csv").exists() and len(log_rows(run)) >= 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopped at step" in err and "--resume" in err and "Traceback" not in err
    step, _ = checkpoint.list_states(run)[-1]
    assert step >= 3
    assert checkpoint.load_model(run).meta["step"] == step


def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one(tmp_path: Path) -> None:
    """Kill -9 the trainer while it is half-way through writing a checkpoint."""
    run = tmp_path / "run"
    marker = tmp_path / "writing"
    proc = _spawn(f"""
        import sys, time
        from pathlib import Path
        from tinydiffusion import files
        from tinydiffusion.cli.main import main
        writes = {{"state": 0}}
        original = files._write_stream

        def slow(f, data):
            if ".pt.tmp-" in f.name:  # a resumable state being written
                writes["state"] += 1
                if writes["state"] == 2:  # the second checkpoint: half of it, then hang
                    f.write(data[: len(data) // 2]); f.flush()
                    Path({str(marker)!r}).touch()
                    time.sleep(600)
            original(f, data)

        files._write_stream = slow
        sys.exit(main({tiny_args(run, 6, "log.checkpoint_every=2")!r}))
    """, tmp_path)
    _wait_for(marker.exists)
    proc.kill()
    proc.communicate(timeout=60)
    states = checkpoint.list_states(run)
    assert [s for s, _ in states] == [2]
    checkpoint.load_state(states[0][1])
    assert checkpoint.load_model(run).meta["step"] == 2
    assert list(run.glob("state/.step-*.tmp-*")), "the half-written file should be the temporary one"
    # Resuming works and cleans up the dead writer's temporary file.
    assert main(tiny_args(run, 4, "log.checkpoint_every=2") + ["--resume"]) == 0
    assert not list(run.glob("state/.step-*.tmp-*"))
