"""Every CUDA path of tinydiffusion in a few minutes, as a pass/fail table.

    python benchmarks/gpu_check.py                    # on a GPU machine: every row
    python benchmarks/gpu_check.py --device cpu       # the same rows, smaller and fp32, on a CPU (a smoke test)

CI has no GPU and runs one process, so these paths are otherwise never taken. Each row runs the command
line as a user would (``python -m tinydiffusion ...`` in a subprocess) on the quickstart recipe and the
bundled data, so the machine needs nothing but the checkout:

* train: ``--steps`` steps (50 on CUDA) with bf16 autocast, ``torch.compile``, channels-last and dropout
  (fp32 and no compile on a CPU); finite losses and a ``model.safetensors`` that loads;
* Ctrl-C and ``--resume``: the same run, interrupted by SIGINT part-way (exit 130, a checkpoint) and
  resumed, must log the losses of the uninterrupted run (equal on a CPU; on CUDA within 1 %, as kernels may
  sum in another order): this covers restoring the generator states on the GPU;
* every sampler through ``tinydiffusion sample`` on the trained run (``x0-step`` on a run trained with seed
  001's corrupt objective): finite samples with content;
* ``train --time-budget``: a 30-second budget must end within the budget (plus start-up) with a model;
  "not available" when this version has no such flag;
* two processes (``torchrun``) when two GPUs are present: the losses of one process with the same global
  batch, with gradient accumulation, dropout and ``torch.compile``; and a BatchNorm network (SyncBatchNorm)
  that trains.
  On a CPU the same rows run with gloo.

Prints a Markdown table; the exit status is 1 when a row fails.
"""

from __future__ import annotations

import argparse
import csv
import math
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

SAMPLER_STEPS = {"ddpm": 50, "ddim": 10, "dpm++": 10, "euler": 10, "heun": 5, "ddpm-no-noise": 50}


def common_settings(device: str) -> list[str]:
    """--set overrides of every training row: the quickstart recipe, smaller on a CPU."""
    quiet = ["log.every=1", "log.tensorboard=off", "log.progress=false", "preview.n=16", "sample.steps=5",
             "optim.warmup_steps=0", "optim.lr_schedule=constant"]
    if device == "cuda":
        return [*quiet, "runtime.device=cuda"]
    return [*quiet, "runtime.device=cpu", "model.block_out_channels=[8, 16]", "model.norm_groups=4",
            "model.attention_head_dim=8", "data.n=64", "optim.batch_size=16"]


def fast_paths(device: str) -> list[str]:
    """The fast paths, and dropout (its seeded masks are a graph break under compile)."""
    if device == "cuda":
        return ["runtime.amp=bf16", "runtime.compile=true", "runtime.channels_last=true", "model.dropout=0.1"]
    return ["runtime.amp=off", "runtime.compile=false", "runtime.channels_last=true", "model.dropout=0.1"]


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinydiffusion", *args], capture_output=True, text=True,
                          timeout=timeout)


def train_args(out: Path, steps: int, settings: list[str]) -> list[str]:
    args = ["train", "--out", str(out), "--steps", str(steps)]
    for s in settings:
        args += ["--set", s]
    return args


def losses(run: Path) -> list[float]:
    if not (run / "log.csv").exists():
        return []
    with open(run / "log.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def relative_gap(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b))


class Check(Exception):
    """A failed expectation of a row (its message is the row's detail)."""


def expect(ok: bool, detail: str) -> None:
    if not ok:
        raise Check(detail)


# ---------------------------------------------------------------------------------------------- rows
def row_train(work: Path, device: str, steps: int) -> str:
    proc = cli(*train_args(work / "run", steps, [*common_settings(device), *fast_paths(device)]))
    expect(proc.returncode == 0, f"exit {proc.returncode}: {last_line(proc.stderr)}")
    got = losses(work / "run")
    expect(len(got) == steps and all(math.isfinite(v) for v in got), f"log.csv has {len(got)} finite losses")
    from tinydiffusion.checkpoint import load_model

    load_model(work / "run", device)
    return f"loss {got[0]:.4f} -> {got[-1]:.4f}"


def row_interrupt_and_resume(work: Path, device: str, steps: int) -> str:
    run = work / "interrupted"
    settings = [*common_settings(device), *fast_paths(device), "log.checkpoint_every=100000"]
    proc = subprocess.Popen([sys.executable, "-m", "tinydiffusion", *train_args(run, steps, settings)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    start = time.time()
    while len(losses(run)) < max(1, steps // 3) and proc.poll() is None and time.time() - start < 900:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    expect(proc.returncode == 128 + signal.SIGINT and "stopped at step" in err,
           f"Ctrl-C: exit {proc.returncode}: {last_line(err)}")
    stopped = len(losses(run))
    resumed = cli(*train_args(run, steps, settings), "--resume")
    expect(resumed.returncode == 0, f"--resume: exit {resumed.returncode}: {last_line(resumed.stderr)}")
    got, reference = losses(run), losses(work / "run")
    expect(len(got) == len(reference) == steps, f"{len(got)} rows after resuming, {len(reference)} uninterrupted")
    gap = relative_gap(got, reference)
    expect(gap <= (0.01 if device == "cuda" else 1e-6), f"losses differ by {gap:.2e} (relative)")
    return f"stopped at step {stopped}/{steps}; largest loss gap {gap:.1e}"


def row_sampler(work: Path, device: str, sampler: str) -> str:
    run = work / ("corrupt" if sampler == "x0-step" else "run")
    if sampler == "x0-step" and not (run / "model.safetensors").exists():
        corrupt = [*common_settings(device), "objective.kind=corrupt", "sample.sampler=x0-step"]
        trained = cli(*train_args(run, 2, corrupt))
        expect(trained.returncode == 0, f"training the corrupt-objective run: {last_line(trained.stderr)}")
    out = work / f"samples-{sampler}.npz"
    steps = SAMPLER_STEPS.get(sampler, 5)
    proc = cli("sample", str(run), "-n", "16", "--sampler", sampler, "--steps", str(steps), "--device", device,
               "--out", str(out))
    expect(proc.returncode == 0, f"exit {proc.returncode}: {last_line(proc.stderr)}")
    images = np.load(out)["images"].reshape(16, -1).astype(np.float64)
    expect(bool((images.std(1) > 1).all()), "a sample is one flat colour (black, white or NaN grey)")
    return f"{steps} steps: {last_line(proc.stderr)}"


def row_time_budget(work: Path, device: str) -> str:
    if "--time-budget" not in cli("train", "--help").stdout:
        return "not available"
    minutes = 0.5
    start = time.perf_counter()
    proc = cli("train", "--out", str(work / "budget"), "--time-budget", str(minutes),
               *sum((["--set", s] for s in common_settings(device)), []))
    seconds = time.perf_counter() - start
    expect(proc.returncode == 0, f"exit {proc.returncode}: {last_line(proc.stderr)}")
    expect((work / "budget" / "model.safetensors").exists(), "no model.safetensors")
    expect(seconds < minutes * 60 + 45, f"took {seconds:.0f} s for a {minutes * 60:.0f} s budget")
    return f"{len(losses(work / 'budget'))} steps in {seconds:.0f} s (budget {minutes * 60:.0f} s + start-up)"


def torchrun(args: list[str]) -> subprocess.CompletedProcess:
    """Two processes on this machine (``--local-addr``: the rendezvous must not depend on the hostname resolving)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--local-addr", "127.0.0.1",
                           "--nproc_per_node", "2",
                           "-m", "tinydiffusion", *args], capture_output=True, text=True, timeout=900)


def row_ddp(work: Path, device: str, steps: int) -> str:
    exact = [*common_settings(device), "model.dropout=0.1", "runtime.amp=off"]
    if device == "cuda":  # compiled DDP, with no_sync and the dropout draw's graph break
        exact.append("runtime.compile=true")
    proc = torchrun(train_args(work / "ddp", steps, [*exact, "optim.grad_accum=2"]))
    expect(proc.returncode == 0, f"torchrun: exit {proc.returncode}: {last_line(proc.stderr)}")
    one = cli(*train_args(work / "one", steps, exact))
    expect(one.returncode == 0, f"one process: exit {one.returncode}: {last_line(one.stderr)}")
    gap = relative_gap(losses(work / "ddp"), losses(work / "one"))
    expect(len(losses(work / "ddp")) == steps and gap <= (0.01 if device == "cuda" else 1e-4),
           f"losses differ by {gap:.2e} (relative)")
    return f"2 processes x 2 micro-batches vs 1 process: largest loss gap {gap:.1e}"


def row_ddp_batchnorm(work: Path, device: str, steps: int) -> str:
    settings = [s for s in common_settings(device) if not s.startswith("model.")]  # seed 000's BatchNorm U-Net
    proc = torchrun([*train_args(work / "ddp-bn", steps, settings), "--recipe", "dli-fashion16",
                     "--data", "fashion-mnist-mini"])
    expect(proc.returncode == 0, f"torchrun: exit {proc.returncode}: {last_line(proc.stderr)}")
    got = losses(work / "ddp-bn")
    expect(len(got) == steps and all(math.isfinite(v) for v in got), f"log.csv has {len(got)} finite losses")
    warned = "BatchNorm statistics are per process" in proc.stderr
    expect(warned == (device != "cuda"), "SyncBatchNorm warning " + ("missing" if not warned else "on CUDA"))
    return "SyncBatchNorm" if device == "cuda" else "per-process BatchNorm, with its warning (no SyncBatchNorm on CPU)"


# ---------------------------------------------------------------------------------------------- table
def run_row(name: str, fn: Callable[[], str], rows: list[tuple[str, str, float, str]]) -> None:
    start = time.perf_counter()
    try:
        detail = fn()
        status = "not available" if detail == "not available" else "pass"
    except Check as exc:
        status, detail = "FAIL", str(exc)
    except Exception as exc:  # a crash of the check itself is a failed row, not the end of the table
        status, detail = "FAIL", f"{type(exc).__name__}: {exc}"
    rows.append((name, status, time.perf_counter() - start, detail))
    print(f"{status:>13}  {name}  ({time.perf_counter() - start:.0f} s)  {detail}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, help="training steps (default: 50 on CUDA, 6 on a CPU)")
    parser.add_argument("--keep", help="keep the runs in this folder (default: a temporary folder)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: PyTorch sees no CUDA device here; use --device cpu")
    steps = args.steps or (50 if args.device == "cuda" else 6)
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        d, rows = args.device, []
        fast = "bf16, compile, channels-last" if d == "cuda" else "fp32, channels-last"
        run_row(f"train {steps} steps ({fast})", lambda: row_train(work, d, steps), rows)
        run_row("Ctrl-C, then --resume: the same losses", lambda: row_interrupt_and_resume(work, d, steps), rows)
        for sampler in ("ddpm", "ddim", "dpm++", "euler", "heun", "ddpm-no-noise", "x0-step"):
            run_row(f"sampler {sampler}", lambda s=sampler: row_sampler(work, d, s), rows)
        run_row("train --time-budget", lambda: row_time_budget(work, d), rows)
        if d == "cpu" or gpus >= 2:
            run_row("2 processes = 1 process (accumulation, dropout)", lambda: row_ddp(work, d, min(steps, 6)), rows)
            run_row("2 processes, BatchNorm network", lambda: row_ddp_batchnorm(work, d, min(steps, 6)), rows)
        else:
            rows.append(("2 processes", "skipped", 0.0, f"needs 2 GPUs, found {gpus}"))
    name = torch.cuda.get_device_name() if d == "cuda" else "CPU"
    print(f"\ntinydiffusion GPU check on {name}, torch {torch.__version__}, {steps} training steps\n")
    print("| check | result | seconds | detail |\n|---|---|---:|---|")
    for check, status, seconds, detail in rows:
        print(f"| {check} | {status} | {seconds:.0f} | {detail.replace('|', '/')} |")
    return 1 if any(status == "FAIL" for _, status, _, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
