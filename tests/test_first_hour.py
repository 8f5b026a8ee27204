"""What a new user meets first: progress bars on a terminal, announced long work, a fast --help, TensorBoard."""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from conftest import REPO, tiny_args
from tinydiffusion.cli.main import main

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "OMP_NUM_THREADS": "1", "COLUMNS": "100"}


def _on_a_terminal(args: list[str], timeout: float = 300) -> tuple[int, str]:
    """Run ``python -m tinydiffusion ARGS`` with stdout and stderr on a pseudo-terminal; (exit status, output)."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 rows, 100 columns
    proc = subprocess.Popen([sys.executable, "-m", "tinydiffusion", *args], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, env=ENV, cwd=REPO)
    os.close(follower)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], timeout)
            if not ready:
                proc.kill()
                pytest.fail(f"no output for {timeout} s")
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
    return proc.wait(), b"".join(chunks).decode("utf-8", "replace")


def test_sample_shows_a_progress_bar_on_a_terminal(tiny_run: Path, tmp_path: Path) -> None:
    code, text = _on_a_terminal(["sample", str(tiny_run), "-n", "4", "--steps", "3", "--out", str(tmp_path / "a.png")])
    assert code == 0, text
    assert "dpm++:" in text and "3/3 [" in text and "call/s]" in text  # desc, calls done/total, rate
    assert "wrote" in text
    code, quiet = _on_a_terminal(["sample", str(tiny_run), "-n", "4", "--steps", "3", "--quiet",
                                  "--out", str(tmp_path / "b.png")])
    assert code == 0 and "/3 [" not in quiet and "wrote" in quiet


def test_no_bar_when_stderr_is_not_a_terminal(tiny_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["sample", str(tiny_run), "-n", "4", "--steps", "3", "--out", str(tmp_path / "a.png")]) == 0
    err = capsys.readouterr().err
    assert "/3 [" not in err and err.startswith("wrote ")


def test_long_work_is_announced_with_a_way_to_make_it_faster(tiny_run: Path, tmp_path: Path, capsys) -> None:
    from tinydiffusion.cli.common import announce_long_work

    announce_long_work("sample", 1000, "x", "y")
    assert capsys.readouterr().err == ""
    announce_long_work("sample", 2000, "ddpm with 1,000 steps", "fewer --steps are faster")
    assert capsys.readouterr().err == ("tinydiffusion sample: ddpm with 1,000 steps takes 2,000 network calls, which is "
                                       "slow on a CPU; fewer --steps are faster\n")


def test_show_samplers_defaults_to_few_steps_and_says_so(tiny_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cmp.png"
    assert main(["show", "samplers", str(tiny_run), "-n", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "show samplers: ddpm: 100 steps, ddpm-no-noise: 100 steps (T=1,000; --steps N to change)" in err
    assert "network calls" not in err  # 200 calls: not announced as long


def test_help_imports_no_torch() -> None:
    code = ("import json, sys\n"
            "from tinydiffusion.cli.main import main\n"
            "for args in (['--help'], ['sample', '--help'], ['eval', '--help'], ['show', 'forward', '--help'],\n"
            "             ['report', '--help'], ['train', '--help'], ['export', '--help'], ['recipes', '--help']):\n"
            "    try:\n"
            "        main(args)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(json.dumps(sorted(m for m in ('torch', 'matplotlib', 'numpy', 'safetensors') if m in sys.modules)),"
            " file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
    assert "export" in done.stdout and "--diffusers DIR" in done.stdout


def test_sampling_images_imports_no_matplotlib(tiny_run: Path, tmp_path: Path) -> None:
    code = ("import sys\n"
            "from tinydiffusion.cli.main import main\n"
            f"assert main(['sample', {str(tiny_run)!r}, '-n', '2', '--steps', '2', '--out', {str(tmp_path / 'x.png')!r},"
            f" '--gif', {str(tmp_path / 'x.gif')!r}]) == 0\n"
            "print('matplotlib' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_cli_choices_match_the_library() -> None:
    from tinydiffusion.cli import choices
    from tinydiffusion.samplers import SAMPLERS
    from tinydiffusion.samplers.ancestral import VARIANCES
    from tinydiffusion.samplers.common import SPACINGS
    from tinydiffusion.schedule import SCHEDULE_KINDS

    assert choices.SAMPLERS == tuple(SAMPLERS)
    assert choices.SPACINGS == tuple(SPACINGS) and choices.VARIANCES == tuple(VARIANCES)
    assert choices.SCHEDULE_KINDS == tuple(SCHEDULE_KINDS)
    from tinydiffusion.viz.strip import IMAGE_COLUMNS, POINT_COLUMNS
    assert choices.STRIP_COLUMNS == {"image": IMAGE_COLUMNS, "points": POINT_COLUMNS}


def test_tensorboard_on_without_the_package_is_one_line_before_anything_is_made(tmp_path: Path, capsys,
                                                                               monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    out = tmp_path / "run"
    assert main(tiny_args(out, 1, "log.tensorboard=on")) == 2  # the later --set wins
    err = capsys.readouterr().err
    assert err == ("tinydiffusion train: error: log.tensorboard=on but the tensorboard package is not installed; "
                   "install it (pip install tensorboard) or use log.tensorboard=auto\n")
    assert not out.exists()


def test_tensorboard_gets_preview_grids_and_eval_metrics(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tinydiffusion.train.logger import log_eval_metrics

    out = tmp_path / "run"
    assert main(tiny_args(out, 2, "log.tensorboard=on")) == 0
    assert log_eval_metrics(out, {"fd": 12.5, "fd_floor": 1.5, "features": "x", "class_accuracy": None}, 2)
    events = EventAccumulator(str(out / "tb"), size_guidance={"images": 0}).Reload()
    assert {"samples/ema", "samples/raw"} <= set(events.Tags()["images"])
    image = events.Images("samples/ema")[-1]
    assert image.step == 2 and image.width > 64 and image.height > 64
    assert {"train/loss", "eval/fd", "eval/fd_floor"} <= set(events.Tags()["scalars"])
    assert events.Scalars("eval/fd")[-1].value == pytest.approx(12.5)
    assert not log_eval_metrics(tmp_path, {"fd": 1.0}, 0)  # a run without TensorBoard logs gets none


def test_show_forward_explains_where_seed_000s_schedule_ends_instead_of_warning(tmp_path: Path, capsys) -> None:
    import warnings

    from tinydiffusion import NoiseSchedule
    from tinydiffusion.viz.forward import schedule_caption

    out = tmp_path / "f.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default schedule is the figure's, not the user's choice: no warning
        assert main(["show", "forward", "--out", str(out)]) == 0
    assert capsys.readouterr().err == f"wrote {out}\n"
    seed_000 = NoiseSchedule.from_config({"kind": "linear", "timesteps": 150}, warn=False)
    assert schedule_caption(seed_000) == (
        "linear schedule, T=150, β from 0.0001 to 0.02: ᾱ at t=149 is 0.22, so x_T keeps √ᾱ = 47% of the image\n"
        "(samplers start from pure noise, so a schedule meant for sampling should end with ᾱ near 0)")
    assert "\n" not in schedule_caption(NoiseSchedule.cosine(1000))  # ends near 0: nothing to explain
    assert main(["show", "forward", "--beta-end", "0.01", "--style", "percent", "--out", str(out)]) == 0
    assert "tinydiffusion: warning: alpha_bar at the last step is" in capsys.readouterr().err  # chosen: it warns
