"""The training machinery from first principles: EMA, learning-rate schedules, gradient accumulation,
dropout masks that do not depend on how a batch is split, BatchNorm under DDP, and resume on any device."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from conftest import TINY, tiny_args
from tinydiffusion import checkpoint
from tinydiffusion.cli.main import main
from tinydiffusion.config import build_config
from tinydiffusion.data import make_batches
from tinydiffusion.models.dropout import DropoutSource, SeededDropout, attach_dropout_source
from tinydiffusion.train.distributed import Dist, sync_batchnorm
from tinydiffusion.train.ema import EMA, ema_decay
from tinydiffusion.train.loop import Trainer
from tinydiffusion.train.lr import lr_multiplier
from tinydiffusion.train.setup import setup_run


# ------------------------------------------------------------------------------------------ EMA

def test_ema_decay_warms_up_as_one_plus_s_over_ten_plus_s():
    assert [ema_decay(s, 0.999, True) for s in (0, 1, 10, 90)] == [0.1, 2 / 11, 11 / 20, 91 / 100]
    assert ema_decay(8000, 0.999, True) == 8001 / 8010 < 0.999  # (1 + s)/(10 + s) reaches 0.999 at s = 8990
    assert ema_decay(10_000, 0.999, True) == 0.999
    assert ema_decay(0, 0.99, False) == ema_decay(5, 0.99, False) == 0.99


def test_ema_is_the_weighted_sum_of_the_trajectory():
    """After steps 0..n−1 the average is Π d_s·θ_init + Σ_s (1 − d_s) Π_{r>s} d_r · θ_s (θ_s: weights after step s)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EMA(model, max_decay=0.9, warmup=True)
    start = [p.detach().clone() for p in model.parameters()]
    trajectory = []
    for step in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model[1].running_mean.fill_(step)  # a buffer: copied, not averaged
        trajectory.append([p.detach().clone() for p in model.parameters()])
        ema.update(model, step)
    d = [min(0.9, (1 + s) / (10 + s)) for s in range(6)]
    for k, averaged in enumerate(ema.model.parameters()):
        expect = math.prod(d) * start[k]
        for s, weights in enumerate(trajectory):
            expect = expect + (1 - d[s]) * math.prod(d[s + 1:]) * weights[k]
        torch.testing.assert_close(averaged, expect, rtol=1e-6, atol=1e-6)
    assert torch.equal(ema.model[1].running_mean, torch.full((4,), 5.0))
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_model_safetensors_holds_the_ema_weights_not_the_raw_ones(tiny_run: Path):
    saved = load_file(tiny_run / checkpoint.MODEL_FILE)
    _, state = checkpoint.latest_state(tiny_run)
    assert saved.keys() == state["ema"].keys() == state["model"].keys()
    for key, value in saved.items():
        assert torch.equal(value, state["ema"][key]), key
    differ = [k for k in saved if saved[k].is_floating_point() and not torch.equal(saved[k], state["model"][k])]
    assert len(differ) > len(saved) // 2  # three steps at decay ≤ (1 + 2)/(10 + 2): the average lags the weights


# ------------------------------------------------------------------------------------------ learning rate

@pytest.mark.parametrize("schedule, warmup, expect", [
    ("constant", 4, [0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1, 1]),
    ("cosine", 0, [0.5 * (1 + math.cos(math.pi * s / 10)) for s in range(10)]),
    ("cosine", 2, [0.5, 1, 1, 0.5 * (1 + math.cos(math.pi / 8)), 0.5 * (1 + math.cos(math.pi * 2 / 8)),
                   0.5 * (1 + math.cos(math.pi * 3 / 8)), 0.5, 0.5 * (1 + math.cos(math.pi * 5 / 8)),
                   0.5 * (1 + math.cos(math.pi * 6 / 8)), 0.5 * (1 + math.cos(math.pi * 7 / 8))]),
    ("linear", 0, [1 - s / 10 for s in range(10)]),
    ("linear", 5, [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2]),  # the decay starts after warm-up
    ("linear-epoch", 0, [1, 1, 1, 0.75, 0.75, 0.5, 0.5, 0.5, 0.25, 0.25]),  # 2.5 steps per epoch, 4 epochs
])
def test_lr_multiplier_closed_forms(schedule, warmup, expect):
    got = [lr_multiplier(s, 10, schedule, warmup, steps_per_epoch=2.5) for s in range(10)]
    assert got == pytest.approx(expect, abs=1e-12)


def test_the_logged_learning_rate_follows_the_schedule(tmp_path: Path):
    run = tmp_path / "run"
    assert main(tiny_args(run, 6, "optim.lr=0.01", "optim.lr_schedule=cosine", "optim.warmup_steps=2")) == 0
    with open(run / "log.csv", newline="") as f:
        logged = [(int(r["step"]), float(r["lr"])) for r in csv.DictReader(f)]
    # row s holds the rate of optimiser step s − 1: warm-up 1/2, 2/2, then ½(1 + cos(π p)) with p = (s − 3)/4
    expect = [0.005, 0.01, 0.01, 0.005 * (1 + math.cos(math.pi / 4)), 0.005, 0.005 * (1 + math.cos(3 * math.pi / 4))]
    assert [s for s, _ in logged] == [1, 2, 3, 4, 5, 6]
    assert [lr for _, lr in logged] == pytest.approx(expect, rel=1e-5)


# ------------------------------------------------------------------------------------------ one optimiser step

def trainer_for(tmp_path: Path, *overrides: str) -> Trainer:
    cfg = build_config("quickstart", overrides=["runtime.device=cpu", *TINY, "optim.batch_size=8", *overrides])
    parts = setup_run(cfg, torch.device("cpu"), 1)
    trainer = Trainer(parts, tmp_path, Dist())
    trainer.net.train()
    return trainer


def one_step(tmp_path: Path, *overrides: str) -> tuple[float, float, dict[str, torch.Tensor]]:
    """Loss, gradient norm and the gradients the optimiser saw, for one step on the first batch of 8."""
    trainer = trainer_for(tmp_path, *overrides)
    parts = trainer.parts
    batch = next(make_batches(parts.dataset, 8, device="cpu", seed=0, condition=parts.condition))
    grads: dict[str, torch.Tensor] = {}
    real_step = trainer.optimizer.step

    def step(*args, **kwargs):  # noqa: ANN002, ANN003
        grads.update({name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.grad is not None})
        return real_step(*args, **kwargs)

    trainer.optimizer.step = step
    loss, grad_norm = trainer.train_step(batch, 1e-3)
    return float(loss), float(grad_norm), grads


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_gradient_accumulation_equals_one_big_batch(tmp_path: Path, dropout: float):
    """4 micro-batches of 2 give the loss and gradient of one batch of 8, dropout masks included."""
    loss, norm, grads = one_step(tmp_path / "a", f"model.dropout={dropout}")
    loss4, norm4, grads4 = one_step(tmp_path / "b", f"model.dropout={dropout}", "optim.grad_accum=4")
    assert loss4 == pytest.approx(loss, rel=1e-6)
    assert norm4 == pytest.approx(norm, rel=1e-5)
    assert grads.keys() == grads4.keys() and len(grads) > 10
    for name, g in grads.items():
        torch.testing.assert_close(grads4[name], g, rtol=1e-4, atol=1e-6 * norm, msg=name)


def test_dropout_drops_units_in_training_and_only_inside_a_step(tmp_path: Path):
    with_dropout = one_step(tmp_path / "a", "model.dropout=0.3")[0]
    without = one_step(tmp_path / "b", "model.dropout=0.0")[0]
    assert abs(with_dropout - without) > 1e-4
    # outside train_step the network's dropout is plain nn.Dropout again (a FLOP counter or a user's own loop
    # may run it on another batch)
    trainer = trainer_for(tmp_path / "c", "model.dropout=0.3")
    trainer.train_step(next(make_batches(trainer.parts.dataset, 8, device="cpu", condition="class")), 1e-3)
    layers = [m for m in trainer.model.modules() if isinstance(m, SeededDropout)]
    assert layers and all(m.source is None for m in layers)


# ------------------------------------------------------------------------------------------ dropout masks

@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])])
def test_seeded_dropout_rows_do_not_depend_on_the_split(device: str):
    layer = SeededDropout(0.25).train()
    source = DropoutSource(seed=3, batch_size=12)
    assert attach_dropout_source(nn.Sequential(layer), source) == 1
    x = torch.ones(12, 5, 7, device=device)
    source.select(step=4, start=0, count=12)
    whole = layer(x)
    for start, count in ((0, 3), (3, 3), (6, 6), (9, 3)):  # any micro-batch of any process
        source.select(step=4, start=start, count=count)
        assert torch.equal(layer(x[start:start + count]), whole[start:start + count])
    kept = whole != 0
    assert torch.equal(whole[kept], torch.full((int(kept.sum()),), 1 / 0.75, device=device))  # E[out] = x
    assert abs(float(kept.float().mean()) - 0.75) < 0.06  # 420 units
    source.select(step=5, start=0, count=12)
    assert not torch.equal(layer(x), whole)  # a new step draws new masks
    layer.eval()
    assert torch.equal(layer(x), x)


def test_dropout_layers_draw_different_masks_and_fall_back_without_a_source():
    net = nn.Sequential(SeededDropout(0.5), SeededDropout(0.5)).train()
    source = DropoutSource(seed=0, batch_size=4)
    attach_dropout_source(net, source)
    x = torch.ones(4, 64)
    assert not torch.equal(net[0](x) != 0, net[1](x) != 0)
    attach_dropout_source(net, None)
    torch.manual_seed(0)
    a = net[0](x)
    torch.manual_seed(0)
    assert torch.equal(a, nn.functional.dropout(x, 0.5, True))  # plain nn.Dropout


# ------------------------------------------------------------------------------------------ DDP helpers

def test_batchnorm_becomes_syncbatchnorm_on_cuda_and_warns_on_cpu():
    def net() -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())

    two = Dist(rank=0, world_size=2)
    converted = sync_batchnorm(net(), torch.device("cuda"), two)
    assert isinstance(converted[1], nn.SyncBatchNorm)
    with pytest.warns(UserWarning, match=r"^BatchNorm statistics are per process on the CPU"):
        kept = sync_batchnorm(net(), torch.device("cpu"), two)
    assert type(kept[1]) is nn.BatchNorm2d
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sync_batchnorm(net(), torch.device("cpu"), Dist())  # one process: nothing to say
        sync_batchnorm(nn.Linear(2, 2), torch.device("cpu"), two)  # no BatchNorm: nothing to say


# ------------------------------------------------------------------------------------------ resume on another device

def test_restore_reads_the_state_onto_the_cpu_whatever_device_trains(tmp_path: Path):
    """The generator states must reach torch.set_rng_state as CPU byte tensors, even when the network trains
    elsewhere. This machine has no GPU: a trainer on the ``meta`` device stands in for one (loading the state
    with map_location=device handed set_rng_state a non-CPU tensor: 'RNG state must be a torch.ByteTensor')."""
    run = tmp_path / "run"
    assert main(tiny_args(run, 2)) == 0
    _, state = checkpoint.latest_state(run)
    cfg = build_config(None, run / "config.toml", {"optim.steps": 4})
    trainer = Trainer(setup_run(cfg, torch.device("meta"), 1), run, Dist())
    torch.manual_seed(12345)
    trainer.restore()
    assert trainer.step == 2
    assert torch.equal(torch.get_rng_state(), state["rng_cpu"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resume_on_cuda_continues_the_run(tmp_path: Path):
    cuda = ("runtime.device=cuda", "optim.lr_schedule=constant", "runtime.amp=off")
    assert main(tiny_args(tmp_path / "once", 4, *cuda)) == 0
    assert main(tiny_args(tmp_path / "twice", 2, *cuda)) == 0
    assert main(tiny_args(tmp_path / "twice", 4, *cuda) + ["--resume"]) == 0
    a, b = checkpoint.latest_state(tmp_path / "once")[1], checkpoint.latest_state(tmp_path / "twice")[1]
    assert b["step"] == 4
    for key, value in a["model"].items():  # CUDA kernels may sum in another order from run to run
        torch.testing.assert_close(b["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
