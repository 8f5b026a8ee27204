"""log.csv, TensorBoard and the progress bar, written by the main process only."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

COLUMNS = ("step", "epoch", "loss", "lr", "images_per_s", "grad_norm", "elapsed_s")


class RunLogger:
    """Appends rows to ``log.csv`` (and TensorBoard scalars), and drives a tqdm bar (images/s, loss, ETA)."""

    def __init__(self, run_dir: Path, total_steps: int | None, start_step: int, *, tensorboard: str, progress: bool,
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
        have_tb = importlib.util.find_spec("tensorboard") is not None
        if tensorboard == "on" or (tensorboard == "auto" and have_tb):
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=start_step or None)

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
        self._rows.writerow([_fmt(values.get(c)) for c in COLUMNS])
        self._csv.flush()
        self.bar.set_postfix(loss=f"{values['loss']:.4f}", img_s=f"{values['images_per_s']:.0f}", refresh=False)
        if self.writer is not None:
            for key in ("loss", "lr", "images_per_s", "grad_norm"):
                self.writer.add_scalar(f"train/{key}", values[key], values["step"])

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
