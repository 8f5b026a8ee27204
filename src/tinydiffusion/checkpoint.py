"""Checkpoints: self-describing inference weights, resumable training state, atomic writes.

* ``model.safetensors``: the weights to sample from (EMA where used) plus, in the safetensors metadata,
  a JSON document under the key ``"tinydiffusion"``: network name and config, schedule config,
  prediction type, dataset facts (class names, condition kind) and default sampling settings — so
  ``tinydiffusion sample RUN`` needs nothing else.
* ``state/step-XXXXXXXX.pt``: model, EMA and optimiser state, the step and the torch RNG states, for
  ``--resume``. Read back with ``torch.load(weights_only=True)``: no code is ever unpickled.

Every file is written with :func:`tinydiffusion.files.atomic_write` (a temporary name in the same
folder, flushed, fsynced, renamed over the target): a crash, SIGKILL or a full disk leaves the previous
file intact. Weights that hold NaN or infinite values are never written, and never loaded.

Files read back are treated as untrusted: a missing or mistyped field of the metadata or of a state is
one :class:`~tinydiffusion.errors.UserError` line naming the file and the field, and a network that the
metadata describes is sized on the meta device before it is built (see :mod:`tinydiffusion.limits`).
"""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from .errors import UserError
from .files import atomic_write, remove_stale_temporaries
from .limits import check_memory
from .models import build_model, model_bytes
from .objectives import PREDICTION_ATTR
from .schedule import NoiseSchedule
from .value_range import range_of

__all__ = ["FORMAT", "META_KEY", "MODEL_FILE", "STATE_DIR", "LoadedModel", "atomic_write", "latest_state",
           "list_states", "load_model", "load_state", "read_model_file", "resolve_model_path", "save_model",
           "save_state", "state_path"]

FORMAT = "tinydiffusion-model/1"
META_KEY = "tinydiffusion"
MODEL_FILE = "model.safetensors"
STATE_DIR = "state"
_STATE_NAME = re.compile(r"^step-(\d{8,})\.pt$")


# ---------------------------------------------------------------------------------------- inference weights
def save_model(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write inference weights and their self-description to ``path`` (atomically)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    bad = _non_finite(tensors)
    if bad is not None:
        raise UserError(f"refusing to write {path}: its weights hold NaN or infinite values (in {bad}); "
                        f"{Path(path).name} was left as it was")
    doc = {"format": FORMAT, **meta}
    data = safetensors.torch.save(tensors, metadata={META_KEY: json.dumps(doc)})
    atomic_write(path, data)


def read_model_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a ``model.safetensors``, with one clear error for anything else."""
    path = Path(path)
    try:
        with safetensors.safe_open(path, framework="pt") as f:  # one read; the format holds no code
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise UserError(f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}); "
                        "it may be truncated or not a checkpoint at all") from None
    if META_KEY not in meta:
        raise UserError(f"{path} is a safetensors file without tinydiffusion metadata; it was not written by "
                        "tinydiffusion, so its network cannot be rebuilt")
    try:
        doc = json.loads(meta[META_KEY])
    except json.JSONDecodeError:
        raise UserError(f"{path} has damaged tinydiffusion metadata") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path} has damaged tinydiffusion metadata (not a JSON object)")
    if doc.get("format") != FORMAT:
        raise UserError(f"{path} is in format {doc.get('format')!r}; this version reads {FORMAT}")
    _check_meta(path, doc)
    return tensors, doc


_TYPE_NAMES = {str: "text", dict: "table", int: "whole number", list: "list", bool: "true/false"}
#: (field, type, required) of the metadata document; :func:`_check_meta` looks inside ``data`` too.
_META_FIELDS = (("model", str, True), ("model_config", dict, True), ("schedule", dict, True), ("data", dict, True),
                ("sample", dict, False), ("prediction", str, False), ("objective", str, False),
                ("step", int, False), ("recipe", str, False))
PREDICTIONS = ("epsilon", "x0", "v")


def _field(path: Path, doc: dict[str, Any], name: str, kind: type, required: bool, where: str) -> None:
    """One clear line for a missing or mistyped field of ``where`` in ``path``."""
    if name not in doc or doc[name] is None:
        if required:
            raise UserError(f"{path}: {where} lacks the field {name!r}; the file was damaged or edited, so "
                            "its network cannot be rebuilt (use the model.safetensors that training wrote)")
        return
    value = doc[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"{path}: {where} field {name!r} should be a {_TYPE_NAMES[kind]}, got {value!r:.60}; "
                        "the file was damaged or edited")


def _check_meta(path: Path, doc: dict[str, Any]) -> None:
    """The fields sampling reads, with their types (a crafted file ends in one line, not a traceback)."""
    for name, kind, required in _META_FIELDS:
        _field(path, doc, name, kind, required, "its metadata")
    if doc.get("prediction") is not None and doc["prediction"] not in PREDICTIONS:
        raise UserError(f"{path}: metadata field 'prediction' must be one of {', '.join(PREDICTIONS)}, "
                        f"got {doc['prediction']!r:.60}")
    data = doc["data"]
    where = "its metadata's 'data'"
    _field(path, data, "kind", str, True, where)
    _field(path, data, "spec", str, True, where)
    _field(path, data, "class_names", list, False, where)
    if data["kind"] == "points":
        _field(path, data, "dim", int, True, where)
        sizes = {"dim": data["dim"]}
    elif data["kind"] == "image":
        _field(path, data, "channels", int, True, where)
        _field(path, data, "image_size", int, True, where)
        sizes = {"channels": data["channels"], "image_size": data["image_size"]}
    else:
        raise UserError(f"{path}: metadata field 'data.kind' must be 'image' or 'points', got {data['kind']!r:.60}")
    for name, value in sizes.items():
        if value < 1:
            raise UserError(f"{path}: metadata field 'data.{name}' must be at least 1, got {value}")


def _non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding NaN or ±inf, or None."""
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


@dataclass
class LoadedModel:
    """A network rebuilt from ``model.safetensors``, in eval mode, with its schedule and description."""

    model: nn.Module
    schedule: NoiseSchedule
    meta: dict[str, Any]
    path: Path

    @property
    def prediction(self) -> str:
        return self.meta.get("prediction", "epsilon")

    @property
    def data_range(self) -> tuple[float, float]:
        """The value range the network was trained in (see :mod:`tinydiffusion.value_range`)."""
        return range_of(self.meta.get("data", {}))


def resolve_model_path(run: str | Path) -> Path:
    """``RUN_DIR/model.safetensors`` for a run directory, or the file itself."""
    p = Path(run)
    if p.is_dir():
        f = p / MODEL_FILE
        if not f.exists():
            raise UserError(f"{p} has no {MODEL_FILE}; train into it first (tinydiffusion train --out {p}) or "
                            "point at another run directory")
        return f
    if not p.exists():
        raise UserError(f"{p} does not exist; give a run directory or a model.safetensors file")
    return p


def load_model(run: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild the network of a run (or ``model.safetensors`` file) on ``device``, in eval mode.

    The network carries its prediction type as ``model.tinydiffusion_prediction`` (see
    :data:`~tinydiffusion.objectives.PREDICTION_ATTR`). :func:`tinydiffusion.load` adds sampling to this.
    """
    path = resolve_model_path(run)
    tensors, meta = read_model_file(path)
    bad = _non_finite(tensors)
    if bad is not None:
        raise UserError(f"{path} holds NaN or infinite weights (in {bad}): it came from a run that diverged or "
                        "it was damaged, and would draw only grey noise; sample from an earlier checkpoint or "
                        "retrain with a lower optim.lr")
    schedule = _schedule(path, meta["schedule"])
    try:
        nbytes = model_bytes(meta["model"], meta["model_config"])
    except UserError as exc:
        raise UserError(f"{path}: metadata fields 'model' and 'model_config': {exc}") from None
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path}: metadata field 'model_config' does not describe a {meta['model']!r} network "
                        f"({type(exc).__name__}: {str(exc)[:120]}); the file was damaged or edited") from None
    check_memory(nbytes, f"{path}: the {meta['model']!r} network its metadata describes",
                 "the metadata was probably edited: use the model.safetensors that training wrote")
    model = build_model(meta["model"], meta["model_config"])  # the config built on the meta device above
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError:
        raise UserError(f"{path}: the weights do not fit the {meta['model']!r} network described in its "
                        "metadata (a checkpoint of another model?)") from None
    setattr(model, PREDICTION_ATTR, meta.get("prediction", "epsilon"))  # sample() checks prediction= against it
    return LoadedModel(model.to(device).eval(), schedule.to(device), meta, path)


def _schedule(path: Path, config: dict[str, Any]) -> NoiseSchedule:
    """The schedule of a metadata document, with one line naming the field when it is not a valid one."""
    timesteps = config.get("timesteps", 1000)
    if isinstance(timesteps, bool) or not isinstance(timesteps, int):
        raise UserError(f"{path}: metadata field 'schedule.timesteps' should be a whole number, got {timesteps!r:.60}")
    check_memory(timesteps * 8 * 16, f"{path}: metadata field 'schedule.timesteps' = {timesteps:,}",
                 "the metadata was probably edited: use the model.safetensors that training wrote")
    try:
        return NoiseSchedule.from_config(config, warn=False)
    except UserError as exc:
        raise UserError(f"{path}: metadata field 'schedule': {exc}") from None
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path}: metadata field 'schedule' is not a valid schedule ({type(exc).__name__}: "
                        f"{str(exc)[:120]}); the file was damaged or edited") from None


# ---------------------------------------------------------------------------------------- training state
def state_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / STATE_DIR / f"step-{step:08d}.pt"


def list_states(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the resumable checkpoints of a run, oldest first."""
    folder = Path(run_dir) / STATE_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STATE_NAME.match(p.name))]
    return sorted(found)


def save_state(run_dir: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    """Write ``state/step-XXXXXXXX.pt`` atomically and delete all but the newest ``keep_last``."""
    path = state_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue(), kept="the previous checkpoint is intact")
    for _, old in list_states(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    remove_stale_temporaries(path.parent)  # left behind by a killed writer
    return path


def load_state(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a training state and check its fields; pickled code is refused (``weights_only=True``)."""
    try:
        with warnings.catch_warnings():  # torch's advice on pickle protocols would precede our one line
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for damaged, truncated and hostile files
        raise UserError(f"{path} is not a readable training state ({type(exc).__name__}); the file was damaged "
                        "or is not a tinydiffusion checkpoint") from None
    _check_state(path, state)
    return state


def _check_state(path: Path, state: Any) -> None:
    """The fields ``--resume`` reads, with their types: one line naming the file and the field otherwise."""
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a training state (it holds a {type(state).__name__}, not a table)")
    fields: tuple[tuple[str, type | tuple[type, ...], bool], ...] = (
        ("step", int, True), ("model", dict, True), ("optimizer", dict, True), ("rng_cpu", torch.Tensor, True),
        ("ema", dict, False), ("rng_cuda", torch.Tensor, False), ("elapsed_s", (int, float), False))
    for name, kind, required in fields:
        value = state.get(name)
        if value is None:
            if required:
                raise UserError(f"{path}: the training state lacks the field {name!r}; the file was damaged or "
                                "edited")
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise UserError(f"{path}: the training state's field {name!r} has the wrong type "
                            f"({type(value).__name__}); the file was damaged or edited")
    if state["step"] < 0:
        raise UserError(f"{path}: the training state's field 'step' is negative ({state['step']})")
    for name in ("rng_cpu", "rng_cuda"):
        if state.get(name) is not None and state[name].dtype != torch.uint8:
            raise UserError(f"{path}: the training state's field {name!r} is not a random-generator state "
                            f"(dtype {state[name].dtype}, expected uint8)")
    for name in ("model", "ema"):
        table = state.get(name) or {}
        if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in table.items()):
            raise UserError(f"{path}: the training state's field {name!r} is not a table of tensors")


def latest_state(run_dir: Path, load: Callable[[Path], dict[str, Any]] = load_state) -> tuple[Path, dict[str, Any]]:
    """The newest training state of a run.

    A damaged newest state is an error, not a silent fall-back to an older one (which would quietly
    drop steps): the message names it and the older states, so the user decides.
    """
    states = list_states(run_dir)
    if not states:
        raise UserError(f"nothing to resume in {run_dir}: it has no {STATE_DIR}/step-*.pt; "
                        "drop --resume to start a new run")
    newest = states[-1][1]
    try:
        return newest, load(newest)
    except UserError as exc:
        older = [p.name for _, p in reversed(states[:-1])]
        if older:
            hint = (f"to resume from the checkpoint before it, move it away (mv {newest} {newest}.bad) and resume "
                    f"again; older checkpoints: {', '.join(older)}")
        else:
            hint = "it is the run's only checkpoint, so start a new run directory"
        raise UserError(f"{exc}; {hint}") from None
