"""The sampler API: timestep lists, errors, callbacks, per-sample seeds, guidance, and the seeds' demo loops."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from oracle_models import SmoothEps, single_thread  # noqa: F401 (module fixture)

from tinydiffusion import SAMPLERS, NoiseSchedule, SeededNoise, UserError, sample
from tinydiffusion.samplers import initial_noise, sampler_timesteps, spaced_timesteps
from tinydiffusion.rng import Stream, stream
from tinydiffusion.samplers.common import check_timesteps, make_denoiser
from tinydiffusion.samplers.karras import karras_sigmas, karras_timesteps

T = 1000
SCHEDULE = NoiseSchedule.linear(T)
MODEL = SmoothEps(SCHEDULE)


def x_T(n: int = 4, shape=(1, 4, 4)) -> torch.Tensor:
    return SeededNoise.range(0, n).randn(shape, stream=1)


# ------------------------------------------------------------------------------------- timestep lists

def exact_values(T: int, n: int, spacing: str) -> tuple[list[Fraction], int]:
    """The unrounded values, descending, and the shift after rounding: T(n−k)/n then −1 (trailing),
    or k(T−1)/(n−1) (linspace)."""
    if spacing == "trailing":
        return [Fraction(T * (n - k), n) for k in range(n)], -1
    return [Fraction(k * (T - 1), max(n - 1, 1)) for k in range(n)][::-1], 0


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("T_", [50, 150, 1000])
def test_spacings_equal_diffusers_set_timesteps(spacing, T_):
    from diffusers import DDIMScheduler
    theirs = DDIMScheduler(T_, timestep_spacing=spacing)
    for n in range(1, T_ + 1):
        ours = spaced_timesteps(T_, n, spacing)
        assert len(ours) == n and ours == sorted(set(ours), reverse=True) and 0 <= ours[-1] and ours[0] <= T_ - 1
        theirs.set_timesteps(n)
        ref = theirs.timesteps.tolist()
        if ref == ours:
            continue
        # Only two kinds of difference, both from diffusers' float arithmetic: np.arange(T, 0, −T/n) can emit
        # one entry too many (−1 after the −1 shift), and an exact half k + ½ can land on either side.
        assert spacing != "leading"
        if len(ref) == n + 1:
            assert spacing == "trailing" and ref[-1] == -1
            ref = ref[:-1]
        values, shift = exact_values(T_, n, spacing)
        for a, b, exact in zip(ref, ours, values):
            if a != b:
                assert exact - math.floor(exact) == Fraction(1, 2) and abs(a - b) == 1
                assert b == round(exact) + shift  # ours: exact halves go to the even neighbour


@pytest.mark.parametrize("T_, n", [(1000, 1), (1000, 7), (1000, 10), (1000, 20), (1000, 25), (1000, 30), (1000, 33),
                                   (1000, 50), (1000, 100), (1000, 250), (1000, 999), (1000, 1000), (500, 25),
                                   (150, 15), (100, 10)])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_common_step_counts_equal_diffusers_exactly(T_, n, spacing):
    from diffusers import DDIMScheduler, DDPMScheduler
    for cls in (DDIMScheduler, DDPMScheduler):
        theirs = cls(T_, timestep_spacing=spacing)
        theirs.set_timesteps(n)
        assert theirs.timesteps.tolist() == spaced_timesteps(T_, n, spacing)


def test_spacing_closed_forms():
    assert spaced_timesteps(10, 3, "leading") == [6, 3, 0]
    assert spaced_timesteps(10, 3, "trailing") == [9, 6, 2]  # round(10, 6.67, 3.33) − 1
    assert spaced_timesteps(10, 4, "linspace") == [9, 6, 3, 0]
    assert spaced_timesteps(10, 10, "trailing") == list(range(9, -1, -1))
    # seed 002's DDIM: i = T, T − T/n, …, T/n (1-based) is trailing spacing in 0-based steps
    assert spaced_timesteps(500, 25, "trailing") == [i - 1 for i in range(500, 0, -20)]


def test_spacing_errors():
    with pytest.raises(UserError) as a:
        spaced_timesteps(100, 101, "trailing")
    assert str(a.value) == "the number of sampling steps must be between 1 and T=100, got 101"
    with pytest.raises(UserError) as b:
        spaced_timesteps(100, 10, "uniform")
    assert str(b.value) == "unknown timestep spacing 'uniform'; choose one of leading, trailing, linspace"


@pytest.mark.parametrize("timesteps, message", [
    ([], "the timestep list is empty"),
    ([999, 500, 500, 0], "timesteps must be strictly descending (from noisy to clean)"),
    ([0, 500, 999], "timesteps must be strictly descending (from noisy to clean)"),
    ([1000, 500], "timesteps must lie in [0, 999], got 500..1000"),
    ([500, -1], "timesteps must lie in [0, 999], got -1..500"),
    ([999, 500.5, 0], "this sampler needs integer timesteps"),
])
def test_check_timesteps_errors(timesteps, message):
    with pytest.raises(UserError) as info:
        check_timesteps(timesteps, T)
    assert str(info.value) == message
    with pytest.raises(UserError) as via_sample:
        sample(MODEL, SCHEDULE, x_T(), sampler="ddim", timesteps=timesteps)
    assert str(via_sample.value) == message


def test_check_timesteps_accepts_fractional_lists_where_allowed():
    assert check_timesteps([999.0, 500.0, 0.0], T) == [999, 500, 0]
    assert check_timesteps([998.5, 10.25], T, integer=False) == [998.5, 10.25]


@pytest.mark.parametrize("kwargs, message", [
    (dict(sampler="plms"), "unknown sampler 'plms'; choose one of ddpm, ddim, dpm++, euler, heun, ddpm-no-noise, "
                           "x0-step, ddpm-off-by-one"),
    (dict(spacing="even"), "unknown timestep spacing 'even'; choose one of leading, trailing, linspace"),
    (dict(steps=10, timesteps=[999, 0]), "give either steps or timesteps, not both"),
    (dict(steps=0), "the number of sampling steps must be at least 1, got 0"),
    (dict(steps=1001), "the number of sampling steps must be between 1 and T=1000, got 1001"),
    (dict(eta=-0.5), "eta must be ≥ 0, got -0.5"),
    (dict(sampler="ddpm", variance="learned"),
     "unknown DDPM variance 'learned'; choose 'beta' (σ²=β) or 'beta_tilde' (σ²=β̃)"),
    (dict(generator=SeededNoise([1, 2, 3])), "3 seeds for a batch of 4"),
    (dict(sampler="x0-step"), "the x0-step sampler needs a model that predicts x0 (seed 001's corrupt objective)"),
    (dict(prediction="score"), "unknown prediction type 'score'; choose one of epsilon, x0, v"),
    (dict(guidance=3.0), "classifier-free guidance needs a condition (class labels or context vectors)"),
    # an option the sampler does not use is refused, not ignored
    (dict(sampler="ddpm", eta=0.5),
     "eta 0.5 does not apply to the ddpm sampler (only to ddim); leave eta out or choose another sampler"),
    (dict(sampler="dpm++", variance="beta"),
     "variance 'beta' does not apply to the dpm++ sampler (only to ddpm); leave variance out or choose another sampler"),
    (dict(sampler="heun", spacing="leading"),
     "spacing 'leading' does not apply to the heun sampler (only to ddpm, ddim, dpm++, ddpm-no-noise, "
     "ddpm-off-by-one); leave spacing out or choose another sampler"),
    (dict(sampler="ddpm-no-noise", variance="beta"),
     "variance 'beta' does not apply to the ddpm-no-noise sampler (only to ddpm); leave variance out or choose "
     "another sampler"),
])
def test_sample_user_errors(kwargs, message):
    with pytest.raises(UserError) as info:
        sample(MODEL, SCHEDULE, x_T(), **kwargs)
    assert str(info.value) == message


def test_options_at_their_defaults_are_accepted_by_every_sampler():
    """A caller that always passes the defaults (a run's [sample] section) is not refused."""
    for name in ("ddpm", "ddim", "dpm++", "euler", "heun", "ddpm-no-noise"):
        sample(MODEL, SCHEDULE, x_T(), sampler=name, steps=2, eta=0.0, variance="beta_tilde", spacing="trailing",
               generator=SeededNoise.range(0, 4))


def test_a_runs_settings_for_another_sampler_drop_out():
    """A run saved with DDIM's eta = 0.5 sampled with --sampler ddpm: the eta is the run's, not the user's."""
    from tinydiffusion.generate import SampleSettings, generate
    settings = SampleSettings(sampler="ddpm", steps=4, eta=0.5, variance="beta", spacing="leading")
    assert settings.sampler_options() == {"spacing": "leading", "variance": "beta"}
    assert SampleSettings(sampler="heun", eta=0.5, spacing="leading").sampler_options() == {}
    x = generate(MODEL, SCHEDULE, (1, 4, 4), 3, settings=settings)
    assert x.shape == (3, 1, 4, 4) and bool(x.isfinite().all())


def test_default_timesteps_of_each_sampler():
    assert sampler_timesteps(SCHEDULE, "ddpm") == list(range(999, -1, -1))
    assert sampler_timesteps(SCHEDULE, "ddim") == list(range(999, 0, -20))  # 50 steps, trailing: T(50 − k)/50 − 1
    assert sampler_timesteps(SCHEDULE, "dpm++", 10, spacing="leading") == list(range(900, -1, -100))
    assert sampler_timesteps(SCHEDULE, "x0-step") == [999 * (1 - i / 5) for i in range(5)]
    heun = sampler_timesteps(SCHEDULE, "heun")  # 10 Karras levels from σ_max (t = T − 1) to σ_min (t = 0)
    assert len(heun) == 10 and heun[0] == pytest.approx(999, abs=1e-9) and heun[-1] == pytest.approx(0, abs=1e-9)
    assert all(a > b for a, b in zip(heun, heun[1:]))


def test_karras_levels_are_edm_eq_5_and_equal_diffusers():
    from diffusers import EulerDiscreteScheduler
    sig = karras_sigmas(SCHEDULE, 10)
    ab = SCHEDULE.alpha_bar64.tolist()  # σ = √((1 − ᾱ)/ᾱ) in float64, at the two ends of the trained range
    s_max, s_min, rho = math.sqrt((1 - ab[-1]) / ab[-1]), math.sqrt((1 - ab[0]) / ab[0]), 7.0
    expect = [(s_max ** (1 / rho) + i / 9 * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho for i in range(10)]
    assert sig == pytest.approx(expect, rel=1e-12)
    theirs = EulerDiscreteScheduler(T, trained_betas=SCHEDULE.betas64.numpy(), use_karras_sigmas=True)
    theirs.set_timesteps(10)
    torch.testing.assert_close(torch.tensor(sig, dtype=torch.float64), theirs.sigmas[:-1].double(), rtol=1e-4,
                               atol=0)
    # the network is asked at the fractional training timesteps of those σ's (log-σ interpolation)
    torch.testing.assert_close(torch.tensor(karras_timesteps(SCHEDULE, 10), dtype=torch.float64),
                               theirs.timesteps.double(),
                               rtol=0, atol=1e-2)


def test_euler_equals_diffusers_euler_on_karras_sigmas():
    from diffusers import EulerDiscreteScheduler
    theirs = EulerDiscreteScheduler(T, trained_betas=SCHEDULE.betas64.numpy(), use_karras_sigmas=True)
    theirs.set_timesteps(12)
    x = x_T()
    y = x * theirs.init_noise_sigma  # diffusers works in x̃ = x_t/√ᾱ
    for t in theirs.timesteps:
        y = theirs.step(MODEL(theirs.scale_model_input(y, t), t.expand(4)), t, y).prev_sample
    ours = sample(MODEL, SCHEDULE, x, sampler="euler", steps=12)
    torch.testing.assert_close(ours, y, rtol=0, atol=1e-4)  # their float32 σ table moves t by < 1e-2


def test_heun_equals_diffusers_heun_on_karras_sigmas():
    """diffusers' HeunDiscreteScheduler takes each step in two calls (Euler, then the averaged slope), and its
    last step to σ = 0 is a plain Euler step: EDM Algorithm 1 without churn, what ours does in one loop."""
    from diffusers import HeunDiscreteScheduler
    theirs = HeunDiscreteScheduler(T, trained_betas=SCHEDULE.betas64.numpy(), use_karras_sigmas=True)
    theirs.set_timesteps(8)
    x = x_T()
    y = x * theirs.init_noise_sigma
    for t in theirs.timesteps:
        y = theirs.step(MODEL(theirs.scale_model_input(y, t), t.expand(4)), t, y).prev_sample
    counting = SmoothEps(SCHEDULE)
    ours = sample(counting, SCHEDULE, x, sampler="heun", steps=8)
    assert counting.calls == len(theirs.timesteps) == 15
    torch.testing.assert_close(ours, y, rtol=0, atol=1e-4)


# ------------------------------------------------------------------------------------- previous timestep

@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_previous_timestep_is_always_the_next_list_entry(sampler):
    ts = [999, 700, 650, 101, 3]  # irregular on purpose: no stride arithmetic can produce it
    steps = []
    zero = sample(MODEL, SCHEDULE, x_T(), sampler=sampler, timesteps=ts, eta=0.0, callback=steps.append,
                  generator=SeededNoise.range(0, 4))
    assert [s.t for s in steps] == ts
    for i, st in enumerate(steps):
        ab = SCHEDULE.alpha_bar_at(ts[i])
        ab_prev = SCHEDULE.alpha_bar_at(ts[i + 1] if i + 1 < len(ts) else -1)
        eps = (st.x_t - math.sqrt(ab) * st.x0_hat) / math.sqrt(1 - ab)
        if sampler == "ddim":  # eq. 12 with η = 0
            expect = math.sqrt(ab_prev) * st.x0_hat + math.sqrt(1 - ab_prev) * eps
            torch.testing.assert_close(st.x_next, expect, rtol=0, atol=1e-5)
        else:  # the mean part of x_next is the posterior mean of q(x_{t'} | x_t, x̂_0) with β' = 1 − ᾱ_t/ᾱ_{t'}
            beta = 1 - ab / ab_prev
            mean = (math.sqrt(ab_prev) * beta * st.x0_hat + math.sqrt(1 - beta) * (1 - ab_prev) * st.x_t) / (1 - ab)
            sigma = math.sqrt((1 - ab_prev) / (1 - ab) * beta)  # β̃' (the default variance)
            z = SeededNoise.range(0, 4).randn((1, 4, 4), stream(Stream.STEP_NOISE, i))  # step i's per-sample noise
            if i + 1 < len(ts):
                torch.testing.assert_close(st.x_next, mean + sigma * z, rtol=0, atol=1e-5)
            else:
                torch.testing.assert_close(st.x_next, mean, rtol=0, atol=1e-5)  # no noise into clean data
    assert torch.equal(zero, steps[-1].x_next)


# ------------------------------------------------------------------------------------- callbacks

@pytest.mark.parametrize("sampler, steps", [("ddpm", 30), ("ddim", 12), ("dpm++", 8), ("euler", 6), ("heun", 5),
                                            ("ddpm-no-noise", 9)])
def test_callback_sees_every_step_chained(sampler, steps):
    seen = []
    x = x_T()
    options = {"eta": 0.5} if sampler == "ddim" else {}
    out = sample(MODEL, SCHEDULE, x, sampler=sampler, steps=steps, callback=seen.append,
                 generator=SeededNoise.range(0, 4), **options)
    assert [s.index for s in seen] == list(range(steps))
    assert [s.t for s in seen] == pytest.approx([float(t) for t in sampler_timesteps(SCHEDULE, sampler, steps)])
    torch.testing.assert_close(seen[0].x_t, x, rtol=0, atol=1e-6)
    for a, b in zip(seen, seen[1:]):
        torch.testing.assert_close(b.x_t, a.x_next, rtol=0, atol=1e-6)  # x_next of one step is x_t of the next
    assert torch.equal(out, seen[-1].x_next)
    assert all(s.x0_hat.shape == x.shape for s in seen)


@pytest.mark.parametrize("sampler, calls", [("ddpm", 6), ("ddim", 6), ("dpm++", 6), ("euler", 6), ("heun", 11),
                                            ("ddpm-no-noise", 6), ("x0-step", 6)])
def test_network_calls_are_what_the_spec_says(sampler, calls):
    """What the CLI prints and eval reports as the cost: counted, not restated (Heun: 2n − 1)."""
    counting = SmoothEps(SCHEDULE)
    sample(counting, SCHEDULE, x_T(), sampler=sampler, steps=6, prediction="x0" if sampler == "x0-step" else "epsilon",
           generator=SeededNoise.range(0, 4))
    assert counting.calls == SAMPLERS[sampler].network_calls(6) == calls


# ------------------------------------------------------------------------------------- per-sample seeds

@pytest.mark.parametrize("sampler, eta, steps", [("ddpm", 0.0, 40), ("ddim", 0.7, 25), ("ddim", 0.0, 25)])
def test_samples_do_not_depend_on_the_batch_size(sampler, eta, steps):
    seeds = list(range(100, 164))

    def run(chunk):
        g = SeededNoise(chunk)
        x = initial_noise(sampler, (1, 4, 4), g)
        return sample(MODEL, SCHEDULE, x, sampler=sampler, steps=steps, eta=eta, generator=g, spacing="leading")

    full = run(seeds)
    chunks = torch.cat([run(seeds[i:i + 7]) for i in range(0, 64, 7)])
    torch.testing.assert_close(chunks, full, rtol=0, atol=1e-6)
    for i in (0, 31, 63):
        torch.testing.assert_close(run(seeds[i:i + 1]), full[i:i + 1], rtol=0, atol=1e-6)
    assert float((full[0] - full[1]).abs().max()) > 0.1  # different seeds, different samples
    if sampler == "ddpm" or eta > 0:  # the stochastic ones really use the step noise
        other = sample(MODEL, SCHEDULE, initial_noise(sampler, (1, 4, 4), SeededNoise(seeds)), sampler=sampler,
                       steps=steps, eta=eta, generator=SeededNoise(list(range(1000, 1064))), spacing="leading")
        assert float((other - full).abs().max()) > 0.1


def test_torch_generator_is_reproducible():
    def run():
        g = torch.Generator().manual_seed(5)
        return sample(MODEL, SCHEDULE, initial_noise("ddpm", (4, 1, 4, 4), g), sampler="ddpm", steps=20, generator=g)
    assert torch.equal(run(), run())


def test_initial_noise_distributions():
    g = SeededNoise.range(0, 2000)
    gauss = initial_noise("ddim", (1, 4, 4), g)
    uniform = initial_noise("x0-step", (1, 4, 4), g)
    assert gauss.shape == uniform.shape == (2000, 1, 4, 4)
    assert abs(float(gauss.std()) - 1) < 0.02 and abs(float(gauss.mean())) < 0.02
    assert -1 < float(uniform.min()) and float(uniform.max()) < 1 and abs(float(uniform.var()) - 1 / 3) < 0.01
    torch_uniform = initial_noise("x0-step", (500, 3), torch.Generator().manual_seed(0))
    assert -1 <= float(torch_uniform.min()) and float(torch_uniform.max()) < 1


# ------------------------------------------------------------------------------------- guidance

class CondModel:
    """ε depends on the condition: class ids (−1 = null) through a table, contexts (0 = null) through a matrix."""

    def __init__(self):
        g = torch.Generator().manual_seed(9)
        self.table = torch.randn(11, 16, generator=g)  # row 10: the null class
        self.matrix = torch.randn(5, 16, generator=g)
        self.batches: list[int] = []

    def __call__(self, x, t, cond=None):
        self.batches.append(x.shape[0])
        if cond is None:
            shift = torch.zeros(x.shape[0], 16)
        elif cond.dtype.is_floating_point:
            shift = cond @ self.matrix
        else:
            shift = self.table[torch.where(cond < 0, torch.full_like(cond, 10), cond)]
        return torch.tanh(x + shift.view(x.shape) * 0.5) + 0.01 * t.float().view(-1, 1, 1, 1) / 1000


@pytest.mark.parametrize("kind", ["class", "context"])
@pytest.mark.parametrize("w", [0.0, 1.0, 3.0])
def test_guided_denoiser_equals_two_separate_calls(kind, w):
    model = CondModel()
    x = x_T(6)
    cond = torch.tensor([0, 3, 9, 2, 2, 7]) if kind == "class" else torch.rand(6, 5, generator=torch.Generator())
    null = torch.full_like(cond, -1) if kind == "class" else torch.zeros_like(cond)
    denoise = make_denoiser(model, guidance=w, cond={"cond": cond})
    ab = SCHEDULE.alpha_bar_at(400)
    model.batches.clear()
    x0, eps = denoise(x, 400, ab)
    assert model.batches == ([6] if w == 1.0 else [12])  # one batched call; w = 1 needs no null pass
    t = torch.full((6,), 400)
    eps_c, eps_u = model(x, t, cond), model(x, t, null)
    torch.testing.assert_close(eps, eps_u + w * (eps_c - eps_u), rtol=0, atol=1e-6)
    torch.testing.assert_close(x0, (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab), rtol=0, atol=1e-4)
    if w == 1.0:
        plain = make_denoiser(model, cond={"cond": cond})(x, 400, ab)[1]
        assert torch.equal(eps, plain)


def test_guided_sampling_equals_sampling_the_guided_model():
    model = CondModel()
    labels = torch.tensor([1, 4, 4, 8])

    def guided(x, t, cond=None):
        eps_u = model(x, t, torch.full_like(cond, -1))
        return eps_u + 2.5 * (model(x, t, cond) - eps_u)

    a = sample(model, SCHEDULE, x_T(), sampler="ddim", steps=10, guidance=2.5, cond=labels)
    b = sample(guided, SCHEDULE, x_T(), sampler="ddim", steps=10, cond=labels)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    c = sample(model, SCHEDULE, x_T(), sampler="ddim", steps=10, cond=labels)
    assert float((a - c).abs().max()) > 1e-2


def test_guidance_without_a_condition_is_a_user_error():
    with pytest.raises(UserError) as info:
        make_denoiser(CondModel(), guidance=2.0)
    assert str(info.value) == "classifier-free guidance needs a condition (class labels or context vectors)"
    with pytest.raises(UserError):
        make_denoiser(CondModel(), guidance=2.0, cond={"cond": None})


# ------------------------------------------------------------------------------------- clipping, v, zero SNR

def test_clip_x0_clamps_and_keeps_the_pair_consistent():
    wide = SmoothEps(SCHEDULE, c2=9.0)
    x = x_T() * 3
    x0, eps = make_denoiser(wide, clip_x0=True)(x, 700, SCHEDULE.alpha_bar_at(700))
    raw, _ = make_denoiser(wide)(x, 700, SCHEDULE.alpha_bar_at(700))
    assert float(raw.abs().max()) > 1 and float(x0.abs().max()) <= 1
    ab = SCHEDULE.alpha_bar_at(700)
    torch.testing.assert_close(math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps, x, rtol=0, atol=1e-5)
    x0_r, _ = make_denoiser(wide, clip_x0=(-0.5, 0.5))(x, 700, ab)
    assert float(x0_r.abs().max()) == 0.5


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_samplers_never_read_a_device_table(sampler):
    """Per-step coefficients come from the float64 CPU tables: a schedule whose float32 tables live on the
    ``meta`` device (no data to read back, as a GPU table would need a host sync per step) samples all the same."""
    prediction = "x0" if sampler == "x0-step" else "epsilon"
    kwargs = dict(sampler=sampler, steps=3, prediction=prediction, generator=SeededNoise.range(0, 4))
    on_meta = sample(MODEL, SCHEDULE.to("meta"), x_T(), **kwargs)
    torch.testing.assert_close(on_meta, sample(MODEL, SCHEDULE, x_T(), **kwargs), rtol=0, atol=0)


def test_float64_sampling_stays_float64():
    out = sample(MODEL, SCHEDULE, x_T().double(), sampler="dpm++", steps=5)
    assert out.dtype == torch.float64


@pytest.mark.parametrize("sampler, steps", [("ddpm", None), ("ddim", 50), ("dpm++", 20), ("euler", 10)])
def test_zero_terminal_snr_schedule_samples_stay_finite(sampler, steps):
    # ᾱ_{T−1} is held just above 0 *below* ᾱ_{T−2}: a rising ᾱ made DDPM's respaced β' negative (math domain error)
    zsnr = NoiseSchedule.from_config({"kind": "linear", "timesteps": T, "zero_terminal_snr": True})

    def v_model(x, t, cond=None):
        return 0.5 * torch.tanh(x)

    out = sample(v_model, zsnr, x_T(), sampler=sampler, steps=steps, prediction="v",
                 generator=SeededNoise.range(0, 4))
    assert bool(out.isfinite().all()) and float(out.abs().max()) < 10


# ------------------------------------------------------------------------------------- the seeds' demo loops

def test_x0_step_reproduces_seed_001_loop():
    def net(x01):  # a toy x0-model on seed 001's [0, 1] images (its BasicUNet ignores t)
        return torch.sigmoid(4 * x01 - 2) * 0.9 + 0.05

    x = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(0))  # seed 001: x = torch.rand(8, 1, 28, 28)
    start = x.clone()
    n_steps = 5
    for i in range(n_steps):  # seed 001, as written
        pred = net(x)
        mix_factor = 1 / (n_steps - i)
        x = x * (1 - mix_factor) + pred * mix_factor

    seen_t = []

    def our_net(y, t, cond=None):  # the same network on [−1, 1]
        seen_t.append(float(t[0]))
        return 2 * net((y + 1) / 2) - 1

    out = sample(our_net, SCHEDULE, start * 2 - 1, sampler="x0-step", prediction="x0")
    torch.testing.assert_close(out, x * 2 - 1, rtol=0, atol=1e-6)
    assert seen_t == pytest.approx([999 * (1 - i / 5) for i in range(5)])


def test_ddpm_no_noise_is_seed_002_incorrect_loop():
    timesteps = 500
    s = NoiseSchedule.from_config({"kind": "linear", "timesteps": timesteps, "convention": "one-based"})

    def nn_model(x, t_frac):  # a toy for the seed's ContextUnet, called with t = i / timesteps
        return torch.tanh(x) * 0.5 + 0.2 * torch.cos(x + 3 * t_frac)

    # seed 002's tables, 1-based; its ab_t carries an extra factor 1 − b_0 that the one-based mapping drops,
    # so the loop is checked on the mapped ᾱ (ab_t[i] = ᾱ_{i−1}) and, below, against the literal tables
    b_t = (0.02 - 1e-4) * torch.linspace(0, 1, timesteps + 1, dtype=torch.float64) + 1e-4
    a_t = 1 - b_t

    def incorrect(samples, ab_t):  # sample_ddpm_incorrect, as written, with z = 0
        for i in range(timesteps, 0, -1):
            t = torch.tensor([i / timesteps], dtype=torch.float64)[:, None, None, None]
            eps = nn_model(samples, t)
            samples = (samples - eps * ((1 - a_t[i]) / (1 - ab_t[i]).sqrt())) / a_t[i].sqrt()
        return samples

    x = SeededNoise.range(0, 4).randn((3, 4, 4), stream=1, dtype=torch.float64)
    mapped = torch.cat([torch.ones(1, dtype=torch.float64), s.alpha_bar64])
    literal = torch.cumsum(a_t.log(), dim=0).exp()
    literal[0] = 1

    def ours_model(x, t, cond=None):  # 0-based t; the network sees (t + 1)/T (its t_offset = 1)
        return nn_model(x, ((t.double() + 1) / timesteps).view(-1, 1, 1, 1))

    out = sample(ours_model, s, x, sampler="ddpm-no-noise")
    torch.testing.assert_close(out, incorrect(x, mapped), rtol=0, atol=1e-9)
    assert float((out - incorrect(x, literal)).abs().max()) < 0.05  # the dropped factor 0.9999 matters little
    # the demo's point: without noise every start collapses towards the same average image
    with_noise = sample(ours_model, s, x, sampler="ddpm", variance="beta", generator=SeededNoise.range(0, 4))
    assert float(out.std(0).mean()) < float(with_noise.std(0).mean())


def test_seed_002_ddim_loop_is_trailing_ddim():
    timesteps, n = 500, 25
    s = NoiseSchedule.from_config({"kind": "linear", "timesteps": timesteps, "convention": "one-based"})
    ab_t = torch.cat([torch.ones(1, dtype=torch.float64), s.alpha_bar64])  # mapped, as above

    def nn_model(x, t_frac):
        return torch.tanh(x) * 0.5 + 0.2 * torch.cos(x + 3 * t_frac)

    def denoise_ddim(x, t, t_prev, pred_noise):  # seed 002, as written
        ab, ab_prev = ab_t[t], ab_t[t_prev]
        x0_pred = ab_prev.sqrt() / ab.sqrt() * (x - (1 - ab).sqrt() * pred_noise)
        dir_xt = (1 - ab_prev).sqrt() * pred_noise
        return x0_pred + dir_xt

    x = SeededNoise.range(0, 4).randn((3, 4, 4), stream=1, dtype=torch.float64)
    samples, step_size = x, timesteps // n
    for i in range(timesteps, 0, -step_size):  # sample_ddim, as written
        t = torch.tensor([i / timesteps], dtype=torch.float64)[:, None, None, None]
        samples = denoise_ddim(samples, i, i - step_size, nn_model(samples, t))

    out = sample(lambda x, t, cond=None: nn_model(x, ((t.double() + 1) / timesteps).view(-1, 1, 1, 1)), s, x,
                 sampler="ddim", steps=n, spacing="trailing")
    torch.testing.assert_close(out, samples, rtol=0, atol=1e-9)
