"""Pictures of the forward process q on real images (seeds 000 and 003).

Seed 000 noises one Fashion-MNIST image step by step, x_t = √(1 − β_t)·x_{t−1} + √β_t·ε (DDPM eq. 2),
shows all T = 150 steps in a 10 × 15 grid and as a GIF, then shows that the closed form
x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε (DDPM eq. 4) gives the same distribution in one jump. Seed 003 shows a
batch at 25, 50, 75 and 100 % of the process. The math is :meth:`NoiseSchedule.q_step` and
:meth:`NoiseSchedule.q_sample`; this module only draws the noise and lays out the pictures.

Noise comes from ``generator``: a ``torch.Generator`` (``None``: torch's global generator), or a
:class:`~tinydiffusion.rng.SeededNoise` with one seed per image, whose pictures then do not depend on
the batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from ..errors import UserError
from ..rng import SeededNoise, Stream, stream
from ..schedule import TERMINAL_ALPHA_BAR_WARN, NoiseSchedule
from .gif import save_gif, subsample_indices
from .grid import image_table, labelled_grid, make_grid, tile_scale, to_uint8
from .samples import sample_grid, tile_table

#: Text size of the labels under the small tiles of :func:`forward_grid`.
TILE_FONT_SIZE = 11

NoiseSource = torch.Generator | SeededNoise | None


def _noise(generator: NoiseSource, like: Tensor, purpose: int, k: int) -> Tensor:
    """Standard normal noise shaped like ``like``; with per-sample seeds it depends on (seed, purpose, k)."""
    if isinstance(generator, SeededNoise):
        if len(generator) != like.shape[0]:
            raise UserError(f"{len(generator)} seeds for a batch of {like.shape[0]} images")
        return generator.randn(like.shape[1:], stream(purpose, k)).to(like)
    device = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=device).to(like)


def _batch(x0: Tensor) -> Tensor:
    if x0.dim() == 3:
        x0 = x0.unsqueeze(0)
    if x0.dim() != 4:
        raise ValueError(f"expected images shaped (B, C, H, W) or (C, H, W), got {tuple(x0.shape)}")
    return x0.float()


def _check_timesteps(schedule: NoiseSchedule, timesteps: Sequence[int]) -> list[int]:
    ts = [int(t) for t in timesteps]
    if not ts or min(ts) < 0 or max(ts) >= schedule.num_timesteps:
        raise UserError(f"forward-process timesteps must lie in [0, {schedule.num_timesteps - 1}]")
    return ts


def _steps(schedule: NoiseSchedule, x0: Tensor, generator: NoiseSource, last: int) -> Iterator[tuple[int, Tensor]]:
    """Yield (t, x_t) for t = 0..last, each x_t one application of q(x_t | x_{t−1}) to the previous one."""
    x = x0
    for t in range(last + 1):
        x = schedule.q_step(x, t, _noise(generator, x, Stream.FORWARD_STEP, t))
        yield t, x


def forward_trajectory(schedule: NoiseSchedule, x0: Tensor, generator: NoiseSource = None,
                       timesteps: Sequence[int] | None = None) -> Tensor:
    """x_t by applying q(x_t | x_{t−1}) (DDPM eq. 2) t + 1 times to x0, kept at ``timesteps`` (default all T).

    ``x0`` is a batch (B, ...) of images or points. Returns (len(timesteps), B, ...); one chain is run,
    so the kept frames are one trajectory.
    """
    order = list(range(schedule.num_timesteps)) if timesteps is None else _check_timesteps(schedule, timesteps)
    keep = set(order)
    frames = {t: x for t, x in _steps(schedule, x0.float(), generator, max(keep)) if t in keep}
    return torch.stack([frames[t] for t in order])


def forward_jumps(schedule: NoiseSchedule, x0: Tensor, timesteps: Sequence[int],
                  generator: NoiseSource = None) -> Tensor:
    """x_t drawn in one jump from q(x_t | x_0) (DDPM eq. 4) at each of ``timesteps``, with fresh noise each.

    ``x0`` is a batch (B, ...) of images or points. Returns (len(timesteps), B, ...).
    """
    x0 = x0.float()
    out = []
    for k, t in enumerate(_check_timesteps(schedule, timesteps)):
        noise = _noise(generator, x0, Stream.FORWARD_JUMP, k)
        out.append(schedule.q_sample(x0, torch.tensor(t), noise))
    return torch.stack(out)


def _one_image(x0: Tensor) -> Tensor:
    x0 = _batch(x0)
    if x0.shape[0] != 1:
        raise ValueError(f"expected one image, got a batch of {x0.shape[0]}")
    return x0


def alpha_bar_text(value: float) -> str:
    """ᾱ_t for a label: two decimals, or two significant digits below 0.01 (``0.62``, ``4.2e-05``)."""
    return f"{value:.2f}" if value >= 0.01 else f"{value:.2g}"


def step_label(schedule: NoiseSchedule, t: int, sep: str = "\n") -> str:
    """``"t=37\nᾱ=0.62"``: a timestep and how much of the clean image's variance survives at it."""
    return f"t={t}{sep}ᾱ={alpha_bar_text(schedule.alpha_bar_at(t))}"


def schedule_caption(schedule: NoiseSchedule) -> str:
    """One or two lines on where the schedule ends: ᾱ at the last step and the share of the image left in x_T."""
    T = schedule.num_timesteps
    last = schedule.alpha_bar_at(T - 1)
    kind = schedule.config.get("kind", "custom")
    betas = schedule.betas64
    desc = f"{kind} schedule, T={T}, β from {float(betas[0]):.2g} to {float(betas[-1]):.2g}"
    text = f"{desc}: ᾱ at t={T - 1} is {alpha_bar_text(last)}, so x_T keeps √ᾱ = {math.sqrt(last):.0%} of the image"
    if last > TERMINAL_ALPHA_BAR_WARN:
        text += "\n(samplers start from pure noise, so a schedule meant for sampling should end with ᾱ near 0)"
    return text


def forward_grid(schedule: NoiseSchedule, x0: Tensor, nrows: int = 10, ncols: int = 15,
                 generator: NoiseSource = None, *, scale: int | None = None) -> Image.Image:
    """Seed 000's grid of the step-by-step forward process of one image, row-major, x_0 … x_{T−1}.

    With T ≤ nrows · ncols every step is shown (seed 000: T = 150 in 10 × 15); with a longer schedule
    nrows · ncols evenly spaced steps, always with the first and the last. Each tile is enlarged to
    :func:`~.grid.tile_scale` (unless ``scale`` is given) and labelled with its t and ᾱ_t.
    """
    keep = subsample_indices(schedule.num_timesteps, nrows * ncols)
    frames = to_uint8(forward_trajectory(schedule, _one_image(x0), generator, keep)[:, 0])
    scale = scale or tile_scale(frames.shape[1])
    tiles = [make_grid(f[None], padding=0, scale=scale) for f in frames]
    return tile_table(tiles, [step_label(schedule, t) for t in keep], ncols, size=TILE_FONT_SIZE)


def _default_timesteps(schedule: NoiseSchedule, timesteps: Sequence[int] | None, count: int) -> list[int]:
    return list(timesteps) if timesteps is not None else subsample_indices(schedule.num_timesteps, count)


def forward_side_by_side(schedule: NoiseSchedule, x0: Tensor, timesteps: Sequence[int] | None = None,
                         generator: NoiseSource = None, *, scale: int | None = None) -> Image.Image:
    """Seed 000's comparison: the step-by-step chain (eq. 2) above the closed-form jump (eq. 4) at ``timesteps``.

    Both rows start from the same clean image; the two processes use independent noise, so the images
    differ pixel by pixel but match in how noisy they look (the same distribution q(x_t | x_0)).
    ``timesteps`` defaults to 8 evenly spaced steps from 0 to T − 1; columns are labelled with t and ᾱ_t.
    """
    x0 = _one_image(x0)
    ts = _default_timesteps(schedule, timesteps, 8)
    chain = to_uint8(forward_trajectory(schedule, x0, generator, ts)[:, 0])
    jump = to_uint8(forward_jumps(schedule, x0, ts, generator)[:, 0])
    clean = to_uint8(x0)[0]
    scale = scale or tile_scale(clean.shape[0])
    rows = [[clean, *chain], [clean, *jump]]
    cells = [[make_grid(im[None], padding=0, scale=scale) for im in row] for row in rows]
    return image_table(cells, ["step by step\n(eq. 2)", "one jump\n(eq. 4)"],
                       ["clean\nx_0"] + [step_label(schedule, t) for t in ts])


def percent_timesteps(T: int, percents: Sequence[float]) -> list[int]:
    """The timestep of each fraction p of the process: t = int(p · T) − 1 (seed 003's ``int(percent * n_steps) - 1``).

    With 0-based timesteps p = 1 is the last step T − 1; every p must lie in [1/T, 1].
    """
    ts = [int(p * T) - 1 for p in percents]
    if not ts or any(not 0 < p <= 1 for p in percents) or min(ts) < 0:
        raise UserError(f"forward fractions must lie in [1/T, 1] with T={T}, got {', '.join(map(str, percents))}")
    return ts


def forward_percent_strip(schedule: NoiseSchedule, x0: Tensor, percents: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
                          generator: NoiseSource = None, *, scale: int | None = None) -> Image.Image:
    """Seed 003's figure: a batch of clean images, then the same batch noised to each fraction of the process.

    Each fraction is the timestep of :func:`percent_timesteps`, drawn in one jump from q(x_t | x_0)
    (DDPM eq. 4). One row per fraction, named with its t and ᾱ_t.
    """
    x0 = _batch(x0)
    ts = percent_timesteps(schedule.num_timesteps, percents)
    noisy = forward_jumps(schedule, x0, ts, generator)
    rows = [to_uint8(x0)] + [to_uint8(x) for x in noisy]
    names = ["original"] + [f"{p:.0%}: {step_label(schedule, t, ', ')}" for p, t in zip(percents, ts)]
    return labelled_grid(rows, names, scale=scale or tile_scale(x0.shape[-1]))


def forward_gif(schedule: NoiseSchedule, x0: Tensor, path: str | Path, generator: NoiseSource = None, *,
                max_frames: int = 40, scale: int | None = None, duration_ms: int = 120,
                final_hold_ms: int | None = 1500) -> Path:
    """Animate the step-by-step forward process of a batch (seed 000's GIF): the clean grid, then x_t.

    At most ``max_frames`` frames: the clean images and evenly spaced steps of one chain, always
    including t = 0 and t = T − 1. Each frame is a near-square grid under a counter (t and ᾱ_t).
    """
    if max_frames < 3:
        raise UserError(f"a forward-process GIF needs at least 3 frames (clean, t=0, t=T-1), got {max_frames}")
    x0 = _batch(x0)
    keep = subsample_indices(schedule.num_timesteps, max_frames - 1)
    frames = torch.cat([x0[None], forward_trajectory(schedule, x0, generator, keep)])
    titles = ["x_0: clean images"] + [f"x_t, {step_label(schedule, t, ' · ')}" for t in keep]
    images = [sample_grid(to_uint8(x), title=title, scale=scale) for x, title in zip(frames, titles)]
    return save_gif(images, path, duration_ms=duration_ms, final_hold_ms=final_hold_ms)
