"""The fast training paths (bf16 autocast, channels-last) compute what the plain fp32 path computes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tinydiffusion.config import build_config
from tinydiffusion.data import make_batches
from tinydiffusion.train.distributed import Dist
from tinydiffusion.train.loop import Trainer
from tinydiffusion.train.setup import setup_run


def one_step(tmp_path: Path, *overrides: str) -> tuple[float, float, dict[str, torch.Tensor]]:
    """Loss, gradient norm and weights after one quickstart step on 32 images, with ``overrides``."""
    cfg = build_config("quickstart", overrides=["runtime.device=cpu", "data.n=64", "optim.batch_size=32",
                                                 "optim.warmup_steps=0", *overrides])
    parts = setup_run(cfg, torch.device("cpu"), 1)
    trainer = Trainer(parts, tmp_path, Dist())
    trainer.net.train()
    batch = next(make_batches(parts.dataset, 32, device="cpu", seed=0, condition=parts.condition))
    loss, grad_norm = trainer.train_step(batch, cfg.optim.lr)
    weights = {k: v.detach().clone().contiguous() for k, v in trainer.model.state_dict().items()}
    return float(loss), float(grad_norm), weights


def test_channels_last_training_step_matches_the_plain_one(tmp_path):
    loss, norm, weights = one_step(tmp_path / "a", "runtime.amp=off")
    loss_cl, norm_cl, weights_cl = one_step(tmp_path / "b", "runtime.amp=off", "runtime.channels_last=true")
    assert loss_cl == pytest.approx(loss, rel=1e-5)
    assert norm_cl == pytest.approx(norm, rel=1e-4)
    # Adam's first step is lr·g/(|g|+ε) ≈ ±lr: an element whose gradient is ~0 may flip sign under a
    # different summation order, so compare the mean change, not every element.
    diff = torch.cat([(weights_cl[k] - w).abs().flatten() for k, w in weights.items() if w.is_floating_point()])
    assert diff.mean().item() < 1e-6
    assert (diff > 1e-5).float().mean().item() < 1e-3


def test_bf16_training_step_stays_close_to_fp32(tmp_path):
    loss, norm, weights = one_step(tmp_path / "a", "runtime.amp=off")
    loss_bf, norm_bf, weights_bf = one_step(tmp_path / "b", "runtime.amp=bf16")
    # bf16 keeps 8 bits of mantissa: the loss and the gradient agree to a few per cent ...
    assert loss_bf == pytest.approx(loss, rel=0.03)
    assert norm_bf == pytest.approx(norm, rel=0.05)
    # ... and the fp32 master weights move the same way (Adam's first step is ±lr per element).
    moved = [(weights_bf[k] - w).abs().max().item() for k, w in weights.items() if w.is_floating_point()]
    assert max(moved) < 1e-2
