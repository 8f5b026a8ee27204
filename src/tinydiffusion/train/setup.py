"""Turn a :class:`~tinydiffusion.config.TrainConfig` into live parts: device, data, network, schedule, loss.

Dataset facts (channels, size, classes, context length) and the schedule's T flow into the network's
config here, so nothing is typed twice; the resolved values are written back into the config that is
saved with the run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig
from ..data import Dataset, load_dataset, split_batch
from ..errors import UserError
from ..limits import check_memory
from ..models import MODELS, build_model, model_bytes
from ..objectives import CorruptLoss, DiffusionLoss, Objective
from ..schedule import NoiseSchedule
from ..value_range import DEFAULT_RANGE, parse_range


#: The step count of a --time-budget run before it is planned: large enough that the learning-rate
#: schedule (past its warm-up) stays at its peak and no preview or checkpoint falls due.
UNPLANNED_STEPS = 10**9


@dataclass
class RunParts:
    """Everything the loop needs, built once."""

    cfg: TrainConfig
    device: torch.device
    dataset: Dataset
    condition: str  # "none", "class" or "context"
    schedule: NoiseSchedule
    model: nn.Module
    objective: Objective
    total_steps: int
    steps_per_epoch: float


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → the local CUDA device when there is one, else the CPU; a clear error for unusable devices."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but PyTorch sees no CUDA device here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device {name!r} is not supported; use auto, cpu or cuda")
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def resolve_condition(requested: str, model_name: str, dataset: Dataset) -> str:
    """Which condition the run trains with: "auto" uses labels or contexts when the network takes them."""
    accepts = MODELS[model_name].conditions
    has_class = dataset.labels is not None
    has_context = dataset.contexts is not None
    if requested == "auto":
        if has_context and "context" in accepts:
            return "context"
        if (has_class or has_context) and "class" in accepts:
            return "class"
        return "none"
    if requested == "none":
        return "none"
    if requested not in accepts:
        raise UserError(f"the {model_name} network cannot take {requested} conditions; "
                        f"it takes {', '.join(sorted(accepts)) or 'none'}")
    if not (has_class or has_context):
        raise UserError(f"data.condition={requested} but {dataset.name} has no labels or context vectors")
    return requested


def model_params(cfg: TrainConfig, dataset: Dataset, schedule: NoiseSchedule, condition: str) -> dict[str, Any]:
    """The network's config: the recipe's settings plus the facts of the data and the schedule."""
    fields = {f.name for f in dataclasses.fields(MODELS[cfg.model.name].config)}
    facts = {"num_classes": 0, "context_dim": 0, **dataset.facts(condition), "num_timesteps": schedule.num_timesteps}
    params = dict(cfg.model.params)
    params.update({k: v for k, v in facts.items() if k in fields})
    return params


def build_schedule(cfg: TrainConfig) -> NoiseSchedule:
    """The noise schedule of the run (warns when ᾱ_T is far from 0)."""
    values = {k: v for k, v in dataclasses.asdict(cfg.schedule).items() if v is not None}
    return NoiseSchedule.from_config(values)


def build_objective(cfg: TrainConfig, schedule: NoiseSchedule) -> Objective:
    o = cfg.objective
    if o.kind == "corrupt":
        return CorruptLoss(schedule.num_timesteps, parse_range(cfg.data.range))
    return DiffusionLoss(schedule, o.prediction, o.min_snr_gamma, o.antithetic, o.cond_drop_prob)


#: Copies of the weights training holds: the weights, their gradients, Adam's two moments and the EMA.
TRAINING_COPIES = 5
#: Batch-sized tensors alive at once at the least: x_0, the noise, x_t and the network's prediction.
BATCH_COPIES = 4


def check_training_memory(cfg: TrainConfig, dataset: Dataset) -> None:
    """Refuse a network or a batch that cannot fit, before either is allocated (sized on the meta device).

    The estimate is a lower bound (activations come on top), so what it refuses can never fit.
    """
    try:
        weights = model_bytes(cfg.model.name, cfg.model.params)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"the [model] settings do not build a {cfg.model.name} network ({type(exc).__name__}: "
                        f"{str(exc)[:160]})") from None
    check_memory(TRAINING_COPIES * weights, f"the {cfg.model.name} network these [model] settings describe "
                 f"({weights / 1e9:,.1f} GB of weights, held {TRAINING_COPIES} times in training)",
                 "make the network smaller")
    per_sample = 4 * (dataset.points.shape[1] if dataset.kind == "points" else dataset.images[0].size)
    check_memory(BATCH_COPIES * cfg.optim.batch_size * per_sample,
                 f"optim.batch_size {cfg.optim.batch_size:,} (--batch-size)", "lower the batch size")


def setup_run(cfg: TrainConfig, device: torch.device, world_size: int) -> RunParts:
    """Load the data and build network, schedule and loss for ``cfg`` (resolving ``cfg.model.params``)."""
    split_batch(cfg.optim.batch_size, world_size, cfg.optim.grad_accum)  # before the data is loaded: fail fast
    d = cfg.data
    dataset = load_dataset(d.spec, image_size=d.image_size, split=d.split, strict=d.strict, channels=d.channels,
                           center_crop=d.center_crop, resize_filter=d.resize_filter, n=d.n, seed=cfg.runtime.seed)
    if cfg.model.name not in MODELS:
        raise UserError(f"unknown model {cfg.model.name!r}; choose one of {', '.join(MODELS)}")
    if dataset.kind == "points" and parse_range(d.range) != DEFAULT_RANGE:
        raise UserError(f"data.range sets what pixels become; {dataset.name} is a set of 2-D points, so leave it out")
    schedule = build_schedule(cfg)
    condition = resolve_condition(d.condition, cfg.model.name, dataset)
    cfg.model.params = model_params(cfg, dataset, schedule, condition)
    check_training_memory(cfg, dataset)
    torch.manual_seed(cfg.runtime.seed)  # the initial weights follow the run's seed
    model = build_model(cfg.model.name, cfg.model.params)
    steps_per_epoch = len(dataset) / cfg.optim.batch_size
    if cfg.optim.time_budget_minutes is not None:
        total = UNPLANNED_STEPS  # until the first steps have been timed (train/budget.py)
    elif cfg.optim.steps is not None:
        total = cfg.optim.steps
    else:
        total = max(1, math.ceil(cfg.optim.epochs * steps_per_epoch))
    return RunParts(cfg, device, dataset, condition, schedule.to(device), model.to(device),
                    build_objective(cfg, schedule.to(device)), total, steps_per_epoch)
