"""User mistakes end in one clear line on stderr and exit status 2 — never a traceback, never lost work."""

from __future__ import annotations

import errno
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY, tiny_args
from tinydiffusion import checkpoint, files
from tinydiffusion.cli.main import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Run the CLI in-process; returns (exit status, stderr)."""
    try:
        code = main(args)
    except SystemExit as exc:  # argparse exits by itself
        code = exc.code
    err = capsys.readouterr().err
    return code, err


def assert_one_line(code: int, err: str, *needles: str) -> None:
    """Exit 2, no traceback, and the error is one line (the last); progress lines may precede it."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(errors) == 1 and lines[-1] == errors[0], f"expected one error line at the end, got:\n{err}"
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture(scope="module")
def uncond_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "uncond"
    assert main(tiny_args(out, 2, "data.condition=none")) == 0
    return out


# ------------------------------------------------------------------ train
@pytest.mark.parametrize("args, needles", [
    (["train", "--recipe", "nope"], ["unknown recipe 'nope'"]),
    (["train", "--steps", "0"], ["--steps must be at least 1, got 0"]),
    (["train", "--steps", "1", "--set", "data.image_size=4"], ["cannot be halved"]),
    (["train", "--steps", "1", "--set", "optim.lerning_rate=1"], ["unknown setting optim.lerning_rate"]),
    (["train", "--steps", "1", "--set", "optim.lr"], ["--set expects section.key=value"]),
    (["train", "--steps", "1", "--set", "optim.lr=fast"], ["optim.lr: expected a number"]),
    (["train", "--steps", "1", "--data", "imagenet"], ["unknown dataset"]),
    (["train", "--steps", "1", "--data", "folder:/no/such/folder"], ["/no/such/folder"]),
    (["train", "--steps", "1", "--batch-size", "6", "--set", "optim.grad_accum=4"],
     ["batch size 6 does not split evenly over 1 process(es) × 4 accumulation steps (optim.grad_accum); "
      "use a multiple of 4"]),
    (["train", "--steps", "1", "--device", "cuda"] if not torch.cuda.is_available() else ["train", "--device", "tpu"],
     ["cuda" if not torch.cuda.is_available() else "tpu"]),
    (["train", "--config", "/no/such.toml"], ["config file /no/such.toml does not exist"]),
    (["train", "--steps", "1", "--set", "model.name=transformer"], ["unknown model 'transformer'"]),
    (["train", "--learning-rate", "1"], ["unrecognized arguments: --learning-rate"]),
    (["train", "--steps", "1", "--set", "data.condition=class", "--set", "model.name=pulfer-unet"],
     ["cannot take class conditions"]),
])
def test_train_mistakes(args: list[str], needles: list[str], capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, err = run_cli(args + ["--out", str(tmp_path / "run")] if "--out" not in args else args, capsys)
    assert_one_line(code, err, *needles)
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_invalid_toml(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim\nlr = 1")
    code, err = run_cli(["train", "--config", str(bad), "--out", str(tmp_path / "r")], capsys)
    assert_one_line(code, err, "is not valid TOML")


def test_resume_without_state(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, err = run_cli(tiny_args(tmp_path / "empty", 2) + ["--resume"], capsys)
    assert_one_line(code, err, "nothing to resume", "drop --resume")


def test_out_holds_a_run(tiny_run: Path, capsys: pytest.CaptureFixture) -> None:
    before = (tiny_run / "model.safetensors").read_bytes()
    code, err = run_cli(tiny_args(tiny_run, 2), capsys)
    assert_one_line(code, err, "already holds a run", "--resume")
    assert (tiny_run / "model.safetensors").read_bytes() == before


def test_resume_with_another_model(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    code, err = run_cli(tiny_args(run, 6, "model.block_out_channels=[16, 16]") + ["--resume"], capsys)
    assert_one_line(code, err, "different model")


def test_full_disk_keeps_previous_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    assert main(tiny_args(run, 2)) == 0
    good = checkpoint.list_states(run)[-1][1].read_bytes()
    model_before = (run / "model.safetensors").read_bytes()

    real_write = files._write_stream

    def full_disk(f, data: bytes) -> None:  # noqa: ANN001
        if ".pt.tmp-" not in f.name:  # config.toml and the like still fit; the checkpoint does not
            return real_write(f, data)
        f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    capsys.readouterr()
    monkeypatch.setattr(files, "_write_stream", full_disk)
    code, err = run_cli(tiny_args(run, 4) + ["--resume"], capsys)
    assert_one_line(code, err, "No space left on device", "previous checkpoint is intact")
    assert checkpoint.list_states(run)[-1][1].read_bytes() == good
    assert (run / "model.safetensors").read_bytes() == model_before
    assert not list(run.rglob(".*.tmp-*")), "a temporary file was left behind"
    checkpoint.load_model(run)


# ------------------------------------------------------------------ sample
def test_class_out_of_range(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["sample", str(tiny_run), "--class", "11", "--out", str(tmp_path / "x.png")], capsys)
    assert_one_line(code, err, "class id 11 is out of range", "0..9")


def test_context_of_wrong_length(context_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["sample", str(context_run), "--context", "1,0,0.6", "--out", str(tmp_path / "x.png")],
                        capsys)
    assert_one_line(code, err, "--context has 3 values", "have 6")


def test_class_for_a_context_model(context_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["sample", str(context_run), "--class", "1", "--out", str(tmp_path / "x.png")], capsys)
    assert_one_line(code, err, "use --context")


def test_guidance_for_unconditional_model(uncond_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["sample", str(uncond_run), "--guidance", "3", "--out", str(tmp_path / "x.png")], capsys)
    assert_one_line(code, err, "--guidance needs a conditional model")


def test_run_dir_without_weights(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["sample", str(tmp_path), "--out", str(tmp_path / "x.png")], capsys)
    assert_one_line(code, err, "has no model.safetensors")


def test_missing_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["sample", str(tmp_path / "nope"), "--out", str(tmp_path / "x.png")], capsys)
    assert_one_line(code, err, "does not exist")


def test_truncated_safetensors(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "model.safetensors"
    data = (tiny_run / "model.safetensors").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    code, err = run_cli(["sample", str(bad), "--out", str(tmp_path / "x.png")], capsys)
    assert_one_line(code, err, "not a readable safetensors file")


def test_pickle_renamed_to_safetensors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    code, err = run_cli(["sample", str(bad), "--out", str(tmp_path / "x.png")], capsys)
    assert_one_line(code, err, "not a readable safetensors file")


def test_checkpoint_of_another_tool(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import safetensors.torch

    foreign = tmp_path / "model.safetensors"
    safetensors.torch.save_file({"conv.weight": torch.zeros(3, 3)}, foreign)
    code, err = run_cli(["sample", str(foreign), "--out", str(tmp_path / "x.png")], capsys)
    assert_one_line(code, err, "without tinydiffusion metadata")


def test_checkpoint_of_another_model(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tensors, meta = checkpoint.read_model_file(tiny_run / "model.safetensors")
    meta = {k: v for k, v in meta.items() if k != "format"}
    meta["model_config"] = {**meta["model_config"], "block_out_channels": [16, 32]}
    wrong = tmp_path / "model.safetensors"

    class Holder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for i, (k, v) in enumerate(tensors.items()):
                self.register_buffer(f"b{i}", v)

        def state_dict(self, *a, **kw):  # noqa: ANN002, ANN003
            return dict(tensors)

    checkpoint.save_model(wrong, Holder(), meta)
    code, err = run_cli(["sample", str(wrong), "--out", str(tmp_path / "x.png")], capsys)
    assert_one_line(code, err, "do not fit the 'unet' network")


@pytest.mark.parametrize("out, needle", [
    ("missing-folder/x.png", "does not exist; create it first"),
    ("x.jpg", "must end in .png or .npz"),
])
def test_bad_output_path(tiny_run: Path, tmp_path: Path, out: str, needle: str, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["sample", str(tiny_run), "--out", str(tmp_path / out)], capsys)
    assert_one_line(code, err, needle)


@pytest.mark.parametrize("extra, needle", [
    (["--sampler", "warp"], "invalid choice: 'warp'"),
    (["-n", "0"], "-n must be at least 1"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--sampler", "x0-step"], "needs a model that predicts x0"),
    (["--class", "1", "--context", "1,0"], "not both"),
    (["--sampler", "ddpm", "--eta", "0.5"],
     "eta 0.5 does not apply to the ddpm sampler (only to ddim); leave eta out or choose another sampler"),
    (["--sampler", "heun", "--spacing", "leading"], "spacing 'leading' does not apply to the heun sampler"),
    (["--variance", "beta"], "variance 'beta' does not apply to the dpm++ sampler"),  # the run's own sampler
])
def test_sampling_mistakes(tiny_run: Path, tmp_path: Path, extra: list[str], needle: str,
                           capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["sample", str(tiny_run), "--out", str(tmp_path / "x.png"), *extra], capsys)
    assert_one_line(code, err, needle)


def test_show_mistakes(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, err = run_cli(["show", "schedule", "--schedule", "linear", "--out", str(tmp_path / "s.png")], capsys)
    assert_one_line(code, err, "write KIND:T")
    code, err = run_cli(["show", "data", "npz:/no/such.npz", "--out", str(tmp_path / "d.png")], capsys)
    assert_one_line(code, err, "/no/such.npz")


def test_real_process_exit_status(tmp_path: Path) -> None:
    """The installed command really exits 2 with one line (not only main()'s return value)."""
    proc = subprocess.run([sys.executable, "-m", "tinydiffusion", "train", "--recipe", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown recipe" in proc.stderr


def test_tiny_overrides_are_known() -> None:
    """The TINY overrides used by many tests name real settings (so tests exercise what they claim)."""
    from tinydiffusion.config import build_config

    build_config("quickstart", overrides=TINY)
