"""Training configuration: dataclasses, recipe files, overrides, and the resolved ``config.toml``.

A run's settings come from, in order (later wins): the dataclass defaults below, a recipe
(``recipes/NAME.toml`` shipped in the package), ``--config FILE.toml``, the common flags
(``--data``, ``--steps``, …) and ``--set section.key=value`` overrides. The resolved result is
written next to the run as ``config.toml`` (the nanoGPT/EDM rule: a run says how it was made).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import tomli_w

from .value_range import parse_range
from .errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass
class DataConfig:
    """What to train on (see ``tinydiffusion.data.load_dataset``)."""

    spec: str = "fashion-mnist-mini"  #: dataset name or spec (folder:PATH, npz:PATH, sprites:IMAGES.npy[,LABELS.npy], …)
    image_size: int | None = None  #: resize images to this size (None: the dataset's own)
    split: str = "train"
    condition: str = "auto"  #: "auto" (use labels when the network takes them), "none", "class" or "context"
    hflip: bool = False  #: random horizontal flips
    channels: int | None = None  #: force 1 (grey) or 3 (RGB) channels
    center_crop: bool = False  #: crop non-square images to a centred square before resizing
    resize_filter: str = "bilinear"  #: "bilinear", "nearest" (pixel art) or "lanczos"
    n: int | None = None  #: points in a 2-D set
    strict: bool = False  #: fail on the first unreadable file instead of skipping it
    #: what pixels become for the network: "-1,1" (x/127.5 − 1) or "0,1" (x/255, seed 001's ToTensor range)
    range: str = "-1,1"


@dataclass
class ModelSection:
    """The network by name and its settings (the keys of its config dataclass); dataset facts fill the rest."""

    name: str = "unet"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScheduleConfig:
    """The noise schedule (see :class:`tinydiffusion.schedule.NoiseSchedule`)."""

    kind: str = "linear"  #: linear, scaled_linear, cosine, sigmoid or custom
    timesteps: int = 1000
    beta_start: float | None = None
    beta_end: float | None = None
    betas: list[float] | None = None  #: the custom schedule's β
    zero_terminal_snr: bool = False
    convention: str = "zero-based"  #: "one-based" maps seed 002's t = 1..T


@dataclass
class ObjectiveConfig:
    """The training loss (see :mod:`tinydiffusion.objectives`)."""

    kind: str = "diffusion"  #: "diffusion" (ε/x0/v regression) or "corrupt" (seed 001, no schedule)
    prediction: str = "epsilon"  #: what the network predicts: epsilon, x0 or v
    min_snr_gamma: float | None = None  #: Min-SNR-γ weighting (Hang et al. 2023); None: plain MSE
    antithetic: bool = False  #: pair t with T−1−t (seed 004)
    cond_drop_prob: float = 0.1  #: condition dropout for classifier-free guidance


@dataclass
class OptimConfig:
    """Optimiser, learning-rate schedule and the length of training."""

    optimizer: str = "adamw"  #: "adam" or "adamw"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  #: constant, cosine, linear (to 0 per step) or linear-epoch (seed 002: per epoch)
    warmup_steps: int = 0
    grad_clip: float = 1.0  #: clip the global gradient norm at this value (0: no clipping)
    grad_accum: int = 1  #: micro-batches per optimiser step (batch_size is split into them)
    batch_size: int = 128  #: images per optimiser step, over all processes
    steps: int | None = None  #: optimiser steps (or give epochs)
    epochs: float | None = None  #: passes over the data (converted to steps)
    #: Train for this many minutes of wall-clock time instead (it wins over steps and epochs): the run
    #: measures its own speed over the first steps and plans the step count (and so the learning-rate
    #: schedule) to end on time; the plan becomes ``steps`` in the saved config.toml.
    time_budget_minutes: float | None = None


@dataclass
class EMAConfig:
    """Exponential moving average of the weights; what ``model.safetensors`` holds when enabled.

    Its length is either a per-step ``decay`` (with an optional warm-up) or, when ``halflife_images``
    is set, a half-life counted in training images with a ramp-up (Karras et al. 2022, 2024): the
    half-life is at most ``rampup`` × the images seen so far, so the average never reaches back
    further than a fixed share of the run, whatever its length.
    """

    enabled: bool = True
    decay: float = 0.999  #: the largest per-step decay
    #: decay_s = min(decay, (1 + s)/(10 + s)): an early EMA follows the weights closely instead of
    #: averaging in the noise of initialisation (short runs sample from a useful EMA).
    warmup: bool = True
    halflife_images: float | None = None  #: half-life of the average in training images (replaces decay)
    rampup: float | None = None  #: with halflife_images: cap the half-life at rampup × images seen


@dataclass
class SampleConfig:
    """How this run samples by default (previews, ``tinydiffusion sample``, ``eval``)."""

    sampler: str = "ddim"
    steps: int | None = 50
    eta: float = 0.0
    guidance: float | None = None  #: classifier-free guidance weight w (None or 1: plain conditional)
    spacing: str = "trailing"
    variance: str = "beta_tilde"  #: DDPM σ²: beta_tilde or beta
    clip_x0: bool = False


@dataclass
class PreviewConfig:
    """Sample grids written during training (from EMA weights and, with ``raw``, the raw weights)."""

    every: int | None = None  #: steps between previews (None: about 4 per run, and at the end)
    n: int = 64  #: samples per preview grid
    raw: bool = True
    seed: int = 0
    #: "auto": DDIM with ``steps`` steps, or the run's own sampler when it needs no more network calls
    #: (seed 001's 5-step x0-step, DPM-Solver++ in 20); or a sampler name, run with ``steps`` steps
    sampler: str = "auto"
    steps: int | None = 20  #: steps of the preview sampler (None: the named sampler's default)
    #: a scheduled preview is skipped while previews have taken more than this share of the run's time
    max_share: float = 0.1
    #: columns of a strip of the reverse process of the first sample beside each grid (seed 000: 15,
    #: seed 004: 10), written as samples/step-XXXXXXXX-strip.png; 0: none
    strip: int = 0


@dataclass
class LogConfig:
    """Logs and checkpoints."""

    every: int = 50  #: steps between log.csv rows
    tensorboard: str = "auto"  #: "auto" (when the tensorboard package is installed), "on" or "off"
    checkpoint_every: int | None = None  #: steps between resumable checkpoints (None: about 4 per run)
    keep_last: int = 3  #: resumable checkpoints kept
    progress: bool = True  #: tqdm progress bar


@dataclass
class RuntimeConfig:
    """Where and how fast."""

    device: str = "auto"  #: auto, cpu, cuda, cuda:N
    seed: int = 0
    amp: str = "auto"  #: "auto" (bf16 on CUDA, off on CPU), "bf16" or "off"
    compile: bool = False  #: torch.compile the network
    channels_last: bool = False
    threads: int | None = None  #: CPU threads (None: PyTorch's default)


@dataclass
class TrainConfig:
    """Everything a training run needs; ``config.toml`` in a run directory is this, resolved."""

    recipe: str = "custom"
    description: str = ""
    out: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    log: LogConfig = field(default_factory=LogConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


SECTIONS = ("data", "model", "schedule", "objective", "optim", "ema", "sample", "preview", "log", "runtime")
#: The command-line flags of ``tinydiffusion train`` that set a setting (for messages that name what the user gave).
FLAG_NAMES = {"data.spec": "--data", "optim.steps": "--steps", "optim.epochs": "--epochs",
              "optim.batch_size": "--batch-size", "runtime.device": "--device", "runtime.seed": "--seed",
              "optim.time_budget_minutes": "--time-budget"}


# ---------------------------------------------------------------------------------------- recipes
def recipe_names() -> list[str]:
    """The recipes shipped in the package, sorted."""
    return sorted(p.name[:-5] for p in resources.files("tinydiffusion.recipes").iterdir() if p.name.endswith(".toml"))


def recipe_dict(name: str) -> dict[str, Any]:
    """The raw TOML of recipe ``name``."""
    path = resources.files("tinydiffusion.recipes") / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"unknown recipe {name!r}; run 'tinydiffusion recipes' to list them "
                        f"({', '.join(recipe_names())})")
    return tomllib.loads(path.read_text(encoding="utf-8"))


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict, with one clear error when it is missing or malformed."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {p} does not exist")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"config file {p} is not valid TOML: {exc}") from None


# ---------------------------------------------------------------------------------------- merging
def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a dataclass field's type hint, converting lists to tuples and ints to floats."""
    origin = get_origin(hint)
    if origin is Union or str(origin) == "types.UnionType":
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except UserError:
                continue
        raise UserError(f"{where}: {value!r} is not a valid value (expected {_describe(hint)})")
    if hint is Any:
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        args = [a for a in get_args(hint) if a is not Ellipsis]
        item = args[0] if args else Any
        items = [_coerce(v, item, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"{where}: expected a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise UserError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{where}: expected text, got {value!r}")
    return value


def _describe(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("NoneType", "none")


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    """Set the fields of dataclass ``obj`` from ``values``; unknown keys are an error."""
    hints = get_type_hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    for key, value in values.items():
        if key not in names:
            raise UserError(f"unknown setting {where}.{key}; {where} has {', '.join(names)}")
        setattr(obj, key, _coerce(value, hints[key], f"{where}.{key}"))


def merge(cfg: TrainConfig, values: dict[str, Any], source: str = "config") -> TrainConfig:
    """Apply a nested dict (TOML form) onto ``cfg`` in place and return it."""
    for key, value in values.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise UserError(f"{source}: [{key}] must be a table")
            if key == "model":
                value = dict(value)
                if "name" in value:
                    name = _coerce(value.pop("name"), str, "model.name")
                    if name != cfg.model.name:
                        cfg.model.params = {}
                    cfg.model.name = name
                cfg.model.params.update(value)
            else:
                _apply(getattr(cfg, key), value, key)
        elif key in ("recipe", "description", "out"):
            setattr(cfg, key, _coerce(value, str, key))
        else:
            raise UserError(f"{source}: unknown setting {key!r}; sections are {', '.join(SECTIONS)}")
    return cfg


def parse_override(text: str) -> dict[str, Any]:
    """``section.key=value`` (value in TOML syntax, bare words as text) → a nested dict."""
    if "=" not in text:
        raise UserError(f"--set expects section.key=value, got {text!r}")
    key, raw = (s.strip() for s in text.split("=", 1))
    parts = key.split(".")
    if len(parts) not in (1, 2) or not all(parts):
        raise UserError(f"--set expects section.key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as cosine or cuda
    return {parts[0]: {parts[1]: value}} if len(parts) == 2 else {parts[0]: value}


def build_config(
    recipe: str | None = None,
    config_file: str | Path | None = None,
    flags: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
) -> TrainConfig:
    """Resolve a :class:`TrainConfig` from a recipe, a config file, flag values and ``--set`` overrides.

    ``flags`` maps settings to the values of command-line flags (None: not given); error messages name
    the flag (:data:`FLAG_NAMES`) when the value came from one, else the setting.
    """
    cfg = TrainConfig()
    given: dict[str, str] = {}
    if recipe is None and config_file is None:
        recipe = "quickstart"
    if recipe is not None:
        merge(cfg, recipe_dict(recipe), f"recipe {recipe}")
        cfg.recipe = recipe
    if config_file is not None:
        merge(cfg, read_toml(config_file), str(config_file))
    for section_key, value in (flags or {}).items():
        if value is None:
            continue
        section, _, key = section_key.rpartition(".")
        merge(cfg, {section: {key: value}} if section else {key: value}, "flags")
        given[section_key] = FLAG_NAMES.get(section_key, section_key)
        if section_key == "optim.steps":
            cfg.optim.epochs = cfg.optim.time_budget_minutes = None
        elif section_key == "optim.epochs":
            cfg.optim.steps = cfg.optim.time_budget_minutes = None
        elif section_key == "optim.time_budget_minutes":
            cfg.optim.steps = cfg.optim.epochs = None
    for text in overrides or []:
        override = parse_override(text)
        merge(cfg, override, "--set")
        for section, values in override.items():
            for key in values if isinstance(values, dict) else ():
                given.pop(f"{section}.{key}", None)
    validate(cfg, given)
    return cfg


#: Bounds of numeric settings: (setting, low, high, low inclusive); None values are "not set" and pass.
MAX_LR = 10.0
_BOUNDS = (
    ("optim.steps", 1, None, True), ("optim.epochs", 0, None, False), ("optim.batch_size", 1, None, True),
    ("optim.lr", 0, MAX_LR, False), ("optim.weight_decay", 0, None, True), ("optim.warmup_steps", 0, None, True),
    ("optim.grad_clip", 0, None, True), ("optim.grad_accum", 1, None, True),
    ("optim.time_budget_minutes", 0, None, False),
    ("ema.halflife_images", 0, None, False), ("ema.rampup", 0, None, False),
    ("objective.cond_drop_prob", 0, 1, True), ("objective.min_snr_gamma", 0, None, False),
    ("schedule.timesteps", 1, 1_000_000, True), ("schedule.beta_start", 0, 1, False), ("schedule.beta_end", 0, 1, False),
    ("data.image_size", 1, 4096, True), ("data.n", 1, None, True),
    ("preview.every", 1, None, True), ("preview.n", 1, 4096, True),
    ("log.every", 1, None, True), ("log.checkpoint_every", 1, None, True), ("log.keep_last", 1, None, True),
    ("runtime.threads", 1, 4096, True),
)


def _get(cfg: TrainConfig, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(cfg, section), name)


def _check_number(value: Any, low: float | None, high: float | None, low_inclusive: bool,
                  label: str) -> None:
    """One line when a numeric setting is NaN, infinite or outside its bounds."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{label} must be a finite number, got {value}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    if not too_low and (high is None or value <= high):
        return
    if low is not None and high is not None:
        what = f"from {low} to {high}" if low_inclusive else f"greater than {low} and at most {high}"
    elif low is not None:
        what = f"at least {low}" if low_inclusive else f"greater than {low}"
    else:
        what = f"at most {high}"
    raise UserError(f"{label} must be {what}, got {value}")


def validate(cfg: TrainConfig, given: dict[str, str] | None = None) -> None:
    """Every setting that can be checked without the data, before anything is loaded or written.

    Each failure is one line naming what the user gave: the flag (``given`` maps settings to the
    flags that set them) or else the setting.
    """
    from .generate import SampleSettings  # imported here: it needs torch, and config is read without it
    from .limits import check_seed

    given = given or {}

    def label(key: str) -> str:
        return given.get(key, key)

    o = cfg.optim
    if o.steps is None and o.epochs is None and o.time_budget_minutes is None:
        raise UserError("say how long to train: optim.steps, optim.epochs or optim.time_budget_minutes "
                        "(--steps N, --epochs N or --time-budget MINUTES)")
    for key, low, high, inclusive in _BOUNDS:
        _check_number(_get(cfg, key), low, high, inclusive, label(key))
    if len(o.betas) != 2 or not all(math.isfinite(b) and 0 <= b < 1 for b in o.betas):
        raise UserError(f"optim.betas must be two numbers in [0, 1) (Adam's moment decays, e.g. [0.9, 0.999]), "
                        f"got {list(o.betas)}")
    if cfg.schedule.betas is not None and not all(math.isfinite(b) and 0 < b <= 1 for b in cfg.schedule.betas):
        raise UserError("schedule.betas must all lie in (0, 1]")
    for key in ("runtime.seed", "preview.seed"):
        check_seed(_get(cfg, key), label(key))
    choices = {
        "optim.optimizer": (o.optimizer, ("adam", "adamw")),
        "optim.lr_schedule": (o.lr_schedule, ("constant", "cosine", "linear", "linear-epoch")),
        "objective.kind": (cfg.objective.kind, ("diffusion", "corrupt")),
        "objective.prediction": (cfg.objective.prediction, ("epsilon", "x0", "v")),
        "data.condition": (cfg.data.condition, ("auto", "none", "class", "context")),
        "runtime.amp": (cfg.runtime.amp, ("auto", "bf16", "off")),
        "log.tensorboard": (cfg.log.tensorboard, ("auto", "on", "off")),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise UserError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    parse_range(cfg.data.range)
    if not 0 <= cfg.ema.decay < 1:
        raise UserError(f"ema.decay must be in [0, 1), got {cfg.ema.decay}")
    p = cfg.preview
    if p.n < 1 or (p.steps is not None and p.steps < 1) or p.strip < 0:
        raise UserError(f"preview.n and preview.steps must be at least 1 and preview.strip 0 or more, got n={p.n}, "
                        f"steps={p.steps}, strip={p.strip}")
    if not 0 < p.max_share <= 1:
        raise UserError(f"preview.max_share must be in (0, 1], got {p.max_share}")
    prediction = "x0" if cfg.objective.kind == "corrupt" else cfg.objective.prediction
    SampleSettings.from_dict(vars(cfg.sample)).check(lambda name: f"sample.{name}", objective=cfg.objective.kind,
                                                     prediction=prediction)


# ---------------------------------------------------------------------------------------- output
def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The TOML form of a config: model params flattened into [model], None values left out."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    raw = dataclasses.asdict(cfg)
    model = raw.pop("model")
    raw["model"] = {"name": model["name"], **model["params"]}
    ordered = {k: raw[k] for k in ("recipe", "description", "out") if raw.get(k) is not None}
    ordered.update({s: raw[s] for s in SECTIONS})
    return clean(ordered)


def dumps(cfg: TrainConfig) -> str:
    """``config.toml`` text."""
    return tomli_w.dumps(to_dict(cfg))


def from_dict(values: dict[str, Any]) -> TrainConfig:
    """Rebuild a config from its TOML form (a run's ``config.toml``)."""
    cfg = TrainConfig()
    cfg.model = ModelSection()
    merge(cfg, values, "config.toml")
    return cfg
