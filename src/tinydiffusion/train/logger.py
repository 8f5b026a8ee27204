"""log.csv, TensorBoard and the progress bar, written by the main process only.

``log.csv`` is append-only and crash-safe: rows are appended and flushed one at a time, and a resumed
run leaves the file alone until its first new row. Only then are the rows of the steps it redoes (those
after its checkpoint) and a row cut short by a crash dropped, by writing the kept rows to a temporary
file that is renamed over the log (:func:`~tinydiffusion.files.atomic_write`), so a ``kill -9`` at any
moment leaves every row up to the checkpoint in place.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import UserError
from ..files import atomic_write

TB_DIR = "tb"
COLUMNS = ("step", "epoch", "loss", "lr", "images_per_s", "grad_norm", "elapsed_s")


class RunLogger:
    """Appends rows to ``log.csv`` (and TensorBoard scalars), and drives a tqdm bar (images/s, loss, ETA)."""

    def __init__(self, run_dir: Path, total_steps: int | None, start_step: int, *, tensorboard: str, progress: bool,
                 enabled: bool):
        self.enabled = enabled
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True, file=sys.stderr,
                        disable=not (enabled and progress), desc="train")
        self.writer = None
        self._csv: Any = None  # opened for appending at the first row (see the module docstring)
        self.path = Path(run_dir) / "log.csv"
        self._start_step = start_step
        if not enabled:
            return
        if tensorboard_wanted(tensorboard):
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / TB_DIR), purge_step=start_step or None)

    def plan(self, total_steps: int, message: str) -> None:
        """Show the planned length of a ``--time-budget`` run on the bar and say how it was planned."""
        self.bar.total = total_steps
        self.bar.refresh()
        self.write(f"tinydiffusion train: {message}")

    def advance(self, steps: int = 1) -> None:
        self.bar.update(steps)

    def row(self, values: dict[str, Any]) -> None:
        """Log one row (keys from :data:`COLUMNS`)."""
        if not self.enabled:
            return
        try:
            if self._csv is None:
                self._csv = self._open()
            self._csv.write(_line([_fmt(values.get(c)) for c in COLUMNS]))
            self._csv.flush()
        except OSError as exc:
            raise UserError(f"could not append to {self.path}: {exc.strerror or exc}; the rows before are kept, "
                            "and so is the last checkpoint") from None
        self.bar.set_postfix(loss=f"{values['loss']:.4f}", img_s=f"{values['images_per_s']:.0f}", refresh=False)
        if self.writer is not None:
            for key in ("loss", "lr", "images_per_s", "grad_norm"):
                self.writer.add_scalar(f"train/{key}", values[key], values["step"])

    def _open(self) -> Any:
        """The log opened for appending, after keeping only rows up to the start step (atomically)."""
        resumed = self._start_step > 0 and self.path.exists()
        text = self.path.read_text(encoding="utf-8", errors="replace") if resumed else ""
        wanted = _line(COLUMNS) + "".join(_line(r) for r in _rows_up_to(text, self._start_step))
        if wanted != text:
            atomic_write(self.path, wanted.encode("utf-8"), kept=f"{self.path} was left as it was")
        return open(self.path, "a", newline="", encoding="utf-8")

    def image(self, tag: str, image: Image.Image, step: int) -> None:
        """Log a picture (a preview grid) to TensorBoard, if it is on."""
        if self.writer is not None:
            self.writer.add_image(tag, np.asarray(image.convert("RGB")), step, dataformats="HWC")

    def write(self, message: str) -> None:
        """A line that does not break the progress bar."""
        if self.enabled:
            self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
        if self._csv is not None:
            self._csv.close()
        if self.writer is not None:
            self.writer.close()


def _have_tensorboard() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def tensorboard_wanted(setting: str) -> bool:
    """Whether to write TensorBoard logs for ``log.tensorboard = setting`` ("auto", "on" or "off").

    "on" without the tensorboard package is a :class:`UserError` (raised before a run directory is made).
    """
    have = _have_tensorboard()
    if setting == "on" and not have:
        raise UserError("log.tensorboard=on but the tensorboard package is not installed; install it "
                        "(pip install tensorboard) or use log.tensorboard=auto")
    return setting == "on" or (setting == "auto" and have)


def log_eval_metrics(run_dir: Path, scores: dict[str, Any], step: int) -> bool:
    """Add the numbers of ``tinydiffusion eval`` to the run's TensorBoard logs under ``eval/`` at ``step``.

    Only for runs that log to TensorBoard (they have a ``tb`` folder) and when the package is there;
    returns whether anything was written.
    """
    folder = Path(run_dir) / TB_DIR
    if not folder.is_dir() or not _have_tensorboard():
        return False
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder)) as writer:
        for key, value in scores.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(f"eval/{key}", value, step)
    return True


def _line(cells: Any) -> str:
    """One CSV row as text, with its line end."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _rows_up_to(text: str, step: int) -> list[list[str]]:
    """The complete data rows of log.csv text whose step is at most ``step``, in the order of :data:`COLUMNS`
    (a last line without its line end was cut short by a crash and is dropped)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    rows = [r for r in csv.DictReader(lines) if None not in r.values() and None not in r]
    return [[r.get(c, "") for c in COLUMNS] for r in rows
            if (r.get("step") or "").isdigit() and int(r["step"]) <= step]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
