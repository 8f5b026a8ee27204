"""Training and sampling throughput: tinydiffusion's paths beside a plain eager PyTorch loop.

    python benchmarks/speed.py [--device auto] [--steps 30] [--peak-tflops F] [--compile]

Training rows time ``--steps`` optimiser steps after warm-up steps, with the device synchronised
before the clock stops. "plain eager" is the loop a PyTorch user writes for the same network and the
same work per step (DataLoader over a float TensorDataset, torch.randn noise, the recipe's loss,
gradient clipping, AdamW, a per-parameter EMA, fp32); "tinydiffusion" is ``Trainer.train_step`` on
``make_batches`` with the settings named in the row. Utilisation is model FLOPs (forward + backward,
counted by ``torch.utils.flop_counter``) per second over the device's peak: the bf16 dense peak of a
known GPU, or ``--peak-tflops`` (leave it out on a CPU and the column shows achieved TFLOP/s only).

Sampling rows time whole calls of ``tinydiffusion.generate`` (steady state: the median of repeated
calls after a warm-up call). GPU-only rows (the 10,000-sample and seed 002 context-unet targets) run
when CUDA is available. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from tinydiffusion.config import build_config
from tinydiffusion.data import make_batches
from tinydiffusion.generate import SampleSettings, generate
from tinydiffusion.objectives import prediction_target
from tinydiffusion.train.distributed import Dist
from tinydiffusion.train.loop import Trainer
from tinydiffusion.train.setup import RunParts, setup_run

#: bf16 dense tensor-core peaks (TFLOP/s) of GPUs these benchmarks are run on.
GPU_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "RTX 4090": 165.0}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in GPU_PEAK_TFLOPS.items() if k in name), None)


def step_flops(parts: RunParts, batch_size: int) -> float:
    """Model FLOPs of one forward and backward pass at ``batch_size`` (the optimiser is not counted)."""
    model = copy.deepcopy(parts.model)
    x, cond = plain_tensors(parts)
    x, cond = x[:batch_size], (cond[:batch_size] if cond is not None else None)
    t = torch.randint(0, parts.schedule.num_timesteps, (batch_size,), device=parts.device)
    with FlopCounterMode(display=False) as counter:
        out = model(x, t) if cond is None else model(x, t, cond)
        out.square().mean().backward()
    return float(counter.get_total_flops())


def plain_tensors(parts: RunParts) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The dataset as float images in [−1, 1] (N, C, H, W) and class ids, on the run's device."""
    ds = parts.dataset
    x = torch.from_numpy(ds.images).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(parts.device)
    cond = None
    if parts.condition == "class":
        cond = torch.from_numpy(ds.labels).to(parts.device)
    elif parts.condition == "context":
        cond = F.one_hot(torch.from_numpy(ds.labels), len(ds.class_names)).float().to(parts.device)
    return x, cond


def plain_eager(parts: RunParts, steps: int, warmup: int) -> float:
    """Seconds per step of the loop a PyTorch user writes for the same network and loss."""
    cfg, device, schedule = parts.cfg, parts.device, parts.schedule
    model = copy.deepcopy(parts.model).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    x_all, cond_all = plain_tensors(parts)
    tensors = (x_all.cpu(),) if cond_all is None else (x_all.cpu(), cond_all.cpu())
    loader = DataLoader(TensorDataset(*tensors), batch_size=cfg.optim.batch_size, shuffle=True, drop_last=True)
    alpha_bar = schedule.alpha_bar.to(device)

    def run(n: int) -> None:
        done = 0
        while done < n:
            for batch in loader:
                x0 = batch[0].to(device)
                t = torch.randint(0, schedule.num_timesteps, (x0.shape[0],), device=device)
                noise = torch.randn_like(x0)
                ab = alpha_bar[t].view(-1, 1, 1, 1)
                x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
                if len(batch) > 1:
                    cond = batch[1].to(device)
                    out = model(x_t, t, cond)
                else:
                    out = model(x_t, t)
                loss = F.mse_loss(out, prediction_target(x0, noise, ab, cfg.objective.prediction))
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                with torch.no_grad():
                    for pe, p in zip(ema.parameters(), model.parameters()):
                        pe.mul_(cfg.ema.decay).add_(p, alpha=1 - cfg.ema.decay)
                done += 1
                if done == n:
                    break
        sync(device)

    run(warmup)
    start = time.perf_counter()
    run(steps)
    return (time.perf_counter() - start) / steps


def ours(parts: RunParts, steps: int, warmup: int) -> float:
    """Seconds per step of ``Trainer.train_step`` on the device-resident batch stream."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(parts, Path(tmp), Dist())
        trainer.net.train()
        cfg = parts.cfg
        batches = make_batches(parts.dataset, cfg.optim.batch_size, device=parts.device, seed=cfg.runtime.seed,
                               condition=parts.condition, hflip=cfg.data.hflip)
        for _ in range(warmup):
            trainer.train_step(next(batches), cfg.optim.lr)
        sync(parts.device)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.step += 1
            trainer.train_step(next(batches), cfg.optim.lr)
        sync(parts.device)
        return (time.perf_counter() - start) / steps


def build(recipe: str, device: str, overrides: list[str]) -> RunParts:
    cfg = build_config(recipe, overrides=[f"runtime.device={device}", *overrides])
    return setup_run(cfg, torch.device(device), 1)


TRAIN_PATHS: dict[str, tuple[list[str], Callable[[RunParts, int, int], float]]] = {
    "plain eager (fp32)": (["runtime.amp=off"], plain_eager),
    "tinydiffusion fp32": (["runtime.amp=off"], ours),
    "tinydiffusion bf16": (["runtime.amp=bf16"], ours),
    "tinydiffusion bf16 + channels_last": (["runtime.amp=bf16", "runtime.channels_last=true"], ours),
    "tinydiffusion bf16 + compile": (["runtime.amp=bf16", "runtime.compile=true"], ours),
}


def training_rows(args: argparse.Namespace, device: torch.device) -> list[list[str]]:
    recipes = ["quickstart"] + (["dlai-tiles", "fashion28", "tiles32"] if device.type == "cuda" else [])
    peak = peak_tflops(device, args.peak_tflops)
    rows = []
    for recipe in recipes:
        for path, (overrides, fn) in TRAIN_PATHS.items():
            if "compile" in path and not (args.compile or device.type == "cuda"):
                continue
            extra = [f"optim.batch_size={args.batch_size}"] if args.batch_size else []
            parts = build(recipe, str(device), overrides + extra)
            batch = parts.cfg.optim.batch_size
            seconds = fn(parts, args.steps, args.warmup)
            flops = step_flops(parts, batch) / seconds
            util = f"{100 * flops / (peak * 1e12):.1f} %" if peak else "—"
            rows.append([f"train {recipe}: {path}", str(batch), f"{batch / seconds:,.0f}", f"{1e3 * seconds:.1f}",
                         f"{flops / 1e12:.3f}", util])
            print(" | ".join(rows[-1]), flush=True)
    return rows


def time_calls(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


SAMPLE_CASES = (
    # (recipe, n, sampler, steps, guidance, GPU only)
    ("quickstart", 32, "ddim", 25, None, False),
    ("quickstart", 32, "ddim", 25, 2.0, False),
    ("quickstart", 32, "dpm++", 20, 2.0, False),
    ("dlai-tiles", 32, "ddim", 25, None, True),
    ("dlai-tiles", 10_000, "ddim", 25, None, True),
    ("dlai-tiles", 32, "ddpm", 500, None, True),
)


def sampling_rows(args: argparse.Namespace, device: torch.device) -> list[list[str]]:
    rows = []
    for recipe, n, sampler, steps, guidance, gpu_only in SAMPLE_CASES:
        if gpu_only and device.type != "cuda":
            continue
        parts = build(recipe, str(device), ["runtime.amp=off"])
        model = parts.model.eval()
        meta = parts.dataset.facts(parts.condition)
        shape = (meta["channels"], meta["image_size"], meta["image_size"])
        cond = None
        if parts.condition == "class":
            cond = torch.arange(n) % len(parts.dataset.class_names)
        elif parts.condition == "context":
            cond = F.one_hot(torch.arange(n) % len(parts.dataset.class_names), len(parts.dataset.class_names)).float()
        settings = SampleSettings(sampler=sampler, steps=steps, guidance=guidance, clip_x0=True)

        def call() -> object:
            return generate(model, parts.schedule, shape, n, settings=settings, prediction=parts.cfg.objective.prediction,
                            cond=cond, batch_size=n, device=device)

        seconds = time_calls(call, device, args.repeats)
        calls = steps * (2 if guidance else 1)
        label = f"sample {recipe}: {n} × {sampler} {steps} steps" + (f", guidance {guidance:g}" if guidance else "")
        rows.append([label, str(n), f"{n / seconds:,.0f}", f"{1e3 * seconds / calls:.2f} per call; "
                     f"{seconds:.3f} s total", "", ""])
        print(" | ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per row")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=5, help="timed sampling calls per row")
    parser.add_argument("--batch-size", type=int, default=None, help="override the recipes' batch size")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for utilisation")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile on a CPU")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}\n")
    rows = [] if args.skip_train else training_rows(args, device)
    rows += sampling_rows(args, device)
    print("\n| path | batch | images/s | ms per step | model TFLOP/s | utilisation |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
