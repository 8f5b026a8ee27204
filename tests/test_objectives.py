"""Parameterisations, training losses and conditioning: closed forms, diffusers' velocity, seed 001's corrupt()."""

from __future__ import annotations

import math

import pytest
import torch
from oracle_models import single_thread  # noqa: F401 (module fixture)

from tinydiffusion import NoiseSchedule, UserError
from tinydiffusion.conditioning import NULL_CLASS, check_classes, drop_condition, null_condition, parse_context
from tinydiffusion.objectives import (CorruptLoss, DiffusionLoss, antithetic_timesteps, min_snr_weight,
                                     prediction_target, split_prediction, uniform_timesteps)
from tinydiffusion.rng import BatchRandom, SeededNoise, Stream

SCHEDULE = NoiseSchedule.linear(1000)


def batch_rng(n: int, step: int = 0) -> BatchRandom:
    return BatchRandom(SeededNoise(torch.arange(n)), 1234, step)


# ------------------------------------------------------------------------------------- parameterisations

@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_split_prediction_inverts_prediction_target(prediction):
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 2, 3, 3, generator=g, dtype=torch.float64), torch.randn(6, 2, 3, 3, generator=g,
                                                                                      dtype=torch.float64)
    ab = SCHEDULE.alpha_bar64[torch.tensor([0, 1, 100, 500, 900, 999])].view(-1, 1, 1, 1)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    target = prediction_target(x0, noise, ab, prediction)
    x0_hat, eps_hat = split_prediction(target, x_t, ab, prediction)
    torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(eps_hat, noise, rtol=0, atol=1e-9)
    # a sampler passes ᾱ as a Python float: same result
    x0_1, eps_1 = split_prediction(target[3:4], x_t[3:4], float(ab[3]), prediction)
    torch.testing.assert_close(x0_1, x0[3:4], rtol=0, atol=1e-9)
    torch.testing.assert_close(eps_1, noise[3:4], rtol=0, atol=1e-9)


def test_float_alpha_bar_keeps_its_digits_near_t0_in_float32():
    # ᾱ_0 = 0.9999: rounding ᾱ to float32 before 1 − ᾱ would cost ~3e-4 relative in √(1 − ᾱ).
    ab = float(SCHEDULE.alpha_bar64[0])
    x_t, x0 = torch.tensor([0.3]), torch.tensor([0.2])
    _, eps = split_prediction(x0, x_t, ab, "x0")
    expect = (0.3 - math.sqrt(ab) * 0.2) / math.sqrt(1 - ab)
    assert float(eps) == pytest.approx(expect, rel=1e-5)


def test_v_target_equals_diffusers_get_velocity():
    from diffusers import DDPMScheduler
    theirs = DDPMScheduler(1000, trained_betas=SCHEDULE.betas64.numpy())
    theirs.alphas_cumprod = SCHEDULE.alpha_bar64.clone()
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(5, 1, 4, 4, generator=g, dtype=torch.float64), torch.randn(5, 1, 4, 4, generator=g,
                                                                                      dtype=torch.float64)
    t = torch.tensor([0, 10, 250, 700, 999])
    ab = SCHEDULE.alpha_bar64[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(prediction_target(x0, noise, ab, "v"), theirs.get_velocity(x0, noise, t),
                               rtol=0, atol=1e-12)


def test_unknown_prediction_is_a_user_error():
    x = torch.zeros(1, 2)
    message = "unknown prediction type 'score'; choose one of epsilon, x0, v"
    with pytest.raises(UserError) as a:
        split_prediction(x, x, 0.5, "score")
    with pytest.raises(UserError) as b:
        prediction_target(x, x, torch.tensor(0.5), "score")
    with pytest.raises(UserError) as c:
        DiffusionLoss(SCHEDULE, prediction="score")
    assert str(a.value) == str(b.value) == str(c.value) == message
    with pytest.raises(UserError, match=r"^cond_drop_prob must lie in \[0, 1\], got 1.5$"):
        DiffusionLoss(SCHEDULE, cond_drop_prob=1.5)


# ------------------------------------------------------------------------------------- Min-SNR

@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_min_snr_weights_are_min_snr_gamma_in_x0_space(prediction):
    # Hang et al. 2023: weight the x_0-space error by min(SNR, γ). Any prediction error maps to an x_0 error
    # (ε: Δx0 = −Δε/√SNR; v: Δx0 = −√(1−ᾱ) Δv), so weight × (own-space error) must equal min(SNR, γ) × x_0 error.
    gamma = 5.0
    t = torch.tensor([0, 50, 200, 400, 700, 999])
    ab = SCHEDULE.alpha_bar64[t].view(-1, 1)
    snr = (ab / (1 - ab)).flatten()
    g = torch.Generator().manual_seed(2)
    x_t, out, delta = (torch.randn(6, 8, generator=g, dtype=torch.float64) for _ in range(3))
    x0_a, _ = split_prediction(out, x_t, ab, prediction)
    x0_b, _ = split_prediction(out + delta, x_t, ab, prediction)
    x0_err = (x0_a - x0_b).square().mean(1)
    own_err = delta.square().mean(1)
    torch.testing.assert_close(min_snr_weight(snr, gamma, prediction) * own_err, snr.clamp(max=gamma) * x0_err,
                               rtol=1e-9, atol=0)


# ------------------------------------------------------------------------------------- timesteps

def test_uniform_timesteps_cover_the_range():
    t = uniform_timesteps(batch_rng(20_000), 100)
    assert t.dtype == torch.int64 and int(t.min()) == 0 and int(t.max()) == 99
    assert abs(float(t.double().mean()) - 49.5) < 5 * math.sqrt((100**2 - 1) / 12 / 20_000)


def test_antithetic_timesteps_pair_t_with_T_minus_1_minus_t():
    t = antithetic_timesteps(batch_rng(1000), 100)
    assert torch.equal(t[1::2], 99 - t[0::2])
    assert len(set(t[0::2].tolist())) > 90  # the first of each pair is still uniform
    with pytest.raises(UserError, match="^antithetic timestep sampling needs an even batch size per process$"):
        antithetic_timesteps(batch_rng(7), 100)


# ------------------------------------------------------------------------------------- DiffusionLoss

class Oracle:
    """Knows the clean batch: predicts the exact target for every sample, plus ``offset`` on chosen samples."""

    def __init__(self, schedule: NoiseSchedule, x0: torch.Tensor, prediction: str, offset: torch.Tensor):
        self.schedule, self.x0, self.prediction, self.offset = schedule, x0, prediction, offset
        self.seen: dict[str, torch.Tensor] = {}

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        self.seen = {"t": t, "cond": cond}
        ab = self.schedule.alpha_bar64[t].view(-1, 1, 1, 1)
        noise = (x_t.double() - ab.sqrt() * self.x0.double()) / (1 - ab).sqrt()
        target = prediction_target(self.x0.double(), noise, ab, self.prediction)
        return (target + self.offset.view(-1, 1, 1, 1)).float()


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_diffusion_loss_of_a_perfect_model_is_zero_per_sample(prediction):
    x0 = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(3)) * 2 - 1
    offset = torch.tensor([0, 1, 0, 0, 2, 0, 0, 0], dtype=torch.float64)
    model = Oracle(SCHEDULE, x0, prediction, offset)
    loss = DiffusionLoss(SCHEDULE, prediction=prediction)(model, x0, None, batch_rng(8))
    assert loss.shape == (8,)
    torch.testing.assert_close(loss, offset.float() ** 2, rtol=0, atol=1e-6)
    assert float(loss[offset == 0].max()) < 1e-10


def test_diffusion_loss_applies_min_snr_weights_at_the_drawn_timesteps():
    x0 = torch.zeros(16, 1, 2, 2)
    model = Oracle(SCHEDULE, x0, "epsilon", torch.ones(16, dtype=torch.float64))
    loss = DiffusionLoss(SCHEDULE, min_snr_gamma=5.0, antithetic=True)(model, x0, None, batch_rng(16))
    t = model.seen["t"]
    assert torch.equal(t[1::2], 999 - t[0::2])
    snr = SCHEDULE.snr[t]
    torch.testing.assert_close(loss, snr.clamp(max=5.0) / snr, rtol=1e-4, atol=1e-5)


def test_diffusion_loss_draws_are_reproducible_and_per_sample():
    x0 = torch.rand(8, 1, 4, 4) * 2 - 1
    model = Oracle(SCHEDULE, x0, "epsilon", torch.ones(8, dtype=torch.float64))
    DiffusionLoss(SCHEDULE)(model, x0, None, batch_rng(8, step=3))
    t_all = model.seen["t"]
    DiffusionLoss(SCHEDULE)(Oracle(SCHEDULE, x0[4:], "epsilon", torch.ones(4, dtype=torch.float64)), x0[4:], None,
                            BatchRandom(SeededNoise(torch.arange(4, 8)), 1234, 3))
    assert torch.equal(t_all, uniform_timesteps(batch_rng(8, step=3), 1000))


@pytest.mark.parametrize("kind", ["class", "context"])
def test_condition_dropout_replaces_about_p_with_the_null_condition(kind):
    n, p = 4000, 0.3
    if kind == "class":
        cond = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(4))
    else:
        cond = torch.rand(n, 5, generator=torch.Generator().manual_seed(4)) + 0.1
    x0 = torch.zeros(n, 1, 1, 1)
    model = Oracle(SCHEDULE, x0, "epsilon", torch.zeros(n, dtype=torch.float64))
    DiffusionLoss(SCHEDULE, cond_drop_prob=p)(model, x0, cond, batch_rng(n))
    seen = model.seen["cond"]
    dropped = (seen == NULL_CLASS) if kind == "class" else (seen == 0).all(1)
    assert abs(float(dropped.double().mean()) - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert torch.equal(seen[~dropped], cond[~dropped])  # the others pass unchanged
    for prob, expect in ((0.0, False), (1.0, True)):
        DiffusionLoss(SCHEDULE, cond_drop_prob=prob)(model, x0, cond, batch_rng(n))
        got = (model.seen["cond"] == NULL_CLASS) if kind == "class" else (model.seen["cond"] == 0).all(1)
        assert bool(got.all()) == expect and bool(got.any()) == expect


# ------------------------------------------------------------------------------------- seed 001's corrupt()

def seed_001_corrupt(x, amount, noise):
    """Seed 001, as written, with its torch.rand_like noise passed in: x·(1−amount) + noise·amount in [0, 1]."""
    amount = amount.view(-1, 1, 1, 1)
    return x * (1 - amount) + noise * amount


def test_corrupt_loss_is_seed_001_under_the_affine_map():
    def seed_net(x01):  # a deterministic stand-in for the seed's BasicUNet, on [0, 1] images
        return torch.sigmoid(3 * x01 - 1)

    seen = {}

    def our_net(y, t, cond=None):  # the same network on [−1, 1] images: y ↦ 2·f((y + 1)/2) − 1
        seen["y"], seen["t"] = y, t
        return 2 * seed_net((y + 1) / 2) - 1

    x01 = torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(5))
    rng = batch_rng(6)
    loss = CorruptLoss(num_timesteps=1000)(our_net, x01 * 2 - 1, None, rng)
    amount, noise01 = rng.rand((), Stream.AMOUNT), rng.rand((1, 5, 5), Stream.NOISE)  # the numbers the loss drew
    noisy = seed_001_corrupt(x01, amount, noise01)
    torch.testing.assert_close(seen["y"], noisy * 2 - 1, rtol=0, atol=1e-6)
    torch.testing.assert_close(seen["t"], amount * 999, rtol=0, atol=1e-4)
    seed_loss = (seed_net(noisy) - x01).square().flatten(1).mean(1)  # the seed's MSE, per sample
    torch.testing.assert_close(loss, 4 * seed_loss, rtol=1e-5, atol=1e-7)
    assert float(amount.min()) >= 0 and float(amount.max()) <= 1


def test_corrupt_loss_in_the_seeds_own_range_is_the_seed():
    seen = {}

    def seed_net(x01, t, cond=None):  # hf-mnist-basic trains here: [0, 1] images, U(0, 1) noise
        seen["x"] = x01
        return torch.sigmoid(3 * x01 - 1)

    x01 = torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(5))
    rng = batch_rng(6)
    loss = CorruptLoss(num_timesteps=1000, data_range=(0.0, 1.0))(seed_net, x01, None, rng)
    noisy = seed_001_corrupt(x01, rng.rand((), Stream.AMOUNT), rng.rand((1, 5, 5), Stream.NOISE))
    torch.testing.assert_close(seen["x"], noisy, rtol=0, atol=1e-6)
    torch.testing.assert_close(loss, (seed_net(noisy, None) - x01).square().flatten(1).mean(1), rtol=1e-6, atol=0)


# ------------------------------------------------------------------------------------- conditioning helpers

def test_null_and_drop_condition():
    labels = torch.tensor([3, 1, 4])
    ctx = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    assert null_condition(labels).tolist() == [-1, -1, -1]
    assert torch.equal(null_condition(ctx), torch.zeros(3, 2))
    keep = torch.tensor([True, False, True])
    assert drop_condition(labels, keep).tolist() == [3, -1, 4]
    assert drop_condition(ctx, keep).tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]


def test_parse_context_and_check_classes():
    assert parse_context("1, 0,0.6,0,0", 5).tolist() == pytest.approx([1, 0, 0.6, 0, 0])
    with pytest.raises(UserError) as a:
        parse_context("1,x", 2)
    assert str(a.value) == "--context must be comma-separated numbers like '1,0,0.6,0,0', got '1,x'"
    with pytest.raises(UserError) as b:
        parse_context("1,0", 5)
    assert str(b.value) == "--context has 2 values but this model's context vectors have 5"
    check_classes([0, 9], 10)
    with pytest.raises(UserError) as c:
        check_classes([2, 10], 10)
    assert str(c.value) == "class id 10 is out of range: this model knows classes 0..9"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_diffusion_loss_with_the_schedule_on_cpu_and_the_batch_on_cuda():
    # the table lookups move the timesteps to the table's device (a CPU table indexed by CUDA ids raises)
    x0 = torch.rand(8, 1, 4, 4, device="cuda") * 2 - 1
    model = Oracle(SCHEDULE, x0.cpu(), "epsilon", torch.zeros(8, dtype=torch.float64))
    loss = DiffusionLoss(SCHEDULE, min_snr_gamma=5.0)(lambda x, t: model(x.cpu(), t.cpu()).cuda(), x0, None,
                                                      batch_rng(8))
    assert loss.device.type == "cuda" and float(loss.max()) < 1e-8
