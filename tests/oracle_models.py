"""Deterministic stand-ins for a trained network, shared by the sampler tests.

* :class:`SmoothEps` — a smooth, non-linear ε-model whose samples stay O(1) under every sampler, so
  that an absolute tolerance of 1e-5 means something when comparing against diffusers.
* :class:`IdealDenoiser` — the exact minimiser of the ε-MSE loss for a finite dataset: under
  q(x_t | x_0) = N(√ᾱ x_0, (1 − ᾱ) I) with x_0 uniform over the points y_k,

      E[x_0 | x_t] = Σ_k w_k y_k,   w = softmax_k(−‖x_t − √ᾱ y_k‖² / (2(1 − ᾱ))),
      ε̂(x_t, t) = (x_t − √ᾱ E[x_0 | x_t]) / √(1 − ᾱ),

  so a correct sampler driven by it must end on the data points.

Both look ᾱ up in the float64 table of the schedule; a fractional timestep (the σ-space samplers)
is read with σ_t = √((1 − ᾱ_t)/ᾱ_t) interpolated linearly in log σ between the neighbouring steps,
the convention documented by ``NoiseSchedule.t_from_sigma``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from tinydiffusion import NoiseSchedule


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Run a test module with one intra-op thread (import this fixture into the module to use it).

    These tests make thousands of calls on tensors of a few hundred numbers: threads only add
    overhead, and on a busy 2-core machine a spinning second thread makes them 5-30× slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def alpha_bar_at(schedule: NoiseSchedule, t: Tensor) -> Tensor:
    """float64 ᾱ at integer or fractional timesteps ``t`` (shape (B,)), written out independently."""
    ab = schedule.alpha_bar64
    if not t.dtype.is_floating_point:
        return ab[t.long().cpu()]
    t = t.double().cpu()
    log_sigma = 0.5 * ((1 - ab) / ab).log()
    lo = t.floor().long().clamp(0, len(ab) - 1)
    hi = (lo + 1).clamp(max=len(ab) - 1)
    w = t - lo.double()
    sigma = ((1 - w) * log_sigma[lo] + w * log_sigma[hi]).exp()
    return 1 / (1 + sigma**2)


def _per_sample(values: Tensor, x: Tensor) -> Tensor:
    return values.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


class SmoothEps:
    """ε(x, t) = √(1−ᾱ) x / (ᾱ c² + 1 − ᾱ) + √ᾱ (½ tanh x + 0.1 sin(t/100)).

    The first term is the exact ε of Gaussian data N(0, c² I); the second is a bounded non-linear
    perturbation scaled by √ᾱ, so x̂_0 = (x − √(1−ᾱ) ε)/√ᾱ stays O(1) even at t = T − 1.
    Elementwise: a sample's output never depends on the rest of its batch.
    """

    def __init__(self, schedule: NoiseSchedule, c2: float = 0.25):
        self.schedule, self.c2 = schedule, c2
        self.calls = 0

    def __call__(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        self.calls += 1
        ab = _per_sample(alpha_bar_at(self.schedule, t), x)
        tt = _per_sample(t.double().cpu(), x)
        gaussian = (1 - ab).sqrt() * x / (ab * self.c2 + 1 - ab)
        return gaussian + ab.sqrt() * (0.5 * torch.tanh(x) + 0.1 * torch.sin(tt / 100))


class IdealDenoiser:
    """The optimal ε̂ for data uniform over the rows of ``points`` (N, *shape); computed in float64."""

    def __init__(self, schedule: NoiseSchedule, points: Tensor):
        self.schedule = schedule
        self.points = points.double()

    def x0_hat(self, x: Tensor, t: Tensor) -> Tensor:
        """E[x_0 | x_t] (the posterior mean over the points)."""
        ab = alpha_bar_at(self.schedule, t).to(x.device).reshape(-1, 1)
        xf, yf = x.double().flatten(1), self.points.to(x.device).flatten(1)
        sq = (xf.unsqueeze(1) - ab.sqrt().unsqueeze(-1) * yf.unsqueeze(0)).square().sum(-1)
        w = torch.softmax(-sq / (2 * (1 - ab)), dim=1)
        return (w @ yf).reshape(x.shape)

    def __call__(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        ab = _per_sample(alpha_bar_at(self.schedule, t), x.double())
        eps = (x.double() - ab.sqrt() * self.x0_hat(x, t)) / (1 - ab).sqrt()
        return eps.to(x.dtype)

    def distance_to_data(self, x: Tensor) -> Tensor:
        """For each sample, the RMS distance (per coordinate) to its nearest data point, and that point's index."""
        d = torch.cdist(x.double().flatten(1), self.points.flatten(1)) / math.sqrt(x[0].numel())
        return d.min(dim=1)


def spread_points(n: int, shape: tuple[int, ...], seed: int = 0, min_distance: float = 1.0) -> Tensor:
    """``n`` points in [−1, 1]^shape, pairwise at least ``min_distance`` apart (RMS per coordinate ×√dim)."""
    g = torch.Generator().manual_seed(seed)
    while True:
        pts = torch.rand((n, *shape), generator=g, dtype=torch.float64) * 2 - 1
        d = torch.cdist(pts.flatten(1), pts.flatten(1))
        if float(d[~torch.eye(n, dtype=torch.bool)].min()) >= min_distance:
            return pts
