"""Checkpoints: self-describing inference weights, resumable training state, atomic writes.

* ``model.safetensors``: the weights to sample from (EMA where used) plus, in the safetensors metadata,
  a JSON document under the key ``"tinydiffusion"``: network name and config, schedule config,
  prediction type, dataset facts (class names, condition kind) and default sampling settings — so
  ``tinydiffusion sample RUN`` needs nothing else.
* ``state/step-XXXXXXXX.pt``: model, EMA and optimiser state, the step and the torch RNG states, for
  ``--resume``. Read back with ``torch.load(weights_only=True)``: no code is ever unpickled.

Every file is written to a temporary name in the same folder, flushed and fsynced, then renamed over
the target (``os.replace`` is atomic on POSIX and Windows): a crash, SIGKILL or a full disk leaves the
previous file intact.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import safetensors.torch
import torch
from torch import nn

from .errors import UserError
from .models import build_model
from .schedule import NoiseSchedule
from .value_range import range_of

FORMAT = "tinydiffusion-model/1"
META_KEY = "tinydiffusion"
MODEL_FILE = "model.safetensors"
STATE_DIR = "state"
_STATE_NAME = re.compile(r"^step-(\d{8,})\.pt$")


# ---------------------------------------------------------------------------------------- atomic writes
def _write_stream(f: BinaryIO, data: bytes) -> None:
    """Write ``data`` to an open file (one call; kept separate so tests can slow it down)."""
    f.write(data)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers only ever see the old or the complete new file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            _write_stream(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"could not write {path}: {exc.strerror or exc}; the previous checkpoint is intact") from None
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass  # some filesystems (and Windows) cannot fsync a directory; the rename has happened anyway


# ---------------------------------------------------------------------------------------- inference weights
def save_model(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write inference weights and their self-description to ``path`` (atomically)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
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
    if doc.get("format") != FORMAT:
        raise UserError(f"{path} is in format {doc.get('format')!r}; this version reads {FORMAT}")
    return tensors, doc


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
    """Rebuild the network of a run (or ``model.safetensors`` file) on ``device``, in eval mode."""
    path = resolve_model_path(run)
    tensors, meta = read_model_file(path)
    try:
        model = build_model(meta["model"], meta["model_config"])
    except KeyError as exc:
        raise UserError(f"{path}: metadata lacks {exc}") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError:
        raise UserError(f"{path}: the weights do not fit the {meta['model']!r} network described in its "
                        "metadata (a checkpoint of another model?)") from None
    schedule = NoiseSchedule.from_config(meta["schedule"], warn=False)
    return LoadedModel(model.to(device).eval(), schedule.to(device), meta, path)


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
    atomic_write(path, buffer.getvalue())
    for _, old in list_states(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    for stale in path.parent.glob(".step-*.pt.tmp-*"):  # left behind by a killed writer
        if not _pid_alive(stale.name.rsplit("-", 1)[-1]):
            stale.unlink(missing_ok=True)
    return path


def _pid_alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def load_state(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a training state; pickled code is refused (``weights_only=True``)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise UserError(f"{path} is not a readable training state ({type(exc).__name__}); delete it to resume "
                        "from the one before") from None


def latest_state(run_dir: Path, load: Callable[[Path], dict[str, Any]] = load_state) -> tuple[Path, dict[str, Any]]:
    """The newest readable training state of a run (a damaged newest file falls back to the one before)."""
    states = list_states(run_dir)
    if not states:
        raise UserError(f"nothing to resume in {run_dir}: it has no {STATE_DIR}/step-*.pt; "
                        "drop --resume to start a new run")
    last_error: UserError | None = None
    for _, path in reversed(states):
        try:
            return path, load(path)
        except UserError as exc:
            last_error = exc
    assert last_error is not None
    raise last_error
