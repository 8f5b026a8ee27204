"""Attack: faults during training. Weights that turn NaN, a full disk or a read-only folder at every kind of
write, kill -9 at the worst moments, Ctrl-C twice while saving or during start-up, and a second training
racing the first. Nothing that was good before is lost; every end is one line (or a clean stop)."""

from __future__ import annotations

import errno
import shutil
import signal
from pathlib import Path

import pytest
import torch

from attack import (assert_clean_error, assert_unchanged, attack, fail_writes, read_only, run_cli,  # noqa: F401
                    snapshot, spawn, wait_for)
from conftest import tiny_args
from tinydiffusion import checkpoint
from tinydiffusion.cli.main import main
from tinydiffusion.train import logger


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-step tiny run, checkpointed at step 2."""
    out = tmp_path_factory.mktemp("runs") / "base"
    assert main(tiny_args(out, 2, "log.checkpoint_every=2")) == 0
    return out


@pytest.fixture
def run(base_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(base_run, copy)
    return copy


def _poison_update(monkeypatch: pytest.MonkeyPatch, at_call: int) -> None:
    """Make the ``at_call``-th optimiser update write NaN into the first weight (the loss before it is finite)."""
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def step(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        out = real_step(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == at_call:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", step)


# ---------------------------------------------------------------------------------------- NaN
@attack("faults")
def test_weights_made_nan_by_the_update_are_never_checkpointed(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The update of step 4 (a checkpoint step) turns a weight NaN while step 4's loss was finite."""
    run = tmp_path / "run"
    _poison_update(monkeypatch, at_call=4)
    saved = {}
    real_save_model = checkpoint.save_model

    def remember(path, model, meta):  # noqa: ANN001
        real_save_model(path, model, meta)
        saved[meta["step"]] = Path(path).read_bytes()

    monkeypatch.setattr(checkpoint, "save_model", remember)
    code, err = run_cli(tiny_args(run, 6, "log.checkpoint_every=2", "log.every=4"), capsys)
    assert_clean_error(code, err, "the weights became NaN or infinite by step 4", "step-00000002.pt", alone=False)
    assert [s for s, _ in checkpoint.list_states(run)] == [2]
    assert (run / "model.safetensors").read_bytes() == saved[2]
    assert sorted(p.name for p in (run / "samples").iterdir())[-1].startswith("step-00000003")


@attack("faults")
def test_a_diverging_resume_keeps_the_good_model(run: Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(run)
    _poison_update(monkeypatch, at_call=1)
    code, err = run_cli(tiny_args(run, 4, "log.checkpoint_every=1") + ["--resume"], capsys)
    assert_clean_error(code, err, "became NaN or infinite by step 3", "the last good checkpoint is", alone=False)
    after = snapshot(run)
    for name, data in before.items():  # model.safetensors and the states are byte-identical; the log only grew
        assert after[name] == data or (name == "log.csv" and after[name].startswith(data)), name
    loaded = checkpoint.load_model(run)
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())


@attack("faults")
def test_nan_weights_are_never_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = tmp_path / "model.safetensors"
    good.write_bytes(b"the previous file")
    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight[0, 0] = float("inf")
    with pytest.raises(checkpoint.UserError, match="refusing to write .* NaN or infinite values .*left as it was"):
        checkpoint.save_model(good, net, {})
    assert good.read_bytes() == b"the previous file"


# ---------------------------------------------------------------------------------------- full disk, read-only
WRITES = {  # which write fails, and a file name pattern of its temporary file
    "config": ".config-resume-",
    "state": ".pt.tmp-",
    "model": ".model.safetensors.tmp-",
    "preview": ".png.tmp-",
}


@attack("faults")
@pytest.mark.parametrize("which, code_", [*((w, errno.ENOSPC) for w in [*WRITES, "log"]), ("model", errno.EACCES),
                                          ("state", errno.EROFS)])
def test_a_failed_write_keeps_everything_that_was_there(which: str, code_: int, run: Path,
                                                       capsys: pytest.CaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Resume 2 -> 4 with previews at 3 and a checkpoint at 4; one kind of write fails."""
    before = snapshot(run)
    if which == "log":
        real_open = logger.RunLogger._open

        def failing_open(self):  # noqa: ANN001, ANN202
            f = real_open(self)

            class Full:
                def write(self, text: str) -> None:
                    raise OSError(code_, "cannot write")

                def __getattr__(self, name: str):  # noqa: ANN204
                    return getattr(f, name)

            return Full()

        monkeypatch.setattr(logger.RunLogger, "_open", failing_open)
    else:
        fail_writes(monkeypatch, code_, when=lambda name: WRITES[which] in name)
    code, err = run_cli(tiny_args(run, 4, "log.checkpoint_every=2", "preview.every=1") + ["--resume"], capsys)
    line = assert_clean_error(code, err, "could not", alone=False)
    assert any(k in line for k in ("intact", "left as it was", "nothing was written", "are kept")), line
    after = snapshot(run)
    for name, data in before.items():  # unchanged; the log only grew by the rows of the new steps
        assert after[name] == data or (name == "log.csv" and after[name].startswith(data)), name
    allowed = {"config-resume-00000002.toml", "samples/step-00000003.png", "samples/step-00000003-raw.png",
               *(["state/step-00000004.pt"] if which == "model" else [])}
    assert set(after) - set(before) <= allowed, set(after) - set(before)
    assert not list(run.rglob(".*.tmp-*")), "a temporary file was left behind"
    monkeypatch.undo()
    assert main(tiny_args(run, 5, "log.checkpoint_every=2") + ["--resume"]) == 0, "the run continues afterwards"


@attack("faults")
def test_a_read_only_run_directory(run: Path, read_only, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    before = snapshot(run)
    read_only(run)
    code, err = run_cli(tiny_args(run, 4) + ["--resume"], capsys)
    assert_clean_error(code, err, f"cannot write in {run}", "nothing was written")
    assert_unchanged(before, run)


# ---------------------------------------------------------------------------------------- other processes
def _trainer(run: Path, steps: int, *extra: str, hook: str = "", resume: bool = False) -> str:
    """Code for a child process that trains (with ``hook`` run first) and exits with main()'s status."""
    args = tiny_args(run, steps, *extra) + (["--resume"] if resume else [])
    return f"""
        import sys, time
        from pathlib import Path
        from tinydiffusion import files
        from tinydiffusion.train import logger, loop
        from tinydiffusion.cli.main import main
        {hook}
        sys.exit(main({args!r}))
    """


@attack("writers")
def test_two_trainings_at_once_then_kill_9_releases_the_lock(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    marker = tmp_path / "training"
    hook = f"""
        real_row = logger.RunLogger.row
        def row(self, values):
            real_row(self, values)
            Path({str(marker)!r}).touch()
            time.sleep(0.2)
        logger.RunLogger.row = row
    """
    proc = spawn(_trainer(run, 100000, "log.checkpoint_every=3", hook=hook), tmp_path)
    try:
        wait_for(lambda: marker.exists() and checkpoint.list_states(run), proc)
        code, err = run_cli(tiny_args(run, 5), capsys)
        assert_clean_error(code, err, f"{run} is being written by another training (process {proc.pid})")
        code, err = run_cli(tiny_args(run, 5) + ["--resume"], capsys)
        assert_clean_error(code, err, "is being written by another training")
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    step = checkpoint.list_states(run)[-1][0]
    assert main(tiny_args(run, step + 1, "log.checkpoint_every=3") + ["--resume"]) == 0, "kill -9 released the lock"


@attack("faults", "recovers")
def test_kill_9_right_after_resume_keeps_the_log(run: Path, tmp_path: Path) -> None:
    before = snapshot(run)
    marker = tmp_path / "resumed"
    hook = f"""
        real_init = logger.RunLogger.__init__
        def init(self, *args, **kwargs):
            real_init(self, *args, **kwargs)
            Path({str(marker)!r}).touch()
            time.sleep(600)
        logger.RunLogger.__init__ = init
    """
    proc = spawn(_trainer(run, 4, "log.checkpoint_every=2", hook=hook, resume=True), tmp_path)
    wait_for(marker.exists, proc)
    proc.kill()
    proc.communicate(timeout=60)
    after = snapshot(run)
    assert {k: after[k] for k in before} == before, "log.csv, config.toml and the checkpoints are byte-identical"


@attack("faults", "recovers")
def test_kill_9_while_writing_the_model_keeps_the_previous_one(run: Path, tmp_path: Path) -> None:
    model_before = (run / "model.safetensors").read_bytes()
    marker = tmp_path / "writing"
    hook = f"""
        original = files._write_stream
        def slow(f, data):
            if ".model.safetensors.tmp-" in f.name:
                f.write(data[: len(data) // 2]); f.flush()
                Path({str(marker)!r}).touch()
                time.sleep(600)
            original(f, data)
        files._write_stream = slow
    """
    proc = spawn(_trainer(run, 4, "log.checkpoint_every=2", hook=hook, resume=True), tmp_path)
    wait_for(marker.exists, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert (run / "model.safetensors").read_bytes() == model_before
    assert list(run.glob(".model.safetensors.tmp-*")), "the half-written file is the temporary one"
    assert main(tiny_args(run, 5, "log.checkpoint_every=2") + ["--resume"]) == 0
    assert not list(run.glob(".model.safetensors.tmp-*")), "the resumed run removed the dead writer's file"
    assert checkpoint.load_model(run).meta["step"] == 5


@attack("faults", "interrupt")
def test_a_second_ctrl_c_while_saving_waits_for_the_save(tmp_path: Path) -> None:
    run = tmp_path / "run"
    started, saving = tmp_path / "started", tmp_path / "saving"
    hook = f"""
        original = files._write_stream
        def slow(f, data):
            if ".pt.tmp-" in f.name:
                Path({str(saving)!r}).touch()
                time.sleep(1.5)
            original(f, data)
        files._write_stream = slow
        real_row = logger.RunLogger.row
        def row(self, values):
            real_row(self, values)
            Path({str(started)!r}).touch()
        logger.RunLogger.row = row
    """
    proc = spawn(_trainer(run, 100000, "log.checkpoint_every=100000", hook=hook), tmp_path)
    wait_for(started.exists, proc)
    proc.send_signal(signal.SIGINT)
    wait_for(saving.exists, proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "stopping at the end of this step and saving a checkpoint" in err
    assert "still finishing this step and saving its checkpoint; please wait" in err
    assert err.strip().splitlines()[-1].startswith("tinydiffusion train: stopped at step"), err
    step, path = checkpoint.list_states(run)[-1]
    assert checkpoint.load_state(path)["step"] == step == checkpoint.load_model(run).meta["step"]


@attack("faults", "interrupt")
def test_ctrl_c_during_start_up(tmp_path: Path) -> None:
    run = tmp_path / "run"
    loading = tmp_path / "loading"
    hook = f"""
        from tinydiffusion.train import setup
        def slow_load(*args, **kwargs):
            Path({str(loading)!r}).touch()
            time.sleep(600)
        setup.load_dataset = slow_load
    """
    proc = spawn(_trainer(run, 4, hook=hook), tmp_path)
    wait_for(loading.exists, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["tinydiffusion train: interrupted; nothing it had written is damaged"], err
    assert not run.exists(), "the run folder made for the lock is removed again"
