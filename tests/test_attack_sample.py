"""Attack: ``sample``, ``eval``, ``report`` and ``show`` with bad flags, clashing or unwritable outputs and a full
disk. Each ends in one line and exit 2 before the long work, and a file that was there stays byte-identical."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest

from attack import assert_clean_error, assert_unchanged, attack, fail_writes, read_only, run_cli, snapshot  # noqa: F401
from tinydiffusion import files
from tinydiffusion.cli.main import main


@pytest.fixture(scope="module")
def points_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 2-D point run (seed 004's S-curve)."""
    out = tmp_path_factory.mktemp("runs") / "points"
    assert main(["train", "--recipe", "s-curve", "--out", str(out), "--steps", "2", "--batch-size", "16",
                 "--set", "data.n=64", "--set", "preview.n=8", "--set", "sample.steps=2", "--set", "model.hidden=16",
                 "--set", "log.tensorboard=off", "--set", "log.progress=false", "--set", "log.every=1"]) == 0
    return out


SAMPLE_FLAGS = [
    (["--guidance", "nan"], "--guidance must be a finite number"),
    (["--guidance", "inf"], "--guidance must be a finite number"),
    (["--guidance=-inf"], "--guidance must be a finite number"),
    (["--eta", "nan"], "--eta must be a finite number of at least 0"),
    (["--eta", "-1"], "--eta must be a finite number of at least 0"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["-n", "0"], "-n must be at least 1"),
    (["-n", "-5"], "-n must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--seed", "99999999999999999999"], "--seed must be a whole number from 0 to"),
    (["--seed", "-1"], "--seed must be a whole number from 0 to"),
    (["--sampler", "warp"], "invalid choice: 'warp'"),
    (["--sampler", "x0-step"], "--sampler x0-step needs a model that predicts x0"),
    (["--class", "11"], "class id 11 is out of range"),
    (["--class", "1", "--context", "1,0"], "not both"),
    (["--x0-strip", "{tmp}/x.png"], "--out and --x0-strip both name"),
    (["--x0-strip", "{tmp}/./x.png"], "--out and --x0-strip both name"),
    (["--gif", "{tmp}/x.gif", "--out", "{tmp}/x.gif"], "must end in .png or .npz"),
    (["--out", "{tmp}/x.jpg"], "must end in .png or .npz"),
    (["--out", "{tmp}/no-such-folder/x.png"], "does not exist; create it first"),
]


@attack("flags")
@pytest.mark.parametrize("extra, needle", SAMPLE_FLAGS, ids=[" ".join(a) for a, _ in SAMPLE_FLAGS])
def test_sample_flags(tiny_run: Path, tmp_path: Path, extra: list[str], needle: str,
                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "x.png"
    extra = [a.format(tmp=tmp_path) for a in extra]
    before = snapshot(tiny_run)
    code, err = run_cli(["sample", str(tiny_run), "--out", str(out), *extra], capsys)
    assert_clean_error(code, err, needle)
    assert not out.exists()
    assert_unchanged(before, tiny_run)


@attack("flags")
@pytest.mark.parametrize("context", ["nan,0,0,0,0,0", "1,inf,0,0,0,0", "1,0,0,0,0,-inf"])
def test_context_must_be_finite(context_run: Path, tmp_path: Path, context: str, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["sample", str(context_run), "--context", context, "--out", str(tmp_path / "x.png")], capsys)
    assert_clean_error(code, err, "--context must hold finite numbers")
    assert not (tmp_path / "x.png").exists()


@attack("flags")
def test_x0_strip_of_a_point_run_is_refused(points_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["sample", str(points_run), "--out", str(tmp_path / "p.png"), "--x0-strip",
                         str(tmp_path / "s.png")], capsys)
    assert_clean_error(code, err, "--x0-strip draws images; this run generates 2-D points")
    assert list(tmp_path.iterdir()) == []


@attack("flags")
@pytest.mark.parametrize("extra", [["-n", "100000000"], ["-n", "2000000", "--gif", "GIF"]], ids=["n", "n with gif"])
def test_sample_count_is_bounded_by_memory(tiny_run: Path, tmp_path: Path, extra: list[str],
                                           capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYDIFFUSION_MAX_MEMORY_GB", "8")
    extra = [str(tmp_path / "r.gif") if a == "GIF" else a for a in extra]
    code, err = run_cli(["sample", str(tiny_run), "--out", str(tmp_path / "x.npz"), *extra], capsys)
    assert_clean_error(code, err, f"-n {extra[1]}", "limit of 8 GB", "TINYDIFFUSION_MAX_MEMORY_GB")
    assert list(tmp_path.iterdir()) == []


@attack("faults")
@pytest.mark.parametrize("code_, message", [(errno.ENOSPC, "No space left on device"),
                                            (errno.EIO, "Input/output error")], ids=["ENOSPC", "EIO"])
def test_full_disk_keeps_an_existing_npz(tiny_run: Path, tmp_path: Path, code_: int, message: str,
                                         capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "good.npz"
    assert main(["sample", str(tiny_run), "-n", "2", "--out", str(out)]) == 0
    before = snapshot(tmp_path)
    fail_writes(monkeypatch, code_)
    code, err = run_cli(["sample", str(tiny_run), "-n", "3", "--seed", "5", "--out", str(out)], capsys)
    assert_clean_error(code, err, f"could not write {out}", message, "was left as it was")
    assert_unchanged(before, tmp_path)
    with np.load(out) as npz:
        assert npz["images"].shape[0] == 2


@attack("faults")
def test_a_failed_gif_says_what_was_written(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fail_writes(monkeypatch, errno.ENOSPC, when=lambda name: ".gif.tmp-" in name)
    out, gif = tmp_path / "x.png", tmp_path / "r.gif"
    code, err = run_cli(["sample", str(tiny_run), "-n", "2", "--out", str(out), "--gif", str(gif)], capsys)
    assert_clean_error(code, err, f"could not write {gif}", "nothing was written", f"already written: {out}")
    assert out.is_file() and not gif.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"], "no temporary file may be left"


@attack("faults")
def test_cleanup_on_a_read_only_filesystem_does_not_raise(tiny_run: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename fails and so does deleting the temporary file (EROFS): still one line, naming it."""
    real_replace, real_unlink = files.os.replace, Path.unlink

    def replace(src, dst):  # noqa: ANN001
        if str(tmp_path) in str(dst):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_replace(src, dst)

    def unlink(self, missing_ok=False):  # noqa: ANN001
        if str(tmp_path) in str(self):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(files.os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)
    code, err = run_cli(["sample", str(tiny_run), "-n", "2", "--out", str(tmp_path / "x.png")], capsys)
    assert_clean_error(code, err, "Read-only file system", "nothing was written", "could not be removed; delete it")


@attack("faults")
@pytest.mark.parametrize("command", ["sample", "eval", "report", "show-data"])
def test_read_only_outputs_fail_before_the_work(command: str, tiny_run: Path, tmp_path: Path, read_only,  # noqa: ANN001
                                                capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    folder = tmp_path / "outputs"
    folder.mkdir()
    args = {"sample": ["sample", str(run), "--out", str(folder / "x.png")],
            "eval": ["eval", str(run), "-n", "8"],
            "report": ["report", str(run)],
            "show-data": ["show", "data", "fashion-mnist-mini", "--out", str(folder / "d.png")]}[command]
    target = run if command in ("eval", "report") else folder
    before = snapshot(target)
    read_only(target)
    code, err = run_cli(args, capsys)
    assert_clean_error(code, err, "cannot write in", "nothing was written")
    assert_unchanged(before, target)


OTHER_COMMANDS = [
    (["eval", "RUN", "-n", "0"], "-n must be at least 1"),
    (["eval", "RUN", "--seed", "-1"], "--seed must be a whole number from 0 to"),
    (["eval", "RUN", "--guidance", "nan"], "--guidance must be a finite number"),
    (["eval", "RUN", "--steps", "0"], "--steps must be at least 1"),
    (["report", "RUN", "--seed", "-1"], "--seed must be a whole number from 0 to"),
    (["report", "RUN", "-n", "0"], "-n (samples per class) must be from 1 to 64"),
    (["report", "RUN", "-n", "100000"], "-n (samples per class) must be from 1 to 64"),
    (["show", "samplers", "RUN", "-n", "0", "--out", "OUT"], "-n must be at least 1"),
    (["show", "samplers", "RUN", "--steps", "0", "--out", "OUT"], "--steps must be at least 1"),
    (["show", "samplers", "RUN", "--guidance", "inf", "--out", "OUT"], "--guidance must be a finite number"),
    (["show", "forward", "-n", "0", "--out", "OUT"], "-n must be at least 1"),
    (["show", "forward", "--seed", "99999999999999999999", "--out", "OUT"], "--seed must be a whole number"),
    (["show", "forward", "--timesteps", "0", "--out", "OUT"], "--timesteps: T must be from 1 to 1000000"),
    (["show", "forward", "--timesteps", "100000000", "--out", "OUT"], "--timesteps: T must be from 1 to 1000000"),
    (["show", "forward", "--beta-start", "nan", "--out", "OUT"], "every beta must lie in (0, 1]"),
    (["show", "forward", "--image-size", "0", "--out", "OUT"], "image_size must be a whole number of pixels"),
    (["show", "data", "fashion-mnist-mini", "--per-class", "0", "--out", "OUT"], "--per-class must be from 1 to 256"),
    (["show", "data", "fashion-mnist-mini", "--per-class", "100000000", "--out", "OUT"],
     "--per-class must be from 1 to 256"),
    (["show", "schedule", "--schedule", "linear:100000000", "--out", "OUT"], "T must be from 1 to 1000000"),
    (["show", "schedule", "--schedule", "zzz:100", "--out", "OUT"], "unknown beta schedule 'zzz'"),
    (["show", "schedule", "--schedule", "linear:100:nan:0.02", "--out", "OUT"], "every beta must lie in (0, 1]"),
    (["show", "schedule", "--recipe", "nope", "--out", "OUT"], "unknown recipe 'nope'"),
]


@attack("flags")
@pytest.mark.parametrize("args, needle", OTHER_COMMANDS, ids=[" ".join(a) for a, _ in OTHER_COMMANDS])
def test_other_commands(tiny_run: Path, tmp_path: Path, args: list[str], needle: str,
                        capsys: pytest.CaptureFixture) -> None:
    before = snapshot(tiny_run)
    args = [str(tiny_run) if a == "RUN" else str(tmp_path / "x.png") if a == "OUT" else a for a in args]
    code, err = run_cli(args, capsys)
    assert_clean_error(code, err, needle)
    assert_unchanged(before, tiny_run)
    assert not (tmp_path / "x.png").exists()
