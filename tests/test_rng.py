"""Counter-based per-sample randomness: distribution, independence, reproducibility, batch invariance."""

from __future__ import annotations

import math

import pytest
import torch
from oracle_models import single_thread  # noqa: F401 (module fixture)

from tinydiffusion.rng import BatchRandom, SeededNoise, Stream, fmix32, stream

N = 200_000


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


# |r| of two independent samples of n has sd ≈ 1/√n; 5 sd is a bound that a correct generator passes
def assert_uncorrelated(a: torch.Tensor, b: torch.Tensor) -> None:
    assert abs(corr(a, b)) < 5 / math.sqrt(a.numel())


def test_fmix32_is_murmurhash3_fmix32():
    def reference(h: int) -> int:  # MurmurHash3_x86_32's finaliser in plain Python integers
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & 0xFFFFFFFF
        return h ^ (h >> 16)

    values = [0, 1, 2, 0xDEADBEEF, 0xFFFFFFFF, 0x80000000, 123456789]
    assert fmix32(torch.tensor(values, dtype=torch.int64)).tolist() == [reference(v) for v in values]
    assert fmix32(torch.tensor(0)).item() == 0  # the finaliser fixes 0, which is why keys are mixed with constants


def test_randn_is_standard_normal():
    z = SeededNoise([7]).randn((N,), stream=1, dtype=torch.float64).flatten()
    assert abs(float(z.mean())) < 5 / math.sqrt(N)
    assert abs(float(z.var()) - 1) < 5 * math.sqrt(2 / N)
    assert abs(float((z**3).mean())) < 5 * math.sqrt(15 / N)  # skewness 0
    assert abs(float((z**4).mean()) - 3) < 5 * math.sqrt(96 / N)  # kurtosis 3
    stats = pytest.importorskip("scipy.stats")
    assert stats.kstest(z.numpy(), "norm").pvalue > 1e-3


def test_rand_is_uniform_on_the_open_unit_interval():
    u = SeededNoise([3]).rand((N,), stream=1, dtype=torch.float64).flatten()
    assert 0 < float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 5 * math.sqrt(1 / 12 / N)
    assert abs(float(u.var()) - 1 / 12) < 5 * math.sqrt(1 / 180 / N)
    counts = torch.histc(u.float(), bins=20, min=0, max=1)
    expected = N / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 60  # χ²(19): P(> 60) < 1e-5
    stats = pytest.importorskip("scipy.stats")
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3


def test_rand_stays_inside_the_open_interval_in_every_dtype():
    # Seed 27633519 hashes element 0 of stream 7 to within 2⁻²⁵ of 1 (found by searching the seeds): float32
    # rounding carried it onto exactly 1.0.
    assert 1 - 2**-25 < float(SeededNoise([27633519]).rand((), 7, dtype=torch.float64)) < 1
    assert float(SeededNoise([27633519]).rand((), 7)) == 1 - 2**-24  # the largest float32 below 1
    for dtype in (torch.float16, torch.bfloat16):  # 64,000 draws: many land within 2⁻¹² of 1
        u = SeededNoise.range(0, 1000).rand((64,), 1, dtype=dtype)
        assert 0 < float(u.min()) and float(u.max()) < 1, dtype


def test_randint_is_uniform_over_its_range():
    seeds = SeededNoise.range(0, 50_000)
    k = seeds.randint(7, stream=4)
    assert k.dtype == torch.int64 and k.shape == (50_000,)
    counts = torch.bincount(k, minlength=7).double()
    assert int(k.min()) == 0 and int(k.max()) == 6
    assert float(((counts - 50_000 / 7) ** 2 / (50_000 / 7)).sum()) < 35  # χ²(6): P(> 35) < 1e-5


def test_numbers_are_independent_across_elements_samples_streams_and_steps():
    noise = SeededNoise.range(0, 400)
    z = noise.randn((500,), stream=11)
    assert_uncorrelated(z[:, :-1], z[:, 1:])  # neighbouring elements
    assert_uncorrelated(z[:-1], z[1:])  # neighbouring samples (seeds s, s + 1)
    assert_uncorrelated(z, noise.randn((500,), stream=12))  # neighbouring streams
    step3 = noise.randn((500,), stream(Stream.STEP_NOISE, 3))
    step4 = noise.randn((500,), stream(Stream.STEP_NOISE, 4))
    assert_uncorrelated(step3, step4)  # neighbouring sampler steps
    u = noise.rand((500,), stream=11)
    assert_uncorrelated(u[:, :-1], u[:, 1:])
    # the two uniforms behind one Box–Muller normal must not be correlated either
    assert_uncorrelated(z.abs(), noise.rand((500,), stream=11))


def test_same_seed_same_numbers_and_rows_do_not_depend_on_the_batch():
    a = SeededNoise([5, 6, 7, 8]).randn((3, 4, 4), stream=2)
    assert torch.equal(a, SeededNoise([5, 6, 7, 8]).randn((3, 4, 4), stream=2))
    assert torch.equal(a[2:3], SeededNoise([7]).randn((3, 4, 4), stream=2))
    assert torch.equal(a[1:3], SeededNoise([5, 6, 7, 8])[1:3].randn((3, 4, 4), stream=2))
    assert torch.equal(a[[3, 0]], SeededNoise([8, 5]).randn((3, 4, 4), stream=2))
    assert not torch.equal(a[0], a[1])
    # large and negative seeds are distinct 64-bit keys
    big = SeededNoise([2**40 + 1, 1, -1]).randn((64,), stream=0)
    assert not torch.equal(big[0], big[1]) and not torch.equal(big[1], big[2])


def test_seeded_noise_basics():
    noise = SeededNoise.range(10, 3)
    assert noise.seeds.tolist() == [10, 11, 12] and len(noise) == 3
    assert noise.device == torch.device("cpu") and noise.to("cpu").seeds.tolist() == [10, 11, 12]
    assert noise.randn((2, 5), 1).shape == (3, 2, 5) and noise.rand((), 1).shape == (3,)
    assert noise.randn((2,), 1, dtype=torch.float64).dtype == torch.float64


def test_stream_ids_are_32_bit_and_distinct():
    ids = {stream(a, b) for a in range(20) for b in range(50)}
    assert len(ids) == 1000 and all(0 <= i < 2**32 for i in ids)
    assert stream(1, 2) != stream(2, 1)


def test_batch_random_keys_purposes_steps_and_runs_apart():
    idx = SeededNoise(torch.arange(100, 164))
    r = BatchRandom(idx, 0, 5)  # run seed 0, step 5
    assert len(r) == 64
    noise = r.randn((8,), purpose=2)
    assert torch.equal(noise, BatchRandom(idx, 0, 5).randn((8,), purpose=2))
    for other in (r.randn((8,), purpose=3), BatchRandom(idx, 0, 6).randn((8,), purpose=2),
                  BatchRandom(idx, 1, 5).randn((8,), purpose=2)):
        assert_uncorrelated(noise, other)
    # a shard of the global batch (one DDP process) draws exactly its rows of the whole batch
    shard = BatchRandom(SeededNoise(torch.arange(132, 164)), 0, 5)
    assert torch.equal(shard.randn((8,), purpose=2), noise[32:])
    assert torch.equal(shard.rand((), purpose=1), r.rand((), purpose=1)[32:])
    assert torch.equal(shard.randint(10, purpose=1), r.randint(10, purpose=1)[32:])
