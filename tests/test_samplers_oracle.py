"""DDPM, DDIM and DPM-Solver++(2M) against diffusers' schedulers, step by step and whole loops.

Both sides get the same model outputs (a deterministic ε-model, :class:`oracle_models.SmoothEps`) and
the same noise: our samplers take it through their ``noise(x, step)`` argument, diffusers' DDIM through
``variance_noise`` and its DDPM through a patched ``randn_tensor``.

Precision: in float64 (diffusers' ``alphas_cumprod`` replaced by our float64 ᾱ) the two agree to
rounding (1e-9), which shows that the arithmetic is the same. Our float32 path stays within 1e-6 of that
float64 result. diffusers' own float32 path drifts further (up to ~3e-5 after 1000 DDPM steps: it forms
β' = 1 − ᾱ_t/ᾱ_{t'} from float32 ᾱ), so the float32-vs-float32 comparison holds 1e-5 for ≤ 50 steps.

Where diffusers is wrong, the expected value is computed here in closed form and the test also asserts
that diffusers differs (so the test documents the bug):

* DDIM takes ``prev_t = t − T // n`` instead of the next entry of its own timestep list — wrong for
  ``linspace`` and for ``trailing`` when n does not divide T (diffusers 0.42.1, scheduling_ddim.py ~l. 445;
  issues #11347, #12633).
* DDPM ``variance_type="fixed_large_log"`` takes the square root of a log-variance: NaN (issue #14569).

And one deliberate difference: our DDPM adds no noise on the last step, to clean data (Ho et al. 2020,
Algorithm 2: z = 0 at t = 1), while diffusers adds noise whenever t > 0. For ``trailing`` spacings with
n < T the last timestep is > 0, and with σ² = β ("fixed_large") diffusers then adds √(1 − ᾱ_t)·z.
"""

from __future__ import annotations

import math

import pytest
import torch
from oracle_models import SmoothEps, single_thread  # noqa: F401 (module fixture)

from tinydiffusion import NoiseSchedule, SeededNoise
from tinydiffusion.samplers import spaced_timesteps
from tinydiffusion.samplers.ancestral import ddpm
from tinydiffusion.samplers.common import make_denoiser
from tinydiffusion.samplers.ddim import ddim
from tinydiffusion.samplers.dpm_solver import dpmpp_2m

diffusers = pytest.importorskip("diffusers")
import diffusers.schedulers.scheduling_ddpm as ddpm_module  # noqa: E402
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler  # noqa: E402

T = 1000
SCHEDULE = NoiseSchedule.linear(T)
MODEL = SmoothEps(SCHEDULE)
CLIP_MODEL = SmoothEps(SCHEDULE, c2=4.0)  # wide "data": x̂_0 leaves [−1, 1], so clipping matters
SHAPE = (1, 4, 4)
SEEDS = list(range(6))
VARIANCE_TYPE = {"beta_tilde": "fixed_small", "beta": "fixed_large"}

# (spacing, steps): all T steps, a divisor of T, a non-divisor, and one step
DDPM_CASES = [("leading", T), ("leading", 50), ("leading", 37), ("trailing", 50), ("trailing", 37),
              ("linspace", 50), ("linspace", 37), ("trailing", 1)]


def x_T(dtype: torch.dtype) -> torch.Tensor:
    return SeededNoise(SEEDS).randn(SHAPE, stream=1, dtype=torch.float64).to(dtype)


def step_noise(n: int, dtype: torch.dtype) -> list[torch.Tensor]:
    z = SeededNoise(SEEDS).randn((n, *SHAPE), stream=2, dtype=torch.float64).to(dtype)
    return [z[:, i] for i in range(n)]


def ours(sampler, x, ts, noise, model=MODEL, clip=False, **options):
    """Our sampler with explicit per-step noise; returns the sample and every SamplerStep."""
    steps = []
    out = sampler(make_denoiser(model, clip_x0=clip), SCHEDULE, x, ts, noise=lambda like, i: noise[i].to(like),
                  callback=steps.append, **options)
    return out, steps


def model_output(model, x, t):
    return model(x, torch.full((x.shape[0],), t, dtype=torch.long))


class InjectedNoise:
    """Stands in for diffusers' ``randn_tensor`` inside DDPMScheduler.step: returns ``self.z``."""

    def __init__(self):
        self.z: torch.Tensor | None = None
        self.calls = 0

    def __call__(self, shape, generator=None, device=None, dtype=None, **kwargs):
        self.calls += 1
        assert tuple(shape) == tuple(self.z.shape)
        return self.z.to(dtype)


def in_float64(scheduler):
    """Run a diffusers scheduler on our float64 ᾱ (its arithmetic, our table)."""
    scheduler.alphas_cumprod = SCHEDULE.alpha_bar64.clone()
    if hasattr(scheduler, "final_alpha_cumprod"):
        scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return scheduler


def diffusers_ddpm(variance_type, ts, *, clip=False, float64=True, own_betas=False):
    if own_betas:
        s = DDPMScheduler(T, beta_schedule="linear", variance_type=variance_type, clip_sample=clip)
    else:
        s = DDPMScheduler(T, trained_betas=SCHEDULE.betas64.numpy(), variance_type=variance_type, clip_sample=clip)
    s.set_timesteps(timesteps=ts)
    return in_float64(s) if float64 else s


def diffusers_ddim(spacing, n, *, clip=False, float64=True, own_betas=False):
    kw = dict(beta_schedule="linear") if own_betas else dict(trained_betas=SCHEDULE.betas64.numpy())
    s = DDIMScheduler(T, timestep_spacing=spacing, clip_sample=clip, **kw)
    s.set_timesteps(n)
    return in_float64(s) if float64 else s


def run_ddpm_diffusers(s, x, ts, noise, inject, model=MODEL):
    outs = []
    for i, t in enumerate(ts):
        inject.z = noise[i]
        res = s.step(model_output(model, x, t), t, x)
        outs.append(res)
        x = res.prev_sample
    return x, outs


def run_ddim_diffusers(s, x, ts, noise, eta, model=MODEL, **kw):
    outs = []
    for i, t in enumerate(ts):
        res = s.step(model_output(model, x, t), t, x, eta=eta, variance_noise=noise[i], **kw)
        outs.append(res)
        x = res.prev_sample
    return x, outs


def last_step_noise(variance: str, ts: list[int], noise: list[torch.Tensor]) -> torch.Tensor | float:
    """What diffusers' DDPM adds on the last step and we do not (see the module docstring)."""
    if ts[-1] == 0 or variance != "beta":
        return 0.0  # t = 0: diffusers adds none either; β̃ of the last step is 0 (diffusers: √1e-20·z)
    return math.sqrt(1 - SCHEDULE.alpha_bar_at(ts[-1])) * noise[-1]


# ------------------------------------------------------------------------------------- DDPM

@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
@pytest.mark.parametrize("spacing, n", DDPM_CASES)
def test_ddpm_equals_diffusers_steps_and_loop(monkeypatch, spacing, n, variance):
    inject = InjectedNoise()
    monkeypatch.setattr(ddpm_module, "randn_tensor", inject)
    ts = spaced_timesteps(T, n, spacing)
    noise = step_noise(n, torch.float64)
    x64, steps = ours(ddpm, x_T(torch.float64), ts, noise, variance=variance)
    theirs = diffusers_ddpm(VARIANCE_TYPE[variance], ts)
    assert theirs.timesteps.tolist() == ts

    # single steps: diffusers stepping from each of our x_t, with the same noise
    for i, st in enumerate(steps):
        inject.z = noise[i]
        res = theirs.step(model_output(MODEL, st.x_t, ts[i]), ts[i], st.x_t)
        expect = res.prev_sample - (last_step_noise(variance, ts, noise) if i == n - 1 else 0.0)
        torch.testing.assert_close(st.x_next, expect, rtol=0, atol=1e-9)
        torch.testing.assert_close(st.x0_hat, res.pred_original_sample, rtol=0, atol=1e-9)

    # whole loop from x_T
    end, _ = run_ddpm_diffusers(theirs, x_T(torch.float64), ts, noise, inject)
    torch.testing.assert_close(x64, end - last_step_noise(variance, ts, noise), rtol=0, atol=1e-9)
    assert float(x64.abs().max()) < 5  # the model keeps samples O(1), so 1e-9 is a real bound

    # our float32 path against the float64 result (one step from T − 1 straight to x̂_0 divides by
    # √ᾱ_{T−1} = 0.0064: float32 rounding is amplified 156× there, so that case allows 1e-4)
    x32, _ = ours(ddpm, x_T(torch.float32), ts, step_noise(n, torch.float32), variance=variance)
    assert x32.dtype == torch.float32
    torch.testing.assert_close(x32.double(), x64, rtol=0, atol=1e-5 if n > 1 else 1e-4)


def test_ddpm_last_step_noise_is_the_documented_difference(monkeypatch):
    # trailing, 10 steps: the last timestep is 99 > 0, so diffusers' fixed_large adds √(1 − ᾱ_99)·z there.
    inject = InjectedNoise()
    monkeypatch.setattr(ddpm_module, "randn_tensor", inject)
    ts = spaced_timesteps(T, 10, "trailing")
    assert ts[-1] == 99
    noise = step_noise(10, torch.float64)
    x, _ = ours(ddpm, x_T(torch.float64), ts, noise, variance="beta")
    end, _ = run_ddpm_diffusers(diffusers_ddpm("fixed_large", ts), x_T(torch.float64), ts, noise, inject)
    assert inject.calls == 10  # diffusers drew noise on every step, the last included
    gap = end - x
    torch.testing.assert_close(gap, math.sqrt(1 - SCHEDULE.alpha_bar_at(99)) * noise[-1], rtol=0, atol=1e-9)
    assert float(gap.abs().max()) > 0.1


@pytest.mark.parametrize("float32_steps", [("leading", 50), ("trailing", 37), ("linspace", 20)])
def test_ddpm_float32_equals_diffusers_float32(monkeypatch, float32_steps):
    spacing, n = float32_steps
    inject = InjectedNoise()
    monkeypatch.setattr(ddpm_module, "randn_tensor", inject)
    ts = spaced_timesteps(T, n, spacing)
    noise = step_noise(n, torch.float32)
    x, _ = ours(ddpm, x_T(torch.float32), ts, noise)
    end, _ = run_ddpm_diffusers(diffusers_ddpm("fixed_small", ts, float64=False), x_T(torch.float32), ts, noise,
                                inject)
    torch.testing.assert_close(x, end, rtol=0, atol=1e-5)
    # ... and with diffusers building the linear schedule itself (float32 linspace, float32 cumprod)
    end_own, _ = run_ddpm_diffusers(diffusers_ddpm("fixed_small", ts, float64=False, own_betas=True),
                                    x_T(torch.float32), ts, noise, inject)
    torch.testing.assert_close(x, end_own, rtol=0, atol=1e-5)


def test_ddpm_all_steps_float32_drift_is_diffusers(monkeypatch):
    # 1000 float32 steps: our result stays within 1e-6 of the float64 oracle, diffusers' float32 one drifts
    # further (β' from float32 ᾱ loses digits at small t) but stays within 5e-5.
    inject = InjectedNoise()
    monkeypatch.setattr(ddpm_module, "randn_tensor", inject)
    ts = spaced_timesteps(T, T, "leading")
    noise64 = step_noise(T, torch.float64)
    truth, _ = run_ddpm_diffusers(diffusers_ddpm("fixed_small", ts), x_T(torch.float64), ts, noise64, inject)
    ours32, _ = ours(ddpm, x_T(torch.float32), ts, step_noise(T, torch.float32))
    theirs32, _ = run_ddpm_diffusers(diffusers_ddpm("fixed_small", ts, float64=False), x_T(torch.float32), ts,
                                     step_noise(T, torch.float32), inject)
    ours_err = float((ours32.double() - truth).abs().max())
    theirs_err = float((theirs32.double() - truth).abs().max())
    assert ours_err < 1e-5 and theirs_err < 5e-5 and ours_err < theirs_err


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_ddpm_clip_x0_equals_diffusers_clip_sample(monkeypatch, variance):
    inject = InjectedNoise()
    monkeypatch.setattr(ddpm_module, "randn_tensor", inject)
    ts = spaced_timesteps(T, 40, "leading")
    noise = step_noise(40, torch.float64)
    x, _ = ours(ddpm, x_T(torch.float64), ts, noise, model=CLIP_MODEL, clip=True, variance=variance)
    theirs = diffusers_ddpm(VARIANCE_TYPE[variance], ts, clip=True)
    end, outs = run_ddpm_diffusers(theirs, x_T(torch.float64), ts, noise, inject, model=CLIP_MODEL)
    torch.testing.assert_close(x, end, rtol=0, atol=1e-9)
    clipped = sum(int((o.pred_original_sample.abs() == 1).any()) for o in outs)
    assert clipped > 10  # clipping was active on many steps
    unclipped, _ = ours(ddpm, x_T(torch.float64), ts, noise, model=CLIP_MODEL, variance=variance)
    assert float((unclipped - x).abs().max()) > 0.1


def test_diffusers_fixed_large_log_is_nan_where_our_sigma2_beta_is_finite(monkeypatch):
    # diffusers issue #14569: "fixed_large_log" is meant to be σ² = β in log form; its step takes √(log β).
    inject = InjectedNoise()
    monkeypatch.setattr(ddpm_module, "randn_tensor", inject)
    ts = spaced_timesteps(T, 10, "leading")
    noise = step_noise(10, torch.float64)
    broken, _ = run_ddpm_diffusers(diffusers_ddpm("fixed_large_log", ts), x_T(torch.float64), ts, noise, inject)
    assert bool(broken.isnan().all())
    x, _ = ours(ddpm, x_T(torch.float64), ts, noise, variance="beta")
    large, _ = run_ddpm_diffusers(diffusers_ddpm("fixed_large", ts), x_T(torch.float64), ts, noise, inject)
    assert bool(x.isfinite().all())
    torch.testing.assert_close(x, large, rtol=0, atol=1e-9)


# ------------------------------------------------------------------------------------- DDIM

def ddim_step(x, t, t_prev, eta, z, model=MODEL):
    """One DDIM step t → t_prev (−1: clean data), Song et al. 2021 eq. 12 with σ of eq. 16, plainly in float64."""
    ab = float(SCHEDULE.alpha_bar64[t])
    ab_prev = float(SCHEDULE.alpha_bar64[t_prev]) if t_prev >= 0 else 1.0
    eps = model_output(model, x, t)
    x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab)) * math.sqrt(1 - ab / ab_prev)
    return math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev - sigma**2) * eps + sigma * z


def ddim_closed_form(x, ts, eta, noise, model=MODEL):
    """The DDIM loop over ``ts``; the previous timestep of each step is the next entry of the list."""
    x = x.double()
    for i, t in enumerate(ts):
        x = ddim_step(x, t, ts[i + 1] if i + 1 < len(ts) else -1, eta, noise[i], model)
    return x


def diffusers_ddim_is_right(spacing: str, n: int) -> bool:
    """Where ``prev_t = t − T // n`` happens to be the next entry of the list."""
    ts = spaced_timesteps(T, n, spacing)
    return all(b == a - T // n for a, b in zip(ts, ts[1:]))


DDIM_CASES = [("leading", T), ("leading", 50), ("leading", 37), ("trailing", 50), ("trailing", 37),
              ("linspace", 50), ("linspace", 37), ("linspace", T)]


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("spacing, n", DDIM_CASES)
def test_ddim_equals_closed_form_and_diffusers_where_diffusers_is_right(spacing, n, eta):
    ts = spaced_timesteps(T, n, spacing)
    noise = step_noise(n, torch.float64)
    x64, steps = ours(ddim, x_T(torch.float64), ts, noise, eta=eta)
    torch.testing.assert_close(x64, ddim_closed_form(x_T(torch.float64), ts, eta, noise), rtol=0, atol=1e-9)
    assert float(x64.abs().max()) < 5

    theirs = diffusers_ddim(spacing, n)
    assert theirs.timesteps.tolist() == ts
    end, _ = run_ddim_diffusers(theirs, x_T(torch.float64), ts, noise, eta)
    if diffusers_ddim_is_right(spacing, n):
        torch.testing.assert_close(x64, end, rtol=0, atol=1e-9)
        for i, st in enumerate(steps):  # single steps from each of our x_t
            res = theirs.step(model_output(MODEL, st.x_t, ts[i]), ts[i], st.x_t, eta=eta, variance_noise=noise[i])
            torch.testing.assert_close(st.x_next, res.prev_sample, rtol=0, atol=1e-9)
            torch.testing.assert_close(st.x0_hat, res.pred_original_sample, rtol=0, atol=1e-9)
    else:
        # diffusers' stride arithmetic steps to the wrong ᾱ: documented bug (#11347, #12633). Its step from our
        # x_t at the first irregular gap is the closed-form step to t − T//n, not to the next listed timestep.
        assert spacing == "linspace" or T % n != 0
        i = next(k for k in range(n - 1) if ts[k + 1] != ts[k] - T // n)
        st = steps[i]
        res = theirs.step(model_output(MODEL, st.x_t, ts[i]), ts[i], st.x_t, eta=eta, variance_noise=noise[i])
        torch.testing.assert_close(res.prev_sample, ddim_step(st.x_t, ts[i], ts[i] - T // n, eta, noise[i]),
                                   rtol=0, atol=1e-9)
        assert float((res.prev_sample - st.x_next).abs().max()) > 1e-6
        assert float((x64 - end).abs().max()) > 1e-4

    x32, _ = ours(ddim, x_T(torch.float32), ts, step_noise(n, torch.float32), eta=eta)
    torch.testing.assert_close(x32.double(), x64, rtol=0, atol=1e-5)


@pytest.mark.parametrize("own_betas", [False, True])
def test_ddim_float32_equals_diffusers_float32(own_betas):
    ts = spaced_timesteps(T, 50, "trailing")
    noise = step_noise(50, torch.float32)
    x, _ = ours(ddim, x_T(torch.float32), ts, noise, eta=0.5)
    end, _ = run_ddim_diffusers(diffusers_ddim("trailing", 50, float64=False, own_betas=own_betas),
                                x_T(torch.float32), ts, noise, 0.5)
    torch.testing.assert_close(x, end, rtol=0, atol=1e-5)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_clip_x0_equals_diffusers_clip_sample_with_clipped_model_output(eta):
    ts = spaced_timesteps(T, 25, "leading")
    noise = step_noise(25, torch.float64)
    x, _ = ours(ddim, x_T(torch.float64), ts, noise, model=CLIP_MODEL, clip=True, eta=eta)
    end, outs = run_ddim_diffusers(diffusers_ddim("leading", 25, clip=True), x_T(torch.float64), ts, noise, eta,
                                   model=CLIP_MODEL, use_clipped_model_output=True)
    torch.testing.assert_close(x, end, rtol=0, atol=1e-9)
    assert sum(int((o.pred_original_sample.abs() == 1).any()) for o in outs) > 5


def test_ddim_eta_1_has_the_ddpm_posterior_variance():
    # η = 1: σ² = β̃' — the same noise scale as DDPM with σ² = β̃ (the means differ: DDIM keeps its own form).
    ts = spaced_timesteps(T, 20, "leading")
    zero = [torch.zeros(len(SEEDS), *SHAPE, dtype=torch.float64)] * 20
    unit = [torch.ones(len(SEEDS), *SHAPE, dtype=torch.float64)] * 20
    x = x_T(torch.float64)
    _, with_noise = ours(ddim, x, ts[:1] + ts[1:2], unit, eta=1.0)
    _, without = ours(ddim, x, ts[:1] + ts[1:2], zero, eta=1.0)
    ab, ab_prev = SCHEDULE.alpha_bar_at(ts[0]), SCHEDULE.alpha_bar_at(ts[1])
    beta_tilde = (1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)
    torch.testing.assert_close(with_noise[0].x_next - without[0].x_next,
                               torch.full_like(x, math.sqrt(beta_tilde)), rtol=0, atol=1e-9)


# ------------------------------------------------------------------------------------- DPM-Solver++(2M)

@pytest.mark.parametrize("n", [10, 15, 20, 25])
def test_dpmpp_2m_equals_diffusers(n):
    theirs = DPMSolverMultistepScheduler(T, trained_betas=SCHEDULE.betas64.numpy(), algorithm_type="dpmsolver++",
                                         solver_order=2)
    theirs.set_timesteps(n)
    ts = theirs.timesteps.tolist()
    assert len(ts) == n and ts[0] == T - 1 and ts[-1] > 0
    x32, steps = ours(dpmpp_2m, x_T(torch.float32), ts, [])
    x, outs = x_T(torch.float32), []
    for t in ts:  # diffusers always works in float32 here (its step upcasts the sample to float32)
        x = theirs.step(model_output(MODEL, x, t), t, x).prev_sample
        outs.append(x)
    torch.testing.assert_close(x32, x, rtol=0, atol=1e-5)
    for st, o in zip(steps, outs):
        torch.testing.assert_close(st.x_next, o, rtol=0, atol=1e-5)
    # single steps: diffusers fed our x_t at every step (its multistep history built from our x̂_0's)
    theirs.set_timesteps(n)
    for i, st in enumerate(steps):
        res = theirs.step(model_output(MODEL, st.x_t, ts[i]), ts[i], st.x_t).prev_sample
        torch.testing.assert_close(st.x_next, res, rtol=0, atol=1e-5)
    # and through the public entry point, with diffusers' list passed as timesteps=
    from tinydiffusion import sample
    via_sample = sample(MODEL, SCHEDULE, x_T(torch.float32), sampler="dpm++", timesteps=ts)
    torch.testing.assert_close(via_sample, x32, rtol=0, atol=0)
    x64, _ = ours(dpmpp_2m, x_T(torch.float64), ts, [])
    torch.testing.assert_close(x64, x.double(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("sampler, eta", [("ddpm", 0.0), ("ddim", 0.5)])
def test_public_sample_with_per_sample_seeds_equals_diffusers(monkeypatch, sampler, eta):
    # sample(generator=SeededNoise(seeds)) draws step k's noise from stream (Stream.STEP_NOISE, k) of each seed:
    # handing diffusers those same numbers reproduces the public entry point end to end.
    from tinydiffusion import sample
    from tinydiffusion.rng import Stream, stream
    inject = InjectedNoise()
    monkeypatch.setattr(ddpm_module, "randn_tensor", inject)
    ts = spaced_timesteps(T, 25, "leading")
    seeded = SeededNoise(SEEDS)
    noise = [seeded.randn(SHAPE, stream(Stream.STEP_NOISE, i)).double() for i in range(25)]  # drawn as float32
    x = sample(MODEL, SCHEDULE, x_T(torch.float64), sampler=sampler, steps=25, spacing="leading", eta=eta,
               generator=seeded)
    if sampler == "ddpm":
        end, _ = run_ddpm_diffusers(diffusers_ddpm("fixed_small", ts), x_T(torch.float64), ts, noise, inject)
    else:
        end, _ = run_ddim_diffusers(diffusers_ddim("leading", 25), x_T(torch.float64), ts, noise, eta)
    torch.testing.assert_close(x, end, rtol=0, atol=1e-9)
