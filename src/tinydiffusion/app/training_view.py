"""The Training view: a run's loss curve, progress and newest preview grids, as training writes them.

Training appends a row to ``log.csv`` every ``log.every`` steps and writes ``samples/step-XXXXXXXX.png``
(EMA weights) and ``…-raw.png`` (raw weights) a few times per run. The view reads both and is
refreshed by a timer; :func:`snapshot_stamp` changes whenever either does, so an idle run costs nothing.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..config import from_dict, read_toml
from ..errors import UserError
from ..viz.plots import figure_image, loss_curve_figure, read_log

#: Preview grids shown: the newest EMA and raw grids, then older EMA grids.
MAX_PREVIEWS = 6
_PREVIEW = re.compile(r"^step-(\d+)(-raw)?\.png$")


@dataclass
class TrainingSnapshot:
    """What the Training view shows for a run at one moment."""

    status: str  #: markdown: step, loss, speed, elapsed time, whether it is still training
    loss: Image.Image | None  #: the loss curve (and learning rate), None before the first log row
    previews: list[tuple[Image.Image, str]]  #: (grid, caption), newest first


def previews(run_dir: Path) -> list[tuple[int, bool, Path]]:
    """(step, raw?, path) of the preview grids in ``run_dir/samples``, newest first."""
    folder = Path(run_dir) / "samples"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), bool(m.group(2)), p) for p in folder.iterdir() if (m := _PREVIEW.match(p.name))]
    return sorted(found, key=lambda item: (-item[0], item[1]))


def snapshot_stamp(run_dir: Path) -> tuple:
    """Changes whenever the log or the preview grids of ``run_dir`` change."""
    log = Path(run_dir) / "log.csv"
    stat = log.stat() if log.is_file() else None
    newest = previews(run_dir)[:1]
    return (stat.st_mtime_ns, stat.st_size) if stat else None, newest[0][2].name if newest else None


def training_status(run_dir: Path, *, now: float | None = None) -> str:
    """One line of Markdown: the step (of how many), loss, speed, time trained, and "finished" or the age of the
    newest log row (a run that is still training writes one every ``log.every`` steps)."""
    run_dir = Path(run_dir)
    log_path = run_dir / "log.csv"
    if not log_path.is_file():
        return f"**{run_dir.name}** has no log.csv yet: training writes its first row after log.every steps."
    try:
        log = read_log(log_path)
    except UserError as exc:  # an empty log: say so in the page
        return f"**{run_dir.name}**: {exc}"
    return _status(run_dir, log, (time.time() if now is None else now) - log_path.stat().st_mtime)


def training_snapshot(run_dir: Path, *, now: float | None = None) -> TrainingSnapshot:
    """Read ``log.csv`` and ``samples/`` of ``run_dir`` as they are now."""
    run_dir = Path(run_dir)
    try:
        loss = figure_image(loss_curve_figure(run_dir / "log.csv"))
    except UserError:  # no log or no loss yet; the status says which
        loss = None
    return TrainingSnapshot(training_status(run_dir, now=now), loss, _preview_images(run_dir))


def _status(run_dir: Path, log: dict, age: float) -> str:
    def last(column: str) -> float:
        values = [v for v in log.get(column, []) if not math.isnan(v)]
        return values[-1] if values else math.nan

    step = int(last("step"))
    total = _total_steps(run_dir)
    of = f" of {total:,} ({step / total:.0%})" if total else ""
    parts = [f"step **{step:,}**{of}", f"loss {last('loss'):.4g}"]
    if not math.isnan(last("images_per_s")):
        parts.append(f"{last('images_per_s'):,.0f} images/s")
    if not math.isnan(last("elapsed_s")):
        parts.append(f"{_duration(last('elapsed_s'))} of training")
    state = "finished" if total and step >= total else f"last log row {_duration(age)} ago"
    return f"**{run_dir.name}** · " + " · ".join(parts) + f" · {state}"


def _total_steps(run_dir: Path) -> int | None:
    config = run_dir / "config.toml"
    if not config.is_file():
        return None
    return from_dict(read_toml(config)).optim.steps


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _preview_images(run_dir: Path) -> list[tuple[Image.Image, str]]:
    """The newest EMA and raw grids, then older EMA grids; a grid still being written waits for the next refresh."""
    found = previews(run_dir)
    newest = found[0][0] if found else None
    chosen = [item for item in found if item[0] == newest] + [item for item in found if item[0] != newest
                                                              and not item[1]]
    out = []
    for step, raw, path in chosen[:MAX_PREVIEWS]:
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except OSError:  # training is writing this file right now; the next refresh shows it
            continue
        out.append((image, f"step {step:,}" + (" (raw weights)" if raw else " (EMA)" if _has_raw(found) else "")))
    return out


def _has_raw(found: list[tuple[int, bool, Path]]) -> bool:
    return any(raw for _, raw, _ in found)
