"""Batches as a pure function of (seed, step): restarts, epochs, ranks, the two paths, flips,
conditions and scaling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from tinydiffusion.data import Dataset, load_dataset, make_batches
from tinydiffusion.data.batches import SampleOrder, flip_mask
from tinydiffusion.errors import UserError

N = 50  # not a multiple of the batch sizes below, so batches straddle epochs
RAMP = np.array([0, 60, 120, 180], np.uint8)


def _dataset(n: int = N) -> Dataset:
    """Image i: channel 0 is i everywhere, channel 1 a left-to-right ramp (shows flips), channel 2 its label·10."""
    images = np.zeros((n, 4, 4, 3), np.uint8)
    images[..., 0] = np.arange(n)[:, None, None]
    images[..., 1] = RAMP
    labels = np.arange(n) % 3
    images[..., 2] = (labels * 10)[:, None, None]
    return Dataset("synthetic", images=images, labels=labels.astype(np.int64), class_names=["a", "b", "c"])


def _ids(batch) -> list[int]:
    """Dataset index of each sample, read back from channel 0."""
    return torch.round((batch.x[:, 0, 0, 0] + 1) * 127.5).long().tolist()


def _take(n: int, **kwargs):
    kwargs.setdefault("device", "cpu")
    return list(itertools.islice(make_batches(kwargs.pop("dataset", _dataset()), kwargs.pop("batch_size", 16),
                                              **kwargs), n))


def _same(a, b) -> None:
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p.x, q.x, rtol=0, atol=0)
        torch.testing.assert_close(p.index, q.index, rtol=0, atol=0)
        if p.cond is None:
            assert q.cond is None
        else:
            torch.testing.assert_close(p.cond, q.cond, rtol=0, atol=0)


def test_images_are_scaled_to_minus_one_one():
    batch = _take(1, condition="class")[0]
    assert batch.x.shape == (16, 3, 4, 4) and batch.x.dtype == torch.float32
    ids = _ids(batch)
    images = torch.from_numpy(_dataset().images).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(batch.x, images[ids] / 127.5 - 1, rtol=0, atol=0)
    assert batch.index.tolist() == list(range(16)) and batch.index.dtype == torch.int64


def test_images_in_seed_001s_range_are_x_over_255():
    ids = _ids(_take(1, condition="class")[0])
    for resident in (None, 0):  # on the device and through the DataLoader
        batch = _take(1, condition="class", value_range=(0.0, 1.0), resident=resident, workers=0)[0]
        images = torch.from_numpy(_dataset().images).permute(0, 3, 1, 2).float()
        torch.testing.assert_close(batch.x, images[ids] / 255, rtol=0, atol=1e-7)


def test_restart_at_a_step_gives_the_same_batches():
    run = _take(9, seed=3, hflip=True, condition="class")
    _same(run[5:], _take(4, seed=3, hflip=True, condition="class", start_step=5))
    assert [b.index[0].item() for b in run] == [16 * s for s in range(9)]


def test_every_sample_once_per_epoch():
    ids = list(itertools.chain.from_iterable(_ids(b) for b in _take(25, seed=1)))  # 400 positions = 8 epochs
    for epoch in range(8):
        assert sorted(ids[epoch * N:(epoch + 1) * N]) == list(range(N))
    assert ids[:N] != ids[N:2 * N]  # a fresh permutation each epoch
    assert ids[:N] != sorted(ids[:N])


def test_order_depends_on_the_seed_and_equals_the_sample_order():
    a, b = _take(3, seed=0), _take(3, seed=1)
    assert _ids(a[0]) != _ids(b[0])
    order = SampleOrder(N, 0)
    expected = torch.cat([order.permutation(0), order.permutation(1)])[:48]
    assert list(itertools.chain.from_iterable(_ids(x) for x in a)) == expected.tolist()


def test_two_ranks_concatenated_equal_one_rank():
    one = _take(7, seed=2, hflip=True, condition="context")
    r0 = _take(7, seed=2, hflip=True, condition="context", rank=0, world_size=2)
    r1 = _take(7, seed=2, hflip=True, condition="context", rank=1, world_size=2)
    for whole, a, b in zip(one, r0, r1, strict=True):
        assert a.x.shape[0] == 8
        torch.testing.assert_close(whole.x, torch.cat([a.x, b.x]), rtol=0, atol=0)
        torch.testing.assert_close(whole.cond, torch.cat([a.cond, b.cond]), rtol=0, atol=0)
        assert whole.index.tolist() == a.index.tolist() + b.index.tolist()


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_equals_resident(workers):
    kwargs = dict(seed=4, hflip=True, condition="class", start_step=2)
    _same(_take(6, **kwargs), _take(6, resident=0, workers=workers, **kwargs))


def test_streaming_equals_resident_for_points():
    points = load_dataset("moons", n=37)
    kwargs = dict(dataset=points, batch_size=10, seed=1, condition="class")
    resident, streaming = _take(5, **kwargs), _take(5, resident=0, workers=0, **kwargs)
    _same(resident, streaming)
    assert resident[0].x.shape == (10, 2)


def test_hflip_is_a_pure_function_of_position():
    flipped = _take(8, seed=6, hflip=True, batch_size=32)
    halves = _take(16, seed=6, hflip=True, batch_size=16)
    torch.testing.assert_close(torch.cat([b.x for b in flipped]), torch.cat([b.x for b in halves]), rtol=0, atol=0)
    plain = _take(8, seed=6, batch_size=32)
    x, p = torch.cat([b.x for b in flipped]), torch.cat([b.x for b in plain])
    positions = torch.arange(256)
    mask = flip_mask(positions, 6)
    torch.testing.assert_close(x[mask], p[mask].flip(3), rtol=0, atol=0)
    torch.testing.assert_close(x[~mask], p[~mask], rtol=0, atol=0)
    ramp = torch.from_numpy(RAMP).float() / 127.5 - 1
    assert all(torch.equal(row, ramp.flip(0) if m else ramp) for row, m in zip(x[:, 1, 0], mask, strict=True))
    assert 0.4 < mask.float().mean().item() < 0.6
    assert not torch.equal(mask, flip_mask(positions, 7))


def test_condition_modes():
    d = _dataset()
    batch = _take(1, condition="class")[0]
    ids = torch.tensor(_ids(batch))
    assert batch.cond.dtype == torch.int64 and batch.cond.tolist() == (ids % 3).tolist()
    context = _take(1, condition="context")[0].cond
    assert context.dtype == torch.float32
    torch.testing.assert_close(context, torch.eye(3)[ids % 3])
    assert _take(1)[0].cond is None
    one_hot = Dataset("onehot", images=d.images, contexts=np.eye(3, dtype=np.float32)[d.labels])
    batch = _take(1, dataset=one_hot, condition="class")[0]
    assert batch.cond.tolist() == (torch.tensor(_ids(batch)) % 3).tolist()


def test_batch_mistakes():
    with pytest.raises(UserError) as error:
        _take(1, world_size=3)
    assert str(error.value) == "batch size 16 does not split evenly over 3 process(es); use a multiple of 3"
    with pytest.raises(UserError) as error:
        _take(1, dataset=load_dataset("moons", n=20), hflip=True)
    assert str(error.value) == "hflip mirrors images; it does not apply to the 2-D point set 'moons'"
    with pytest.raises(UserError, match="has no labels"):
        _take(1, dataset=Dataset("u", images=np.zeros((4, 2, 2, 1), np.uint8)), condition="class")


def test_batch_larger_than_the_dataset_wraps_through_several_epochs():
    batch = _take(1, dataset=_dataset(5), batch_size=12)[0]
    ids = _ids(batch)
    assert sorted(ids[:5]) == sorted(ids[5:10]) == list(range(5))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_resident_and_streaming_equal_cpu():
    kwargs = dict(seed=8, hflip=True, condition="class", start_step=3)
    cpu = _take(5, **kwargs)
    for extra in ({}, {"resident": 0, "workers": 2}):
        cuda = _take(5, device="cuda", **kwargs, **extra)
        assert cuda[0].x.device.type == "cuda"
        _same(cpu, [type(b)(b.x.cpu(), b.cond.cpu(), b.index.cpu()) for b in cuda])
