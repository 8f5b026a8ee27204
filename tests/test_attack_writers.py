"""Attack: two writers in one run directory, resumes that change the settings, logs and leftovers of killed
writers. One writer at a time; a resume records what it changed and refuses what cannot continue; the log
keeps its rows; temporary files of dead writers are cleaned up."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from attack import assert_clean_error, assert_unchanged, attack, run_cli, snapshot
from conftest import tiny_args
from tinydiffusion import checkpoint
from tinydiffusion.config import read_toml
from tinydiffusion.train.rundir import RunDirectoryLock


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-step tiny run with a checkpoint at every step."""
    from tinydiffusion.cli.main import main

    out = tmp_path_factory.mktemp("runs") / "base"
    assert main(tiny_args(out, 2, "log.checkpoint_every=1")) == 0
    return out


@pytest.fixture
def run(base_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(base_run, copy)
    return copy


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------- one writer
@attack("writers")
@pytest.mark.parametrize("resume", [False, True], ids=["new run", "resume"])
def test_a_second_writer_is_refused(resume: bool, run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = run if resume else tmp_path / "fresh"
    target.mkdir(exist_ok=True)
    lock = RunDirectoryLock(target, resume=resume).acquire()  # another training holds the run directory
    try:
        before = snapshot(target)
        code, err = run_cli(tiny_args(target, 4) + (["--resume"] if resume else []), capsys)
        assert_clean_error(code, err, f"{target} is being written by another training (process {os.getpid()})")
        assert_unchanged(before, target)
    finally:
        lock.release()


@attack("writers")
def test_a_file_as_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "file"
    out.write_text("mine")
    code, err = run_cli(tiny_args(out, 2), capsys)
    assert_clean_error(code, err, "is a file; give a folder for the run")
    assert out.read_text() == "mine"


@attack("writers")
def test_an_existing_run_is_not_overwritten(run: Path, capsys: pytest.CaptureFixture) -> None:
    before = snapshot(run)
    code, err = run_cli(tiny_args(run, 2), capsys)
    assert_clean_error(code, err, "already holds a run", "--resume")
    assert_unchanged(before, run)


# ---------------------------------------------------------------------------------------- resume history
@attack("writers", "recovers")
def test_resume_records_what_changed_and_keeps_the_history(run: Path, capsys: pytest.CaptureFixture) -> None:
    original = (run / "config.toml").read_bytes()
    code, err = run_cli(tiny_args(run, 3, "optim.batch_size=16", "optim.lr=0.0005") + ["--resume", "--seed", "7"],
                        capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert len(warnings) == 1, err
    for change in ("optim.batch_size 8 -> 16", "optim.lr 0.002 -> 0.0005", "runtime.seed 0 -> 7", "optim.steps 2 -> 3",
                   "config-resume-00000002.toml"):
        assert change in warnings[0], warnings[0]
    assert (run / "config.toml").read_bytes() == original, "config.toml keeps how the run started"
    first = read_toml(run / "config-resume-00000002.toml")
    assert first["optim"]["batch_size"] == 16 and first["runtime"]["seed"] == 7

    # A plain --resume continues with the newest settings (batch 16), and records its own file.
    code, err = run_cli(["train", "--resume", "--out", str(run), "--steps", "4"], capsys)
    assert code == 0, err
    assert "optim.batch_size" not in err and "optim.steps 3 -> 4" in err
    assert read_toml(run / "config-resume-00000003.toml")["optim"]["batch_size"] == 16
    assert (run / "config.toml").read_bytes() == original
    assert checkpoint.load_model(run).meta["step"] == 4


@attack("writers")
@pytest.mark.parametrize("override, change", [
    ("model.block_out_channels=[16, 16]", "model.block_out_channels [8, 16] -> [16, 16]"),
    ("schedule.timesteps=500", "schedule.timesteps 1000 -> 500"),
    ("objective.prediction=epsilon", "objective.prediction 'v' -> 'epsilon'"),
    ("data.n=32", "data.n 64 -> 32"),
    ("ema.enabled=false", "ema.enabled True -> False"),
])
def test_resume_refuses_a_different_problem(override: str, change: str, run: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    before = snapshot(run)
    code, err = run_cli(tiny_args(run, 4, override) + ["--resume"], capsys)
    assert_clean_error(code, err, change, "cannot continue with a different model, data, schedule or objective")
    assert_unchanged(before, run)


# ---------------------------------------------------------------------------------------- logs and leftovers
@attack("writers", "recovers")
def test_resume_keeps_the_log_rows_and_drops_only_redone_and_torn_ones(run: Path, capsys: pytest.CaptureFixture) -> None:
    lines = (run / "log.csv").read_text().splitlines(keepends=True)
    (run / "state" / "step-00000002.pt").unlink()  # the run is killed after logging step 2, before its checkpoint
    with open(run / "log.csv", "a") as f:
        f.write("3,0.3,0.5")  # and a row torn by a crash
    code, err = run_cli(tiny_args(run, 3, "log.checkpoint_every=1") + ["--resume"], capsys)
    assert code == 0, err
    text = (run / "log.csv").read_text()
    assert text.startswith(lines[0] + lines[1]), "the header and the row of step 1 are kept as they were"
    assert [r["step"] for r in _rows(run)] == ["1", "2", "3"]


@attack("writers", "recovers")
def test_temporary_files_of_dead_writers_are_removed(run: Path, capsys: pytest.CaptureFixture) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = [run / f".model.safetensors.tmp-{dead}", run / f".config.toml.tmp-{dead}",
             run / "state" / f".step-00000009.pt.tmp-{dead}", run / "samples" / f".step-00000009.png.tmp-{dead}"]
    live = run / f".model.safetensors.tmp-{os.getppid()}"  # a writer that is still running
    for path in [*stale, live]:
        path.write_bytes(b"half a file")
    code, err = run_cli(tiny_args(run, 3) + ["--resume"], capsys)
    assert code == 0, err
    assert not any(p.exists() for p in stale)
    assert live.exists()
