"""The training loop: one optimiser step at a time, with logging, previews and checkpoints that survive anything.

Every random number of a step is a function of (run seed, step, global sample index) (see
:class:`~tinydiffusion.rng.BatchRandom`) and the batch of a step is a function of (seed, step) (see
``tinydiffusion.data.make_batches``). So ``--resume`` continues exactly, and N processes with B/N samples
each compute what one process with B samples computes — with gradient accumulation too, and for dropout
networks (their masks come from a seeded :class:`~tinydiffusion.models.dropout.DropoutSource`); BatchNorm
networks use SyncBatchNorm on CUDA (see :func:`~tinydiffusion.train.distributed.sync_batchnorm`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .. import checkpoint as ckpt
from .. import provenance
from ..config import TrainConfig, dumps
from ..data import make_batches
from ..errors import Interrupted, UserError
from ..models.dropout import DropoutSource, dropout_from
from ..rng import BatchRandom, SeededNoise
from ..value_range import parse_range
from .budget import TimeBudget
from .distributed import (Dist, agree_on_signal, all_mean, broadcast_int, init_distributed, max_over_processes,
                          on_main, shutdown, sync_batchnorm)
from .ema import EMA
from .logger import RunLogger, tensorboard_wanted
from .lr import lr_multiplier
from .preview import PreviewAbandoned, Previews, write_preview
from .rundir import RunDirectoryLock
from .setup import RunParts, resolve_device, setup_run


class TrainingDiverged(UserError):
    """The loss, the gradient or the weights became NaN or infinite."""


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Set the global generators from a saved state; the states go in as CPU byte tensors, as torch requires."""
    torch.set_rng_state(state["rng_cpu"].to("cpu", torch.uint8))
    if device.type == "cuda" and state.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(state["rng_cuda"].to("cpu", torch.uint8), device)


def train(cfg: TrainConfig, *, resume: bool = False) -> Path:
    """Train a model as ``cfg`` says and return the run directory.

    ``resume`` continues from the newest checkpoint in the run directory. The main process holds the
    run directory's lock (:mod:`.rundir`) from before anything is written until training ends.
    """
    started = time.perf_counter()  # a --time-budget counts from here
    tensorboard_wanted(cfg.log.tensorboard)  # "on" without the package: one clear error before anything is made
    device_kind = "cpu" if cfg.runtime.device == "cpu" or not torch.cuda.is_available() else "cuda"
    dist = init_distributed(device_kind)
    run_dir = Path(cfg.out)
    lock = RunDirectoryLock(run_dir, resume=resume)
    try:
        on_main(lock.acquire, dist, f"take {run_dir}")
        device = resolve_device(cfg.runtime.device, dist.local_rank)
        if cfg.runtime.threads:
            torch.set_num_threads(cfg.runtime.threads)
        parts = setup_run(cfg, device, dist.world_size)
        trainer = Trainer(parts, run_dir, dist, started=started)
        if resume:
            changes = provenance.check_resume(run_dir, cfg)
            trainer.restore()
            trainer.config_path = provenance.resume_config_path(run_dir, trainer.step)
            if dist.is_main:
                provenance.report_changes(run_dir, trainer.step, changes)
        if dist.is_main:
            params = sum(p.numel() for p in parts.model.parameters())
            length = (f"{cfg.optim.time_budget_minutes:g} minutes" if trainer.budgeted
                      else f"{parts.total_steps:,} steps")
            print(f"tinydiffusion train: {cfg.recipe} -> {run_dir}: {cfg.model.name} ({params:,} params) on "
                  f"{parts.dataset.name} ({len(parts.dataset):,} samples), {length} on "
                  f"{device}" + (f" x {dist.world_size} processes" if dist.enabled else ""), file=sys.stderr)
        trainer.fit()
        return run_dir
    finally:
        lock.release()
        shutdown(dist)


class Trainer:
    """Owns the live objects of a run and the loop over optimiser steps."""

    def __init__(self, parts: RunParts, run_dir: Path, dist: Dist, *, started: float | None = None):
        self.parts = parts  # data, network, schedule and loss of the run
        self.cfg: TrainConfig = parts.cfg
        self.run_dir = run_dir
        self.dist = dist  # this process's place in the job
        self.device = parts.device
        rt = self.cfg.runtime
        self.amp = rt.amp == "bf16" or (rt.amp == "auto" and self.device.type == "cuda")
        self.channels_last = rt.channels_last and parts.dataset.kind == "image"
        model = sync_batchnorm(parts.model, self.device, dist)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model  # the plain module: what is saved, averaged and sampled
        e = self.cfg.ema
        self.ema = EMA(model, e.decay, e.warmup, halflife_images=e.halflife_images, rampup=e.rampup,
                       batch_images=self.cfg.optim.batch_size) if e.enabled else None
        self.dropout_source = DropoutSource(rt.seed, self.cfg.optim.batch_size)
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.ddp = DistributedDataParallel(model, device_ids=ids) if dist.enabled else None
        net: nn.Module = self.ddp if self.ddp is not None else model
        self.net = torch.compile(net) if rt.compile else net
        self.optimizer = self._optimizer()
        self.step = 0
        self.elapsed = 0.0
        self.config_path = run_dir / provenance.CONFIG_FILE  # a resume records its config in its own file
        self.started = time.perf_counter() if started is None else started
        self._stop_signal: int | None = None

    # ------------------------------------------------------------------ construction
    def _optimizer(self) -> torch.optim.Optimizer:
        o = self.cfg.optim
        params = [p for p in self.model.parameters() if p.requires_grad]
        kind = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
        extra: dict[str, Any] = {"fused": True} if self.device.type == "cuda" else {"foreach": True}
        return kind(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay, **extra)

    def restore(self) -> None:
        """Load the newest readable training state of the run directory.

        The state is read onto the CPU, whatever device trains: the weights are copied to the device by
        ``load_state_dict``, and the generator states must reach ``torch.(cuda.)set_rng_state`` as CPU
        byte tensors (a state mapped onto the GPU made ``--resume`` on CUDA crash).
        """
        path, state = ckpt.latest_state(self.run_dir, lambda p: ckpt.load_state(p, "cpu"))
        try:
            self.model.load_state_dict(state["model"])
            if self.ema is not None and state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError):
            raise UserError(f"{path} was saved by a different model or optimiser than this config builds; "
                            "resume with the run's own config.toml (tinydiffusion train --config RUN/config.toml "
                            "--resume --out RUN) or start a new run directory") from None
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed_s", 0.0))
        restore_rng(state, self.device)
        if self.budgeted:  # a budgeted run resumes the plan written into its config.toml
            raise UserError(f"--time-budget plans a new run; to continue {self.run_dir}, resume without it "
                            "(the planned step count is in its config.toml) or ask for more with --steps N")
        if self.step >= self.parts.total_steps:
            raise UserError(f"the run in {self.run_dir} already finished {self.step} steps; ask for more with "
                            f"--steps N (N > {self.step})")

    # ------------------------------------------------------------------ the loop
    def fit(self) -> None:
        cfg, parts = self.cfg, self.parts
        total = parts.total_steps
        log = RunLogger(self.run_dir, None if self.budgeted else total, self.step, tensorboard=cfg.log.tensorboard,
                        progress=cfg.log.progress, enabled=self.dist.is_main)
        on_main(lambda: ckpt.atomic_write(self.config_path, dumps(cfg).encode()), self.dist, "write config.toml")
        budget = TimeBudget(cfg.optim.time_budget_minutes, self.started) if self.budgeted else None
        self.previews = Previews(parts, log.write)
        ckpt_every = cfg.log.checkpoint_every or max(1, total // 4)
        batches = make_batches(parts.dataset, cfg.optim.batch_size, device=self.device, seed=cfg.runtime.seed,
                               condition=parts.condition, hflip=cfg.data.hflip, rank=self.dist.rank,
                               world_size=self.dist.world_size, start_step=self.step,
                               value_range=parse_range(cfg.data.range))
        health = torch.zeros(2, device=self.device)  # running sums of loss and gradient norm since the last log
        window_start, window_steps = time.perf_counter(), 0
        self.net.train()
        with self._signals():
            try:
                for batch in batches:
                    if self.step >= total:
                        break
                    lr = cfg.optim.lr * lr_multiplier(self.step, total, cfg.optim.lr_schedule, cfg.optim.warmup_steps,
                                                      parts.steps_per_epoch)
                    loss, grad_norm = self.train_step(batch, lr)
                    health += torch.stack([loss, grad_norm])
                    self.step += 1
                    window_steps += 1
                    log.advance()
                    if budget is not None:
                        total = self._follow_budget(budget, total, health, log)
                        self.previews.replan(total)
                        ckpt_every = cfg.log.checkpoint_every or max(1, total // 4)
                    last = self.step == total
                    if self.step % cfg.log.every == 0 or last:
                        now = time.perf_counter()
                        self.elapsed += now - window_start
                        self._log(log, health, window_steps, now - window_start, lr)
                        health.zero_()
                        window_start, window_steps = time.perf_counter(), 0
                    if self.step % ckpt_every == 0 or last:
                        self._check_health(health)
                        self._save()
                    if self.step % self.previews.every == 0 or last:
                        self._check_health(health)  # on every process: it is a collective
                        # within the previews' share (a decision rank 0 makes: it times them)
                        on_main(lambda: self.previews.due(self.step) and self._preview(log), self.dist,
                                "write the preview")
                    # Every step, every process: all stop at the same step, so none waits alone in a collective.
                    signum = agree_on_signal(self._stop_signal or 0, self.dist)
                    if signum and not last:
                        self._check_health(health)
                        path = self._save()
                        where = f"saved {path}" if path is not None else "rank 0 saved the state"
                        raise Interrupted(f"stopped at step {self.step}/{total}; {where}; continue with: "
                                          f"tinydiffusion train --resume --out {self.run_dir}", signum)
                on_main(lambda: ckpt.atomic_write(self.config_path, dumps(cfg).encode()), self.dist,
                        "write config.toml")
            finally:
                log.close()

    @property
    def budgeted(self) -> bool:
        """True for a run that plans its length from ``optim.time_budget_minutes``."""
        return self.cfg.optim.time_budget_minutes is not None

    def _follow_budget(self, budget: TimeBudget, total: int, health: torch.Tensor, log: RunLogger) -> int:
        """Calibrate, plan and keep to the deadline of a ``--time-budget`` run; returns the step count."""
        now = time.perf_counter()
        if budget.plan is None:
            budget.step_done(now)
            if not budget.calibrated:
                return total
            # The first checkpoint and preview, timed, so the plan knows what the later ones cost.
            self._check_health(health)
            self._save()
            saved = time.perf_counter()
            on_main(lambda: self._preview(log), self.dist, "write the preview")
            previewed = time.perf_counter()
            plan = budget.make_plan(self.step, previewed, preview_s=previewed - saved, checkpoint_s=saved - now,
                                    preview_every=self.cfg.preview.every,
                                    checkpoint_every=self.cfg.log.checkpoint_every)
            total = broadcast_int(plan.planned_steps, self.dist, self.device)
            self.cfg.optim.steps, self.cfg.optim.time_budget_minutes = total, None  # the saved config: N steps
            self.parts.total_steps = total
            log.plan(total, plan.describe())
            on_main(lambda: self._write_plan(plan.to_dict()), self.dist, "write time_budget.json")
        elif self.step < total and max_over_processes(int(budget.out_of_time(now)), self.dist):
            log.write(f"tinydiffusion train: warning: this machine slowed down; stopping at step {self.step} of "
                      f"{total} to end within the time budget (the learning rate had not finished decaying)")
            total = self.parts.total_steps = self.cfg.optim.steps = self.step
        return total

    def _write_plan(self, plan: dict[str, Any]) -> None:
        """``time_budget.json`` and the config with the planned step count (main process)."""
        ckpt.atomic_write(self.run_dir / "time_budget.json", (json.dumps(plan, indent=2) + "\n").encode())
        ckpt.atomic_write(self.config_path, dumps(self.cfg).encode())

    def train_step(self, batch: Any, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step (with gradient accumulation); returns the mean loss and the gradient norm.

        Under DDP the gradients of the first k − 1 micro-batches stay local (``no_sync``: a fresh context
        around each one's forward and backward) and the last backward all-reduces their sum.
        """
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        accum = cfg.optim.grad_accum
        x, cond, index = batch.x, batch.cond, batch.index
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        conds = cond.chunk(accum) if cond is not None else [None] * accum
        micro = len(index) // accum
        total_loss = torch.zeros((), device=self.device)
        with dropout_from(self.model, self.dropout_source):
            for i, (xi, ci, idx) in enumerate(zip(x.chunk(accum), conds, index.chunk(accum))):
                rng = BatchRandom(SeededNoise(idx), cfg.runtime.seed, self.step)
                self.dropout_source.select(self.step, self.dist.rank * len(index) + i * micro, micro)
                local = self.ddp is not None and i < accum - 1
                with self.ddp.no_sync() if local else contextlib.nullcontext():
                    with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                        loss = self.parts.objective(self.net, xi, ci, rng).mean() / accum
                    loss.backward()
                total_loss += loss.detach()
        # With max_norm = inf the call only measures the norm (the seeds without clipping).
        max_norm = cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model, self.step)
        return total_loss, grad_norm.detach()

    # ------------------------------------------------------------------ side effects
    def _log(self, log: RunLogger, health: torch.Tensor, steps: int, seconds: float, lr: float) -> None:
        sums = all_mean(health, self.dist).tolist()  # the one host sync per log interval
        if not all(map(lambda v: v == v and abs(v) != float("inf"), sums)):
            self._diverged("the loss")
        row = {
            "step": self.step,
            "epoch": round(self.step / self.parts.steps_per_epoch, 3),
            "loss": sums[0] / steps,
            "lr": lr,
            "images_per_s": steps * self.cfg.optim.batch_size / max(seconds, 1e-9),
            "grad_norm": sums[1] / steps,
            "elapsed_s": round(self.elapsed, 2),
        }
        on_main(lambda: log.row(row), self.dist, "append to log.csv")

    def _check_health(self, health: torch.Tensor) -> None:
        """Never checkpoint or preview weights that a NaN/inf loss, gradient or update has touched.

        Runs after the optimiser step: the loss and gradient sums since the last log, and every weight,
        EMA weight and optimiser moment (one host sync for all of them).
        """
        if not bool(torch.isfinite(all_mean(health, self.dist)).all()):
            self._diverged("the loss")
        tensors = [*self.model.state_dict().values(), *(self.ema.state_dict().values() if self.ema else ())]
        tensors += [t for s in self.optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
        finite = [torch.isfinite(t).all() for t in tensors if t.is_floating_point()]
        if finite and not bool(torch.stack(finite).all()):
            self._diverged("the weights")

    def _diverged(self, what: str) -> None:
        states = ckpt.list_states(self.run_dir)
        kept = f"the last good checkpoint is {states[-1][1]}" if states else "no checkpoint had been written yet"
        raise TrainingDiverged(f"{what} became NaN or infinite by step {self.step}; {kept}; try a lower optim.lr "
                               "or optim.grad_clip")

    def _meta(self) -> dict[str, Any]:
        cfg, parts = self.cfg, self.parts
        ds = parts.dataset
        return {
            "model": cfg.model.name,
            "model_config": dataclasses.asdict(self.model.config),
            "schedule": parts.schedule.config,
            "prediction": "x0" if cfg.objective.kind == "corrupt" else cfg.objective.prediction,
            "objective": cfg.objective.kind,
            "data": {"spec": cfg.data.spec, "kind": ds.kind, "condition": parts.condition,
                     "class_names": ds.class_names, "range": list(parse_range(cfg.data.range)),
                     **ds.facts(parts.condition)},
            "sample": dataclasses.asdict(cfg.sample),
            "recipe": cfg.recipe,
            "step": self.step,
            "ema": self.ema is not None,
        }

    def _save(self) -> Path | None:
        """Write the resumable state and model.safetensors (main process); returns the state path (None elsewhere)."""
        return on_main(self._write_checkpoint, self.dist, f"write the checkpoint of step {self.step}")

    def _write_checkpoint(self) -> Path:
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "elapsed_s": self.elapsed,
        }
        path = ckpt.save_state(self.run_dir, self.step, state, self.cfg.log.keep_last)
        inference = self.ema.model if self.ema is not None else self.model
        ckpt.save_model(self.run_dir / ckpt.MODEL_FILE, inference, self._meta())
        return path

    def _preview(self, log: RunLogger) -> None:
        """Preview grids of the EMA (and raw) weights; a stop signal abandons them between sampler steps."""
        models = {"": self.ema.model} if self.ema is not None else {"": self.model}
        if self.ema is not None and self.cfg.preview.raw:
            models["-raw"] = self.model
        with self.previews.timed():
            for suffix, model in models.items():
                was_training = model.training
                model.eval()
                try:
                    image = write_preview(model, self.parts,
                                          self.run_dir / "samples" / f"step-{self.step:08d}{suffix}.png", self.step,
                                          settings=self.previews.settings,
                                          should_stop=lambda: self._stop_signal is not None,
                                          strip=0 if suffix else self.cfg.preview.strip)
                except PreviewAbandoned:
                    return
                finally:
                    model.train(was_training)
                log.image("samples/" + ("raw" if suffix else "ema" if self.ema is not None else "model"), image,
                          self.step)

    @contextlib.contextmanager
    def _signals(self):
        """Ctrl-C and SIGTERM set a flag; the loop saves at the end of the step and stops cleanly.

        The first signal is acknowledged at once. Later ones never interrupt the step or the save (an
        interrupted save would lose the step's work): they only say that the save is on its way. The
        lines go out with ``os.write``, which is safe inside a signal handler, unlike ``print``.
        """

        def handler(signum: int, frame: Any) -> None:
            if self._stop_signal is None:
                self._stop_signal = signum
                message = "stopping at the end of this step and saving a checkpoint (Ctrl-C again will not skip it)"
            else:
                message = "still finishing this step and saving its checkpoint; please wait"
            if self.dist.is_main:
                os.write(2, f"\ntinydiffusion train: {message}\n".encode())

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
