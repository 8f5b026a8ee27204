"""The Forward process view: how much of an image is left at step t, step by step and in one jump.

Seed 000 noises an image step by step, x_t = √(1 − β_t)·x_{t−1} + √β_t·ε_t (DDPM eq. 2), and then
jumps there in closed form, x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε (DDPM eq. 4). The two agree exactly, not
only in distribution, when the jump uses the chain's own noise merged into one Gaussian:

    ε̄_t = (√(α_t (1 − ᾱ_{t−1}))·ε̄_{t−1} + √β_t·ε_t) / √(1 − ᾱ_t),      ε̄_0 = ε_0,

(the sum of two independent Gaussians is one Gaussian with the summed variance, and
α_t (1 − ᾱ_{t−1}) + β_t = 1 − ᾱ_t, so ε̄_t is again standard normal). The view shows the chain and the
closed form with ε̄_t side by side, and their difference (float rounding only). The chain's noise is
the one ``tinydiffusion show forward`` draws for the same seed (stream ``Stream.FORWARD_STEP``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from ..config import build_config, from_dict, read_toml, recipe_names
from ..data import load_dataset
from ..data.toy2d import TOY_SETS
from ..errors import ScheduleWarning, UserError
from ..rng import SeededNoise, Stream, stream
from ..schedule import NoiseSchedule
from ..viz.grid import make_grid, to_uint8
from ..viz.plots import DPI, figure_image, schedule_figure
from .runs import RunRegistry

#: Schedules the user builds from a kind, T and (for β schedules) the β range.
CUSTOM_KINDS = ("linear", "cosine", "sigmoid", "scaled_linear")
#: The longest custom schedule (the chain is computed once per image, schedule and seed, then cached).
MAX_T = 4000
#: Pictures are enlarged to about this many pixels a side.
PICTURE_PIXELS = 160


@dataclass(frozen=True)
class DataSource:
    """A set of images to take x_0 from: a spec with the loading settings of a run (hashable, cached)."""

    spec: str
    image_size: int | None = None
    channels: int | None = None
    resize_filter: str = "bilinear"
    center_crop: bool = False


BUNDLED_SOURCES = {
    "fashion-mnist-mini, 16 px (seed 000)": DataSource("fashion-mnist-mini", 16),
    "fashion-mnist-mini, 28 px": DataSource("fashion-mnist-mini", 28),
    "dcss-tiles, 16 px": DataSource("dcss-tiles", 16),
    "dcss-tiles, 32 px": DataSource("dcss-tiles", 32),
}


def describe_schedule(config: dict[str, Any]) -> str:
    """``linear β 0.0001→0.02, T=150`` and the like."""
    kind = config.get("kind", "linear")
    text = kind
    if kind in ("linear", "sigmoid", "scaled_linear") and config.get("beta_start") is not None:
        text += f" β {config['beta_start']:g}→{config['beta_end']:g}"
    if config.get("zero_terminal_snr"):
        text += ", zero terminal SNR"
    return f"{text}, T={config.get('timesteps', 1000)}"


def schedule_options(registry: RunRegistry) -> dict[str, dict[str, Any]]:
    """Named schedule configs: each run's own, then every recipe's (``tinydiffusion recipes``)."""
    options: dict[str, dict[str, Any]] = {}
    for run in registry.runs.values():
        if run.has_model:
            config = run.load().meta["schedule"]
            options[f"run {run.name}: {describe_schedule(config)}"] = config
    for name in recipe_names():
        values = dataclasses.asdict(build_config(name).schedule)
        config = {k: v for k, v in values.items() if v is not None}
        options[f"recipe {name}: {describe_schedule(config)}"] = config
    return options


def custom_schedule(kind: str, T: float, beta_start: float | None, beta_end: float | None) -> dict[str, Any]:
    """The config of a schedule built in the page: ``kind`` with ``T`` steps and, for β schedules, the β range."""
    if kind not in CUSTOM_KINDS:
        raise UserError(f"unknown schedule kind {kind!r}; choose one of {', '.join(CUSTOM_KINDS)}")
    if T is None or float(T) != int(float(T)) or not 1 <= int(float(T)) <= MAX_T:
        raise UserError(f"T must be a whole number from 1 to {MAX_T}, got {T!r}")
    config: dict[str, Any] = {"kind": kind, "timesteps": int(float(T))}
    if kind != "cosine":
        if beta_start is None or beta_end is None or not 0 < beta_start <= beta_end <= 1:
            raise UserError(f"the β range must satisfy 0 < β_start ≤ β_end ≤ 1, got {beta_start}..{beta_end}")
        config.update(beta_start=float(beta_start), beta_end=float(beta_end))
    return config


def data_options(registry: RunRegistry) -> dict[str, DataSource]:
    """Image sets to noise: the bundled ones, then the data of each image run (as it was loaded to train)."""
    options = dict(BUNDLED_SOURCES)
    for run in registry.runs.values():
        source = _run_source(run.path, run.load().meta["data"] if run.has_model else None)
        if source is not None:
            options[f"run {run.name}: {source.spec}"] = source
    return options


def _run_source(path: Any, data_meta: dict[str, Any] | None) -> DataSource | None:
    config_file = path / "config.toml"
    if config_file.is_file():
        d = from_dict(read_toml(config_file)).data
        if d.spec in TOY_SETS:
            return None
        return DataSource(d.spec, d.image_size, d.channels, d.resize_filter, d.center_crop)
    if data_meta is None or data_meta.get("kind") == "points":
        return None
    return DataSource(data_meta["spec"], data_meta.get("image_size"), data_meta.get("channels"))


@functools.lru_cache(maxsize=8)
def load_images(source: DataSource) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """uint8 (N, H, W, C) images, labels or None, and class names of a source (cached)."""
    dataset = load_dataset(source.spec, image_size=source.image_size, channels=source.channels,
                           resize_filter=source.resize_filter, center_crop=source.center_crop)
    if dataset.images is None:
        raise UserError(f"{source.spec} is a set of 2-D points; see it in the 2-D view")
    return dataset.images, dataset.class_ids(), tuple(dataset.class_names or ())


def pick_image(source: DataSource, index: float) -> tuple[Tensor, str]:
    """Image ``index`` of a source as a (1, C, H, W) tensor in [-1, 1], and a caption with its class."""
    images, labels, names = load_images(source)
    if index is None or float(index) != int(float(index)) or not 0 <= int(float(index)) < len(images):
        raise UserError(f"the image number must be a whole number from 0 to {len(images) - 1}, got {index!r}")
    i = int(float(index))
    x0 = torch.from_numpy(images[i]).permute(2, 0, 1)[None].float() / 127.5 - 1
    label = "" if labels is None else f", class {names[labels[i]] if labels[i] < len(names) else labels[i]}"
    return x0, f"image {i} of {len(images):,}{label}"


def forward_chain(schedule: NoiseSchedule, x0: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """Every x_t of the step-by-step chain (DDPM eq. 2) and its merged noise ε̄_t, each (T, *x0.shape[1:]).

    ``x0`` is one image (1, C, H, W). Step t's noise is ``SeededNoise([seed])`` on stream
    (Stream.FORWARD_STEP, t), as :func:`tinydiffusion.viz.forward.forward_trajectory` draws it, and ε̄_t
    follows the recursion in the module docstring, so x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε̄_t.
    """
    noise = SeededNoise([seed])
    ab, betas = schedule.alpha_bar64, schedule.betas64
    x, eps_bar = x0.float(), torch.zeros_like(x0, dtype=torch.float64)
    chain, merged = [], []
    for t in range(schedule.num_timesteps):
        eps = noise.randn(x0.shape[1:], stream(Stream.FORWARD_STEP, t)).to(x)
        x = schedule.q_step(x, t, eps)
        ab_prev = float(ab[t - 1]) if t > 0 else 1.0
        keep = math.sqrt((1 - float(betas[t])) * (1 - ab_prev))
        eps_bar = (keep * eps_bar + math.sqrt(float(betas[t])) * eps.double()) / math.sqrt(1 - float(ab[t]))
        chain.append(x[0])
        merged.append(eps_bar[0].float())
    return torch.stack(chain), torch.stack(merged)


@functools.lru_cache(maxsize=6)
def _cached_chain(source: DataSource, index: int, schedule_json: str, seed: int) -> tuple[Tensor, Tensor]:
    schedule = NoiseSchedule.from_config(json.loads(schedule_json), warn=False)
    x0, _ = pick_image(source, index)
    return forward_chain(schedule, x0, seed)


@dataclass
class ForwardResult:
    """What the Forward view shows at one t (pictures enlarged ``scale`` times)."""

    t: int
    num_timesteps: int  #: T of the schedule
    caption: str
    x0: np.ndarray  #: uint8 (H·s, W·s, C)
    noise: np.ndarray  #: ε̄_t / 3 as an image (so ±3σ spans black to white)
    chain: np.ndarray  #: x_t step by step
    closed: np.ndarray  #: √ᾱ_t x_0 + √(1 − ᾱ_t) ε̄_t
    scale: int
    table: list[tuple[str, str]]  #: (quantity, value): t, β_t, ᾱ_t, √ᾱ_t, √(1 − ᾱ_t), SNR, log SNR, difference
    max_difference: float  #: max |chain − closed form| in float32
    plot: Image.Image  #: β, ᾱ and log SNR against t, with a line at t
    note: str  #: a warning about the schedule (ᾱ_T far from 0), or ""

    def markdown(self) -> str:
        """The quantities at t as a one-row Markdown table."""
        names, values = zip(*self.table)
        return "| " + " | ".join(names) + " |\n|" + "---|" * len(names) + "\n| " + " | ".join(values) + " |"


def build_schedule(config: dict[str, Any]) -> tuple[NoiseSchedule, str]:
    """The schedule of ``config`` and the text of its warning, if it warns (ᾱ_T far from 0)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ScheduleWarning)
        schedule = NoiseSchedule.from_config(config)
    return schedule, " ".join(str(w.message) for w in caught if issubclass(w.category, ScheduleWarning))


def forward_at(source: DataSource, index: float, config: dict[str, Any], t: float, seed: float = 0) -> ForwardResult:
    """Image ``index`` of ``source`` noised to step ``t`` (clamped to 0..T−1) by the schedule ``config``."""
    schedule, note = build_schedule(config)
    if seed is None or float(seed) != int(float(seed)) or float(seed) < 0:
        raise UserError(f"the seed must be a whole number from 0, got {seed!r}")
    x0, caption = pick_image(source, index)
    T = schedule.num_timesteps
    t = min(max(int(float(t or 0)), 0), T - 1)
    key = json.dumps(config, sort_keys=True)
    chain, merged = _cached_chain(source, int(float(index)), key, int(float(seed)))
    x_chain, eps_bar = chain[t][None], merged[t][None]
    x_closed = schedule.q_sample(x0, torch.tensor(t), eps_bar)
    difference = float((x_chain - x_closed).abs().max())
    scale = max(1, PICTURE_PIXELS // x0.shape[-1])

    def picture(x: Tensor) -> np.ndarray:
        return make_grid(to_uint8(x), padding=0, scale=scale)

    ab = float(schedule.alpha_bar64[t])
    table = [("t", f"{t} of 0..{T - 1}"), ("β_t", f"{float(schedule.betas64[t]):.4g}"), ("ᾱ_t", f"{ab:.4g}"),
             ("√ᾱ_t (signal)", f"{math.sqrt(ab):.4f}"), ("√(1−ᾱ_t) (noise)", f"{math.sqrt(1 - ab):.4f}"),
             ("SNR = ᾱ_t/(1−ᾱ_t)", f"{ab / (1 - ab):.4g}"), ("log SNR", f"{math.log(ab) - math.log1p(-ab):.3f}"),
             ("max \\|chain − closed form\\|", f"{difference:.2g}")]
    return ForwardResult(t, T, caption, picture(x0), picture(eps_bar / 3), picture(x_chain), picture(x_closed), scale,
                         table, difference, _marked_plot(key, t), note)


@functools.lru_cache(maxsize=8)
def _schedule_plot(schedule_json: str) -> tuple[Image.Image, list[tuple[float, float, float, float, float, float]]]:
    """The schedule plot (drawn once per schedule: matplotlib's layout takes about a second) and, per
    panel, its x data range and pixel box (x_min, x_max, left, right, top, bottom)."""
    fig = schedule_figure(NoiseSchedule.from_config(json.loads(schedule_json), warn=False))
    fig.set_dpi(DPI)
    image = figure_image(fig)  # draws the figure, so the panels have their final places
    boxes = []
    for ax in fig.axes:
        box = ax.get_window_extent()
        x_min, x_max = ax.get_xlim()
        boxes.append((x_min, x_max, box.x0, box.x1, image.height - box.y1, image.height - box.y0))
    return image, boxes


def _marked_plot(schedule_json: str, t: int) -> Image.Image:
    """The schedule plot with a vertical line at ``t`` in every panel."""
    image, boxes = _schedule_plot(schedule_json)
    marked = image.copy()
    draw = ImageDraw.Draw(marked)
    for x_min, x_max, left, right, top, bottom in boxes:
        x = left + (t - x_min) / (x_max - x_min) * (right - left)
        draw.line([(x, top), (x, bottom)], fill=(0, 0, 0), width=2)
    return marked
