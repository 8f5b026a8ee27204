"""log.csv, TensorBoard and the progress bar, written by the main process only."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import UserError

TB_DIR = "tb"
COLUMNS = ("step", "epoch", "loss", "lr", "images_per_s", "grad_norm", "elapsed_s")


class RunLogger:
    """Appends rows to ``log.csv`` (and TensorBoard scalars), and drives a tqdm bar (images/s, loss, ETA)."""

    def __init__(self, run_dir: Path, total_steps: int, start_step: int, *, tensorboard: str, progress: bool,
                 enabled: bool):
        self.enabled = enabled
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True, file=sys.stderr,
                        disable=not (enabled and progress), desc="train")
        self.writer = None
        if not enabled:
            self._csv = None
            return
        path = Path(run_dir) / "log.csv"
        kept = _rows_up_to(path, start_step) if start_step > 0 else []
        self._csv = open(path, "w", newline="", encoding="utf-8")
        self._rows = csv.writer(self._csv)
        self._rows.writerow(COLUMNS)
        self._rows.writerows(kept)  # a resumed run drops the rows logged after its checkpoint
        if tensorboard_wanted(tensorboard):
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / TB_DIR), purge_step=start_step or None)

    def advance(self, steps: int = 1) -> None:
        self.bar.update(steps)

    def row(self, values: dict[str, Any]) -> None:
        """Log one row (keys from :data:`COLUMNS`)."""
        if not self.enabled:
            return
        self._rows.writerow([_fmt(values.get(c)) for c in COLUMNS])
        self._csv.flush()
        self.bar.set_postfix(loss=f"{values['loss']:.4f}", img_s=f"{values['images_per_s']:.0f}", refresh=False)
        if self.writer is not None:
            for key in ("loss", "lr", "images_per_s", "grad_norm"):
                self.writer.add_scalar(f"train/{key}", values[key], values["step"])

    def image(self, tag: str, image: Image.Image, step: int) -> None:
        """Log a picture (a preview grid) to TensorBoard, if it is on."""
        if self.writer is not None:
            array = np.asarray(image.convert("RGB"))
            self.writer.add_image(tag, array, step, dataformats="HWC")

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


def _rows_up_to(path: Path, step: int) -> list[list[str]]:
    """The data rows of an existing log.csv whose step is at most ``step``."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    return [r for r in rows if r and r[0].isdigit() and int(r[0]) <= step]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
