"""The runs an app serves: found from the command line, loaded on demand, one request at a time each.

A *run* is a directory that ``tinydiffusion train`` writes: it has ``model.safetensors`` once the first
checkpoint is saved, and ``log.csv``/``config.toml`` from the first step. A run that is still training
shows in the Training view before it has weights, and the sampling views pick up every new
checkpoint (the weights are reloaded when ``model.safetensors`` changes on disk).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import MODEL_FILE
from ..run import Run as LoadedRun
from ..run import load
from ..errors import UserError

#: Files whose presence makes a directory a run.
RUN_MARKERS = (MODEL_FILE, "log.csv", "config.toml")


@dataclass(frozen=True)
class Limits:
    """How much one request may ask for, so that no request can exhaust the memory or the machine."""

    max_n: int = 64  #: images per sampling request
    max_steps: int = 1000  #: sampler steps per request
    max_points: int = 5000  #: points per 2-D sampling request

    def __post_init__(self) -> None:
        for name in ("max_n", "max_steps", "max_points"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")

    def describe(self) -> str:
        """One line for the page: what a request may ask for."""
        return (f"Limits: at most {self.max_n} images or {self.max_points:,} points and {self.max_steps:,} sampler "
                "steps per request (set with --max-n, --max-points and --max-steps); one request at a time per model.")

    def check_n(self, n: float, *, points: bool = False) -> int:
        """``n`` as a whole number in 1..max_n (or 1..max_points), else a clear error."""
        limit, what = (self.max_points, "points") if points else (self.max_n, "images")
        value = _whole(n, "the number of " + what)
        if not 1 <= value <= limit:
            raise UserError(f"the number of {what} must be between 1 and {limit:,}, got {value:,} "
                            f"(the app's limit; start it with --max-{'points' if points else 'n'} to change it)")
        return value

    def check_steps(self, steps: float) -> int:
        """``steps`` as a whole number in 1..max_steps, else a clear error."""
        value = _whole(steps, "the number of sampler steps")
        if not 1 <= value <= self.max_steps:
            raise UserError(f"the number of sampler steps must be between 1 and {self.max_steps:,}, got {value:,} "
                            "(the app's limit; start it with --max-steps to change it)")
        return value


def _whole(value: float, what: str) -> int:
    if value is None or float(value) != int(float(value)):
        raise UserError(f"{what} must be a whole number, got {value!r}")
    return int(float(value))


class Run:
    """One run directory: its name in the app, its weights on the app's device, and its sampling lock."""

    def __init__(self, path: Path, name: str, device: torch.device):
        self.path = Path(path)
        self.name = name
        self.device = device
        #: Held while a request samples from this run: one request at a time per model.
        self.lock = threading.Lock()
        self._loaded: LoadedRun | None = None
        self._stamp: tuple[int, int] | None = None
        self._load_lock = threading.Lock()

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def has_model(self) -> bool:
        return self.model_path.is_file()

    def load(self) -> LoadedRun:
        """The run's newest weights, rebuilt on the app's device (reloaded after each new checkpoint)."""
        if not self.has_model:
            raise UserError(f"{self.name} has no {MODEL_FILE} yet; its first checkpoint is written a quarter of "
                            "the way through training (the Training view shows it until then)")
        stat = self.model_path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._load_lock:
            if self._loaded is None or stamp != self._stamp:
                self._loaded = load(self.path, self.device)
                self._stamp = stamp
            return self._loaded

    @property
    def kind(self) -> str | None:
        """``"image"`` or ``"points"`` for a run with weights, None before its first checkpoint."""
        if not self.has_model:
            return None
        return self.load().meta["data"].get("kind", "image")


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in RUN_MARKERS)


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories from the command line: each path is a run, or a folder whose sub-folders are runs."""
    found: list[Path] = []
    for text in paths:
        path = Path(text).expanduser()
        if path.is_file() and path.name == MODEL_FILE:
            path = path.parent
        if not path.exists():
            raise UserError(f"{text} does not exist; give run directories (made by tinydiffusion train) or "
                            "folders that hold them")
        if is_run_dir(path):
            found.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if is_run_dir(p)) if path.is_dir() else []
        if not inside:
            raise UserError(f"{text} is not a run directory and holds none (a run has {MODEL_FILE} or log.csv); "
                            "train one with tinydiffusion train --out DIR")
        found.extend(inside)
    unique: list[Path] = []
    for p in found:
        if p.resolve() not in {q.resolve() for q in unique}:
            unique.append(p)
    return unique


def _display_name(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


class RunRegistry:
    """The runs of one app, by display name."""

    def __init__(self, paths: Sequence[Path], device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.runs: dict[str, Run] = {}
        for p in paths:
            name = _display_name(p)
            self.runs[name] = Run(p, name, self.device)

    @classmethod
    def discover(cls, paths: Sequence[str | Path], device: torch.device | str = "cpu") -> "RunRegistry":
        """The runs named on the command line (see :func:`find_runs`)."""
        return cls(find_runs(paths), device)

    def get(self, name: str | None) -> Run:
        """The run called ``name``; a clear error when none is chosen or it is unknown."""
        if not name:
            raise UserError("choose a run first (start the app with tinydiffusion app RUN_DIR to list some)")
        try:
            return self.runs[name]
        except KeyError:
            raise UserError(f"unknown run {name!r}; this app serves {', '.join(self.runs) or 'no runs'}") from None

    def names(self, kind: str | None = None) -> list[str]:
        """Names of the runs with weights of ``kind`` ("image" or "points"), or of every run when None."""
        if kind is None:
            return list(self.runs)
        return [name for name, run in self.runs.items() if run.kind == kind]
