"""Noise schedules and the forward process: diffusers' tables, closed forms, seed conventions, errors."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from oracle_models import single_thread  # noqa: F401 (module fixture)

from tinydiffusion import NoiseSchedule, ScheduleWarning, UserError, sample
from tinydiffusion.schedule import beta_schedule, rescale_zero_terminal_snr

diffusers = pytest.importorskip("diffusers")
from diffusers import DDPMScheduler  # noqa: E402


def quiet(config: dict) -> NoiseSchedule:
    return NoiseSchedule.from_config(config, warn=False)


# ------------------------------------------------------------------------------------- against diffusers

@pytest.mark.parametrize("kind, diffusers_name, limits", [
    ("linear", "linear", dict(beta_start=1e-4, beta_end=0.02)),
    ("cosine", "squaredcos_cap_v2", {}),
    ("sigmoid", "sigmoid", dict(beta_start=1e-4, beta_end=0.02)),
    ("scaled_linear", "scaled_linear", dict(beta_start=0.00085, beta_end=0.012)),
])
@pytest.mark.parametrize("T", [100, 150, 1000])
def test_schedules_equal_diffusers(kind, diffusers_name, limits, T):
    ours = quiet({"kind": kind, "timesteps": T, **limits})
    theirs = DDPMScheduler(num_train_timesteps=T, beta_schedule=diffusers_name, **limits)
    # diffusers builds in float32 (its cumprod drifts by a few float32 ulps); ours is float64 rounded once.
    torch.testing.assert_close(ours.betas, theirs.betas, atol=1e-8, rtol=0)
    torch.testing.assert_close(ours.alpha_bar, theirs.alphas_cumprod, atol=1e-6, rtol=0)


def test_custom_betas_equal_diffusers_trained_betas():
    g = torch.Generator().manual_seed(0)
    betas = (torch.rand(300, generator=g, dtype=torch.float64) * 0.05 + 1e-4).tolist()
    ours = quiet({"kind": "custom", "timesteps": 300, "betas": betas})
    theirs = DDPMScheduler(num_train_timesteps=300, trained_betas=betas)
    torch.testing.assert_close(ours.betas, theirs.betas, atol=0, rtol=0)
    torch.testing.assert_close(ours.alpha_bar, theirs.alphas_cumprod, atol=1e-6, rtol=0)
    assert torch.equal(NoiseSchedule.from_betas(betas).betas64, torch.tensor(betas, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["linear", "cosine", "scaled_linear"])
def test_zero_terminal_snr_equals_diffusers(kind):
    names = {"linear": "linear", "cosine": "squaredcos_cap_v2", "scaled_linear": "scaled_linear"}
    limits = dict(beta_start=0.00085, beta_end=0.012) if kind == "scaled_linear" else {}
    ours = quiet({"kind": kind, "timesteps": 1000, "zero_terminal_snr": True, **limits})
    theirs = DDPMScheduler(num_train_timesteps=1000, beta_schedule=names[kind], rescale_betas_zero_snr=True, **limits)
    # diffusers' rescaling in float32 loses up to 7e-6 on the last betas; on float64 input it agrees to rounding.
    torch.testing.assert_close(ours.betas[:-1], theirs.betas[:-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.alpha_bar, theirs.alphas_cumprod, atol=1e-6, rtol=0)
    from diffusers.schedulers.scheduling_ddpm import rescale_zero_terminal_snr as theirs_rescale
    plain = beta_schedule(kind, 1000, **limits)
    rescaled = rescale_zero_terminal_snr(plain)
    torch.testing.assert_close(rescaled, theirs_rescale(plain.clone()), atol=1e-12, rtol=0)
    # Algorithm 1 makes the SNR exactly 0 at the end: β_{T-1} = 1. ᾱ_{T-1} is held just above 0 so that x̂_0 stays
    # finite: at 2⁻²⁴ (diffusers' DPM/Euler value) unless that would exceed ᾱ_{T-2} — linear T=1000 rescales
    # ᾱ_{T-2} to 4.2e-9 — then at ᾱ_{T-2}/4, so ᾱ stays strictly decreasing (tested for every kind below) ...
    assert float(rescaled[-1]) == 1.0
    lifted = min(2.0**-24, float(ours.alpha_bar64[-2]) / 4)
    assert float(ours.alpha_bar64[-1]) == lifted
    # ... and β_{T-1} follows the lifted ᾱ (diffusers keeps β = 1 beside its lifted ᾱ, so its q_step and posterior
    # at T − 1 disagree with its own ᾱ)
    assert float(ours.betas64[-1]) == 1 - lifted / float(ours.alpha_bar64[-2])
    # ... while √ᾱ_0 is unchanged (Lin et al. 2024, Algorithm 1)
    assert math.isclose(float(ours.alpha_bar64[0]), 1 - float(plain[0]), rel_tol=1e-12)


# ------------------------------------------------------------------------------------- closed forms

ALL_KINDS = [
    {"kind": "linear", "timesteps": 1000},
    {"kind": "cosine", "timesteps": 1000},
    {"kind": "sigmoid", "timesteps": 500},
    {"kind": "scaled_linear", "timesteps": 1000},
    {"kind": "linear", "timesteps": 150},
    {"kind": "linear", "timesteps": 1000, "zero_terminal_snr": True},
    {"kind": "scaled_linear", "timesteps": 1000, "zero_terminal_snr": True},
    {"kind": "cosine", "timesteps": 1000, "zero_terminal_snr": True},
]


@pytest.mark.parametrize("config", ALL_KINDS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_alpha_bar_strictly_decreasing_and_float64_stored_float32(config):
    s = quiet(config)
    assert s.alpha_bar64.dtype == torch.float64 and s.betas64.dtype == torch.float64
    for name in ("betas", "alphas", "alpha_bar", "alpha_bar_prev", "sqrt_alpha_bar", "sqrt_one_minus_alpha_bar",
                 "snr", "sigmas"):
        table = getattr(s, name)
        assert table.dtype == torch.float32 and table.shape == (s.num_timesteps,), name
    assert s.sigmas64.dtype == torch.float64 and s.sigmas64.device.type == "cpu"
    assert bool((s.alpha_bar64[1:] < s.alpha_bar64[:-1]).all())
    assert 0 < float(s.alpha_bar64[-1]) and float(s.alpha_bar64[0]) < 1
    assert torch.equal(s.alpha_bar, s.alpha_bar64.float())  # rounded once, from float64


@pytest.mark.parametrize("config", ALL_KINDS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_derived_tables_equal_their_closed_forms(config):
    """Every table follows from β alone — zero terminal SNR included, whose lifted ᾱ_{T−1} sets β_{T−1}."""
    s = quiet(config)
    betas = s.betas64.tolist()
    # ᾱ_t = Π_{s≤t} (1 − β_s), written as a plain loop in float64
    ab, prod = [], 1.0
    for b in betas:
        prod *= 1 - b
        ab.append(prod)
    expect = {
        "alphas": [1 - b for b in betas],
        "alpha_bar": ab,
        "alpha_bar_prev": [1.0] + ab[:-1],
        "sqrt_alpha_bar": [math.sqrt(a) for a in ab],
        "sqrt_one_minus_alpha_bar": [math.sqrt(1 - a) for a in ab],
        "snr": [a / (1 - a) for a in ab],
        "sigmas": [math.sqrt((1 - a) / a) for a in ab],
    }
    torch.testing.assert_close(s.alpha_bar64, torch.tensor(ab, dtype=torch.float64), rtol=1e-12, atol=0)
    torch.testing.assert_close(s.sigmas64, torch.tensor(expect["sigmas"], dtype=torch.float64), rtol=1e-12, atol=0)
    for name, values in expect.items():
        torch.testing.assert_close(getattr(s, name), torch.tensor(values, dtype=torch.float32), rtol=2e-6, atol=1e-12,
                                   msg=name)
    assert s.alpha_bar_at(-1) == 1.0 and s.alpha_bar_at(3) == ab[3]


def test_cosine_is_nichol_dhariwal_eq_17():
    T, s_ = 1000, 0.008
    f = [math.cos((t / T + s_) / (1 + s_) * math.pi / 2) ** 2 for t in range(T + 1)]
    expect = [min(1 - f[t + 1] / f[t], 0.999) for t in range(T)]
    torch.testing.assert_close(NoiseSchedule.cosine(T).betas64, torch.tensor(expect, dtype=torch.float64),
                               rtol=1e-12, atol=0)


def test_t_from_sigma_inverts_the_sigma_table():
    s = NoiseSchedule.linear(1000)
    t = s.t_from_sigma(((1 - s.alpha_bar64) / s.alpha_bar64).sqrt())
    torch.testing.assert_close(t, torch.arange(1000, dtype=torch.float64), atol=1e-9, rtol=0)
    # and sigma_at is its inverse at fractional timesteps too, in float64
    frac = torch.tensor([0.0, 0.25, 10.5, 998.75, 999.0], dtype=torch.float64)
    torch.testing.assert_close(s.t_from_sigma(s.sigma_at(frac)), frac, atol=1e-9, rtol=0)
    assert s.sigma_at(frac).dtype == torch.float64
    # halfway in log σ between two steps is t + 1/2; beyond the trained range it clamps to the ends
    log_mid = 0.5 * (s.sigmas[10].double().log() + s.sigmas[11].double().log())
    mid = s.t_from_sigma(torch.stack([log_mid.exp(), torch.tensor(1e-9, dtype=torch.float64),
                                      torch.tensor(1e9, dtype=torch.float64)]))
    torch.testing.assert_close(mid, torch.tensor([10.5, 0.0, 999.0], dtype=torch.float64), atol=2e-6, rtol=0)


def test_a_single_timestep_schedule_has_finite_timesteps():
    s = quiet({"kind": "linear", "timesteps": 1, "beta_start": 0.5, "beta_end": 0.5})
    t = s.t_from_sigma(torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64))
    assert torch.equal(t, torch.zeros(3, dtype=torch.float64))  # was NaN: the interpolation divided 0 by 0
    out = sample(lambda x, t, cond=None: 0.5 * x, s, torch.ones(2, 3), sampler="euler", steps=1)
    assert bool(out.isfinite().all())


@pytest.mark.parametrize("config", ALL_KINDS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_q_posterior_is_ddpm_eq_7_from_float64_alpha_bar(config):
    s = quiet(config)
    T = s.num_timesteps
    t = torch.tensor([0, 1, T // 2, T - 2, T - 1])
    x0, x_t = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    mean, var = s.q_posterior(x0, x_t, t)
    for i, ti in enumerate(t.tolist()):
        ab, ab_prev = s.alpha_bar_at(ti), s.alpha_bar_at(ti - 1)
        b = 1 - ab / ab_prev  # = β_t: consecutive steps
        assert b == pytest.approx(float(s.betas64[ti]), rel=1e-9, abs=1e-15)
        c1, c2 = math.sqrt(ab_prev) * b / (1 - ab), math.sqrt(1 - b) * (1 - ab_prev) / (1 - ab)
        torch.testing.assert_close(mean[i], c1 * x0[i] + c2 * x_t[i], rtol=1e-12, atol=1e-12)
        assert float(var[i]) == pytest.approx((1 - ab_prev) / (1 - ab) * b, rel=1e-12, abs=0)
    assert float(var[0]) == 0.0  # t = 0: the posterior of x_{-1} = x_0 is a point mass at x_0
    torch.testing.assert_close(mean[0], x0[0], rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------- warnings

@pytest.mark.parametrize("config, warns", [
    ({"kind": "linear", "timesteps": 150, "beta_start": 1e-4, "beta_end": 0.02}, True),  # seed 000
    ({"kind": "linear", "timesteps": 100, "beta_start": 1e-5, "beta_end": 5e-3}, True),  # seed 004
    ({"kind": "linear", "timesteps": 1000}, False),
    ({"kind": "cosine", "timesteps": 1000}, False),
    ({"kind": "linear", "timesteps": 500, "convention": "one-based"}, False),  # seed 002: ᾱ ≈ 0.0066
])
def test_schedule_warning_when_alpha_bar_T_is_far_from_zero(config, warns):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = NoiseSchedule.from_config(config)
    found = [w for w in caught if issubclass(w.category, ScheduleWarning)]
    assert bool(found) == warns == (float(s.alpha_bar64[-1]) > 0.01)
    if warns:
        assert f"alpha_bar at the last step is {float(s.alpha_bar64[-1]):.3g}" in str(found[0].message)
        assert found[0].filename == __file__  # points at the caller, not at schedule.py
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NoiseSchedule.from_config(config, warn=False)


# ------------------------------------------------------------------------------------- seed conventions

def test_one_based_convention_is_seed_002_schedule():
    T, beta1, beta2 = 500, 1e-4, 0.02
    s = quiet({"kind": "linear", "timesteps": T, "convention": "one-based"})
    # seed 002: b_t = (beta2 - beta1) * linspace(0, 1, T + 1) + beta1, steps i = 1..T
    b64 = (beta2 - beta1) * torch.linspace(0, 1, T + 1, dtype=torch.float64) + beta1
    torch.testing.assert_close(s.betas64, b64[1:], rtol=1e-15, atol=0)  # the same numbers, up to float64 rounding
    b32 = (beta2 - beta1) * torch.linspace(0, 1, T + 1) + beta1  # the seed's own float32 arithmetic
    torch.testing.assert_close(s.betas, b32[1:], rtol=0, atol=4e-9)
    # the seed's ab_t = cumprod over all T + 1 betas, with ab_t[0] overwritten by 1: ours drops the factor 1 − b_0
    ab_t = torch.cumprod(1 - b64, 0)
    torch.testing.assert_close(s.alpha_bar64 * (1 - b64[0]), ab_t[1:], rtol=1e-12, atol=0)


def test_seed_000_forward_tables():
    T = 150
    B = torch.linspace(0.0001, 0.02, T, dtype=torch.float64)  # seed 000: B = torch.linspace(start, end, T)
    a_bar = torch.cumprod(1 - B, 0)
    s = NoiseSchedule.from_config({"kind": "linear", "timesteps": T}, warn=False)
    torch.testing.assert_close(s.sqrt_alpha_bar, a_bar.sqrt().float(), rtol=1e-7, atol=0)
    torch.testing.assert_close(s.sqrt_one_minus_alpha_bar, (1 - a_bar).sqrt().float(), rtol=1e-7, atol=0)


# ------------------------------------------------------------------------------------- forward process

def test_q_sample_is_the_reparameterised_closed_form():
    s = NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(6, 3, 4, 4, generator=g), torch.randn(6, 3, 4, 4, generator=g)
    t = torch.tensor([0, 1, 10, 500, 998, 999])
    ab = s.alpha_bar64[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(s.q_sample(x0, t, noise), (ab.sqrt() * x0 + (1 - ab).sqrt() * noise).float(),
                               rtol=0, atol=1e-6)
    # a scalar t means the same timestep for the whole batch
    torch.testing.assert_close(s.q_sample(x0, 10, noise), s.q_sample(x0, torch.full((6,), 10), noise))
    with pytest.raises(TypeError, match="must be integers"):
        s.q_sample(x0, torch.full((6,), 1.5), noise)


def _moments_ok(samples: torch.Tensor, mean: torch.Tensor, var: float) -> None:
    n = samples.shape[0]
    # 5 standard errors: mean error has sd √(var/n); variance error has sd ≈ var·√(2/n)
    assert (samples.mean(0) - mean).abs().max() < 5 * math.sqrt(var / n)
    assert (samples.var(0) - var).abs().max() < 5 * var * math.sqrt(2 / n)


def test_q_sample_and_the_step_by_step_chain_have_the_closed_form_moments():
    # seed 000 shows both: x_t from x_0 in one jump, and t + 1 applications of q(x_t | x_{t-1}).
    s = NoiseSchedule.from_config({"kind": "linear", "timesteps": 150}, warn=False)
    n, g = 20_000, torch.Generator().manual_seed(0)
    x0 = torch.tensor([0.8, -0.5, 0.0], dtype=torch.float64).expand(n, 3)
    x, checked = x0, []
    for t in range(150):
        x = s.q_step(x, t, torch.randn(n, 3, generator=g, dtype=torch.float64))
        if t in (0, 10, 75, 149):
            ab = float(s.alpha_bar64[t])
            _moments_ok(x, math.sqrt(ab) * x0[0], 1 - ab)
            jump = s.q_sample(x0, torch.full((n,), t), torch.randn(n, 3, generator=g, dtype=torch.float64))
            _moments_ok(jump, math.sqrt(ab) * x0[0], 1 - ab)
            checked.append(t)
    assert checked == [0, 10, 75, 149]


def test_q_step_is_ddpm_eq_2():
    s = NoiseSchedule.linear(1000)
    x, z = torch.randn(4, 2), torch.randn(4, 2)
    b = float(s.betas64[42])
    torch.testing.assert_close(s.q_step(x, 42, z), math.sqrt(1 - b) * x + math.sqrt(b) * z, rtol=0, atol=1e-6)


def test_q_posterior_matches_closed_form_and_diffusers(monkeypatch):
    s = NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(2)
    x0, x_t = torch.randn(5, 1, 4, 4, generator=g), torch.randn(5, 1, 4, 4, generator=g)
    t = torch.tensor([0, 1, 37, 600, 999])
    mean, var = s.q_posterior(x0, x_t, t)
    ab, ab_prev = s.alpha_bar64[t], torch.cat([torch.ones(1, dtype=torch.float64), s.alpha_bar64])[t]
    beta = s.betas64[t]
    c1 = (ab_prev.sqrt() * beta / (1 - ab)).view(-1, 1, 1, 1)
    c2 = ((1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)).view(-1, 1, 1, 1)
    torch.testing.assert_close(mean, (c1 * x0 + c2 * x_t).float(), rtol=0, atol=1e-6)
    torch.testing.assert_close(var.flatten(), ((1 - ab_prev) / (1 - ab) * beta).float(), rtol=1e-6, atol=0)
    # diffusers: a DDPM step with an x_0-predicting "model" and no noise is exactly the posterior mean
    import diffusers.schedulers.scheduling_ddpm as ddpm_module
    monkeypatch.setattr(ddpm_module, "randn_tensor", lambda shape, **kw: torch.zeros(shape))
    theirs = DDPMScheduler(1000, trained_betas=s.betas64.numpy(), prediction_type="sample", clip_sample=False)
    theirs.alphas_cumprod = s.alpha_bar64.clone()
    for i, ti in enumerate(t.tolist()):
        out = theirs.step(x0[i:i + 1].double(), ti, x_t[i:i + 1].double()).prev_sample
        torch.testing.assert_close(mean[i:i + 1].double(), out, rtol=0, atol=1e-6)
        expect_var = max(float(var[i]), 1e-20)  # diffusers clamps β̃ at 1e-20 before its log-variants
        assert float(theirs._get_variance(ti)) == pytest.approx(expect_var, rel=1e-6)


def test_schedule_to_device_keeps_values_and_leaves_the_original():
    s = NoiseSchedule.linear(100, 1e-4, 0.2)
    t = s.to("cpu")
    assert t is not s and torch.equal(t.alpha_bar, s.alpha_bar) and t.config == s.config
    assert len(s) == s.num_timesteps == 100
    assert repr(s) == "NoiseSchedule(kind=linear, timesteps=100, beta_start=0.0001, beta_end=0.2)"
    assert NoiseSchedule.from_config(s.config).config == s.config


# ------------------------------------------------------------------------------------- user errors

@pytest.mark.parametrize("config, message", [
    ({"kind": "quadratic", "timesteps": 10},
     "unknown beta schedule 'quadratic'; choose one of linear, scaled_linear, cosine, sigmoid, custom"),
    ({"kind": "custom", "timesteps": 4, "betas": [0.1, 0.2, 0.3]}, "a custom schedule needs a list of 4 betas, got 3"),
    ({"kind": "custom", "timesteps": 4}, "a custom schedule needs a list of 4 betas, got none"),
    ({"kind": "custom", "timesteps": 2, "betas": [0.0, 0.5]},
     "every beta must lie in (0, 1]; the custom schedule gives 0..0.5"),
    ({"kind": "custom", "timesteps": 2, "betas": [0.5, 1.5]},
     "every beta must lie in (0, 1]; the custom schedule gives 0.5..1.5"),
    ({"kind": "linear", "timesteps": 10, "beta_start": -0.1, "beta_end": 0.02},
     "every beta must lie in (0, 1]; the linear schedule gives -0.1..0.02"),
    ({"kind": "linear", "timesteps": 0}, "the schedule needs at least 1 timestep, got T=0"),
    ({"kind": "linear", "timesteps": 10, "convention": "1-based"},
     "unknown timestep convention '1-based'; use 'zero-based' or 'one-based'"),
    ({"kind": "linear", "timesteps": 10, "beta_max": 0.2},
     "unknown schedule setting(s) beta_max; known: beta_end, beta_start, betas, convention, kind, "
     "timesteps, zero_terminal_snr"),
])
def test_bad_schedules_raise_one_clear_user_error(config, message):
    with pytest.raises(UserError) as info:
        NoiseSchedule.from_config(config, warn=False)
    assert str(info.value) == message


@pytest.mark.parametrize("betas, message", [
    ([], "betas must be a non-empty 1-D sequence"),
    ([[0.1, 0.2]], "betas must be a non-empty 1-D sequence"),
    ([0.1, -0.2], "every beta must lie in (0, 1]"),
    ([0.1, float("nan")], "every beta must lie in (0, 1]"),
])
def test_bad_explicit_betas_raise(betas, message):
    with pytest.raises(UserError) as info:
        NoiseSchedule(betas)
    assert str(info.value) == message
