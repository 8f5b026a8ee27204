"""Line plots: noise schedules and training loss curves (matplotlib, rendered off-screen).

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no global
figure state, no GUI backend, safe in threads and on machines without a display.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from ..errors import UserError
from ..files import atomic_write, ensure_folder
from ..schedule import NoiseSchedule

#: Resolution of every saved plot.
DPI = 100


def figure_png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes (Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def figure_image(fig: Figure) -> Image.Image:
    """The figure rendered as an RGB PIL image."""
    return Image.open(io.BytesIO(figure_png(fig))).convert("RGB")


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write the figure as an image (format from the suffix), atomically; missing parent folders are created."""
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=DPI)
    ensure_folder(path.parent)
    atomic_write(path, buffer.getvalue())
    return path


def schedule_figure(schedules: dict[str, NoiseSchedule] | NoiseSchedule) -> Figure:
    """Three panels against t: β_t (log scale), ᾱ_t, and log SNR(t) = log(ᾱ_t / (1 − ᾱ_t)).

    Several named schedules share the panels (for example linear against cosine, Nichol & Dhariwal
    2021, Fig. 5). Values are taken from the float64 tables of :class:`NoiseSchedule`.
    """
    if isinstance(schedules, NoiseSchedule):
        schedules = {"schedule": schedules}
    if not schedules:
        raise UserError("no schedule to plot")
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    ax_beta, ax_ab, ax_snr = fig.subplots(1, 3)
    for name, s in schedules.items():
        t = np.arange(s.num_timesteps)
        alpha_bar = s.alpha_bar64.numpy()
        ax_beta.plot(t, s.betas64.numpy(), label=name)
        ax_ab.plot(t, alpha_bar, label=name)
        ax_snr.plot(t, np.log(alpha_bar) - np.log1p(-alpha_bar), label=name)
    ax_beta.set(title=r"$\beta_t$", yscale="log", xlabel="t")
    ax_ab.set(title=r"$\bar\alpha_t$", xlabel="t", ylim=(-0.02, 1.02))
    ax_snr.set(title=r"log SNR $= \log \bar\alpha_t / (1-\bar\alpha_t)$", xlabel="t")
    for ax in (ax_beta, ax_ab, ax_snr):
        ax.grid(alpha=0.3)
    ax_ab.legend()
    return fig


def schedule_plot(schedules: dict[str, NoiseSchedule] | NoiseSchedule, path: str | Path) -> Path:
    """Save :func:`schedule_figure` of one or several schedules to ``path`` (PNG, SVG, … by suffix)."""
    return save_figure(schedule_figure(schedules), path)


def read_log(log_csv_path: str | Path) -> dict[str, np.ndarray]:
    """The numeric columns of a run's ``log.csv`` as float arrays (empty or non-numeric cells become NaN)."""
    path = Path(log_csv_path)
    if not path.is_file():
        raise UserError(f"no training log at {path}; train the run first")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise UserError(f"{path} has no logged steps yet")

    def number(cell: str | None) -> float:
        try:
            return float(cell) if cell not in (None, "") else math.nan
        except ValueError:
            return math.nan

    return {name: np.array([number(r.get(name)) for r in rows]) for name in rows[0]}


def smooth(values: np.ndarray, half_width: int | None = None) -> np.ndarray:
    """Centred moving average: s_i = mean(y_{i−h_i} … y_{i+h_i}) with h_i = min(h, i, n − 1 − i).

    Centred, so the line neither lags behind a falling loss (as a trailing EMA does, sitting above
    the raw points on short runs) nor is pulled towards 0 at the start: the window shrinks
    symmetrically at both ends, where s equals the raw value. ``half_width`` h defaults to n/20
    (at least 1). NaNs are skipped: the average runs over the finite values, and NaN positions stay NaN.
    """
    values = np.asarray(values, dtype=float)
    finite = np.flatnonzero(np.isfinite(values))
    y = values[finite]
    n = len(y)
    h = max(1, n // 20) if half_width is None else half_width
    if h < 0:
        raise UserError(f"the smoothing half-width must be 0 or more, got {h}")
    sums = np.concatenate([[0.0], np.cumsum(y)])
    i = np.arange(n)
    w = np.minimum(h, np.minimum(i, n - 1 - i))
    out = np.full(len(values), math.nan)
    out[finite] = (sums[i + w + 1] - sums[i - w]) / (2 * w + 1)
    return out


def loss_curve_figure(log_csv_path: str | Path, half_width: int | None = None) -> Figure:
    """The training loss of a run's ``log.csv`` against step, beside the learning rate.

    The loss is drawn raw (faint) and :func:`smooth`-ed (a centred average over 2h + 1 logged rows), on
    a log scale when every loss is positive; the learning-rate panel is left out when the log has no
    ``lr`` values.
    """
    log = read_log(log_csv_path)
    if "step" not in log or "loss" not in log:
        raise UserError(f"{log_csv_path} needs 'step' and 'loss' columns")
    ok = ~np.isnan(log["step"]) & ~np.isnan(log["loss"])
    step, loss = log["step"][ok], log["loss"][ok]
    if len(loss) == 0:
        raise UserError(f"{log_csv_path} has no logged loss values yet")
    h = max(1, len(loss) // 20) if half_width is None else half_width
    has_lr = "lr" in log and not np.isnan(log["lr"]).all()
    fig = Figure(figsize=(10 if has_lr else 6, 3.6), layout="constrained")
    axes = fig.subplots(1, 2 if has_lr else 1, squeeze=False)[0]
    ax = axes[0]
    ax.plot(step, loss, color="tab:blue", alpha=0.35, linewidth=0.8, marker="." if len(loss) < 60 else None,
            label="loss (each point: the mean of one logged interval)")
    ax.plot(step, smooth(loss, h), color="tab:blue", linewidth=1.8, label=f"centred average of {2 * h + 1} points")
    ax.set(title="training loss", xlabel="step", yscale="log" if (loss > 0).all() else "linear")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right")  # a falling loss leaves that corner empty
    if has_lr:
        lr_ok = ~np.isnan(log["step"]) & ~np.isnan(log["lr"])
        axes[1].plot(log["step"][lr_ok], log["lr"][lr_ok], color="tab:orange")
        axes[1].set(title="learning rate", xlabel="step")
        axes[1].grid(alpha=0.3)
    return fig


def loss_curve(log_csv_path: str | Path, path: str | Path, half_width: int | None = None) -> Path:
    """Save :func:`loss_curve_figure` of a run's ``log.csv`` to ``path``."""
    return save_figure(loss_curve_figure(log_csv_path, half_width), path)
