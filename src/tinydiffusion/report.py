"""``RUN_DIR/report.html``: one self-contained page that shows what a run did.

Everything is inside the file: images and GIFs as base64 ``data:`` URIs, CSS inline, no script and
no network, so the page opens offline, can be mailed, and shows the same thing in ten years.

The page opens with a summary card (recipe, data, network, training time and speed, the samples,
and the Fréchet distance against its floor), so the first screen answers "what is this run and is it
any good". Then sections, each left out when its input is missing: a dataset preview; the loss curve
(drawn from ``log.csv``); the sample grids saved during training (``samples/step-XXXXXXXX.png`` with
EMA weights, ``…-raw.png`` with the raw ones) and the reverse-process strips saved with them
(``…-strip.png``, seed 000's rows through training); samples per class; the forward and reverse
processes; the metrics of ``eval.json``, each explained in words (or, without ``eval.json``, how to add
them); and last the resolved ``config.toml``, folded. Pictures that the run directory does not hold (a
dataset preview, animations) are passed in ``media`` under the keys of :data:`MEDIA`; facts only the
network knows (its parameter count, the dataset size) in ``facts``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import UserError
from .files import atomic_write
from .viz.gif import subsample_indices
from .viz.plots import figure_png, loss_curve_figure, read_log

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Section id -> heading, in page order.
SECTIONS: dict[str, str] = {
    "summary": "Summary",
    "data": "Data",
    "loss": "Training loss",
    "samples": "Samples during training",
    "process": "The diffusion process",
    "metrics": "Metrics",
    "config": "Configuration",
}

#: What each number of ``eval.json`` means, for the metrics table: key -> (name, explanation).
METRICS: dict[str, tuple[str, str]] = {
    "fd": ("Fréchet distance (FD)", "how far the generated images' feature statistics (mean and covariance) are "
                                    "from the real images'; lower is better"),
    "fd_floor": ("FD floor", "the FD between two sets of real images of the same size: what a perfect generator "
                             "would score, given the sampling noise of N images"),
    "kid": ("Kernel inception distance (KID)", "like FD but unbiased at small N (a kernel two-sample statistic); "
                                               "lower is better, 0 is ideal"),
    "kid_se": ("KID standard error", "the uncertainty of KID over random subsets"),
    "precision": ("Precision", "the share of generated images that fall among real ones (fidelity); higher is "
                               "better"),
    "recall": ("Recall", "the share of real images that generated ones come close to (diversity); higher is "
                         "better"),
    "class_accuracy": ("Class accuracy", "the share of generated images that a classifier puts in the class they "
                                         "were asked for; higher is better"),
}

#: The accepted ``media`` keys: key -> (section id, caption), in the order shown within a section.
MEDIA: dict[str, tuple[str, str]] = {
    "dataset": ("data", "Training images, one row per class where the data has classes."),
    "per_class": ("summary", "Samples from the final weights (one row per class where the run has classes)."),
    "schedule": ("process", "The noise schedule: β_t, ᾱ_t and log SNR against the timestep t."),
    "forward": ("process", "The forward process q(x_t | x_{t−1}) applied step by step to training images."),
    "forward_side_by_side": ("process", "Step by step (DDPM eq. 2) against one jump (DDPM eq. 4): different "
                                        "noise, the same amount of it."),
    "forward_scatter": ("process", "The forward process q(x_t | x_0) of the 2-D training set."),
    "forward_panels": ("process", "q(x_t | x_0) at 10 timesteps, each panel with its own axes (seed 004)."),
    "reverse": ("process", "The reverse process: the sampler turning noise x_T into samples."),
    "reverse_scatter": ("process", "The reverse process of the 2-D model: noise flowing back to the data."),
    "x0_strip": ("process", "At a few sampler steps: the model input x_t beside its prediction x̂_0 of the clean "
                            "image."),
    "reverse_strip": ("process", "The reverse chain at evenly spaced steps, from noise to the sample (seeds 000 "
                                 "and 004)."),
    "compare_samplers": ("process", "Samplers side by side from the same starting noise."),
}

#: The most training-time sample grids shown (evenly spaced, always with the first and the last).
MAX_SAMPLE_STEPS = 12

#: Small images are shown enlarged by an integer factor (pixels kept sharp) up to about this width.
DISPLAY_WIDTH = 360
#: The widest an image is shown (wider ones are scaled down by the browser).
MAX_DISPLAY_WIDTH = 1040

_SAMPLE_NAME = re.compile(r"step-(\d+)(-raw)?\.png")
_STRIP_NAME = re.compile(r"step-(\d+)-strip\.png")

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2329; background: #f6f7f9;
       max-width: 1100px; margin: 0 auto; padding: 24px; }
header { border-bottom: 3px solid #3b6ea8; margin-bottom: 16px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0 0 12px; color: #24466b; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
nav a { margin-right: 14px; color: #3b6ea8; }
table { border-collapse: collapse; font-size: 14px; }
#summary { border: 2px solid #3b6ea8; display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
#summary h2 { width: 100%; margin-bottom: 0; }
#summary table th { white-space: nowrap; color: #24466b; }
#summary .facts { flex: 1 1 420px; }
.good { color: #1d6b2f; font-weight: 600; }
details summary { cursor: pointer; color: #3b6ea8; }
th, td { border-bottom: 1px solid #e6e9ed; padding: 3px 12px 3px 0; text-align: left; vertical-align: top; }
th.group { padding-top: 10px; color: #24466b; }
td.num { font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 8px 16px 8px 0; vertical-align: top; }
figcaption { font-size: 13px; color: #56606b; max-width: 520px; }
img { max-width: 100%; height: auto; background: #fff; }
img.px { image-rendering: pixelated; }
.note { color: #8a5a00; }
.muted { color: #56606b; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _img(data: bytes, alt: str, pixels: bool = True) -> str:
    """An ``<img>`` with the picture inline as a data URI.

    Pictures of pixels (``pixels``) are enlarged by an integer factor up to about ``DISPLAY_WIDTH`` and
    drawn with ``image-rendering: pixelated``, so every pixel stays a sharp square; plots are shown 1:1.
    Nothing is shown wider than ``MAX_DISPLAY_WIDTH`` (wider pictures are shrunk, smoothly).
    """
    with Image.open(io.BytesIO(data)) as im:
        fmt, width = (im.format or "PNG").lower(), im.width
    factor = max(1, min(4, DISPLAY_WIDTH // max(width, 1))) if pixels else 1
    uri = f"data:image/{fmt};base64,{base64.b64encode(data).decode('ascii')}"
    cls = ' class="px"' if pixels and width <= MAX_DISPLAY_WIDTH else ""  # shrinking wants smoothing, not pixels
    return f'<img src="{uri}" alt="{_esc(alt)}" width="{min(width * factor, MAX_DISPLAY_WIDTH)}"{cls}>'


def _figure(data: bytes, caption: str, pixels: bool = True) -> str:
    return f"<figure>{_img(data, caption, pixels)}<figcaption>{_esc(caption)}</figcaption></figure>"


def _read_image(path: Path) -> bytes | None:
    """The file's bytes when it is an image Pillow can open, else None."""
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)):
            return data
    except (OSError, UnidentifiedImageError):
        return None


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return json.dumps(value)
    return str(value)


def _flatten(table: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _rows(pairs: Iterable[tuple[str, Any]]) -> str:
    return "".join(f'<tr><th>{_esc(k)}</th><td class="num">{_esc(_format(v))}</td></tr>' for k, v in pairs)


def _table(pairs: Iterable[tuple[str, Any]]) -> str:
    return f"<table>{_rows(pairs)}</table>"


def _load_config(run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(parsed config, problem): both None when there is no config.toml."""
    path = run_dir / "config.toml"
    if not path.is_file():
        return None, None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")), None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        return None, f"config.toml could not be read: {err}"


def _header(run_dir: Path, config: dict[str, Any] | None, sections: list[str]) -> str:
    config = config or {}
    recipe = config.get("recipe")
    title = f"tinydiffusion run: {recipe}" if recipe else "tinydiffusion run"
    parts = [f"<h1>{_esc(title)}</h1>"]
    if config.get("description"):
        parts.append(f"<p>{_esc(config['description'])}</p>")
    parts.append(f'<p class="muted">run directory: <code>{_esc(run_dir.resolve().name)}</code></p>')
    links = "".join(f'<a href="#{s}">{_esc(SECTIONS[s])}</a>' for s in sections)
    return f"<header>{''.join(parts)}<nav>{links}</nav></header>"


def _config_section(config: dict[str, Any] | None, problem: str | None, run_dir: Path) -> str | None:
    """The resolved config.toml, folded: the summary says what matters, this is for looking things up."""
    if problem is not None:
        raw = (run_dir / "config.toml").read_text(encoding="utf-8", errors="replace")
        return f'<p class="note">{_esc(problem)}</p><pre>{_esc(raw)}</pre>'
    if config is None:
        return None
    top = [(k, v) for k, v in config.items() if not isinstance(v, dict) and k not in ("recipe", "description")]
    rows = _rows(top)
    for name, table in config.items():
        if isinstance(table, dict):
            rows += f'<tr><th class="group" colspan="2">[{_esc(name)}]</th></tr>{_rows(_flatten(table))}'
    return ("<details><summary>The resolved configuration (<code>config.toml</code>): every setting of the "
            f"run</summary><table>{rows}</table></details>")


def _loss_section(run_dir: Path) -> str | None:
    path = run_dir / "log.csv"
    if not path.is_file():
        return None
    try:
        png = figure_png(loss_curve_figure(path))
    except UserError as err:
        return f'<p class="note">{_esc(err)}</p>'
    return _figure(png, "Training loss per logged interval (faint: as logged; solid: a centred average, which "
                        "does not lag behind the points), and the learning rate.", pixels=False)


def _strips_block(run_dir: Path) -> str:
    """The reverse-process strips of the previews, one row per preview (seed 000's figure), or nothing."""
    strips = {}
    for path in sorted((run_dir / "samples").glob("step-*-strip.png")):
        match = _STRIP_NAME.fullmatch(path.name)
        data = _read_image(path) if match else None
        if data is not None:
            strips[int(match.group(1))] = data
    if not strips:
        return ""
    steps = sorted(strips)
    shown = [steps[i] for i in subsample_indices(len(steps), MAX_SAMPLE_STEPS)]
    rows = "".join(f"<tr><th>{s:,}</th><td>{_img(strips[s], f'reverse process at step {s}')}</td></tr>" for s in shown)
    return ("<p>The reverse process of one sample at each preview, noisy on the left, the sample on the right "
            f"(seed 000's rows through training).</p><table><tr><th>step</th><th>reverse process</th></tr>{rows}"
            "</table>")


def _samples_section(run_dir: Path) -> str | None:
    strips = _strips_block(run_dir)
    grids: dict[int, dict[str, bytes]] = {}
    for path in sorted((run_dir / "samples").glob("step-*.png")):
        match = _SAMPLE_NAME.fullmatch(path.name)
        data = _read_image(path) if match else None
        if data is not None:
            grids.setdefault(int(match.group(1)), {})["raw" if match.group(2) else "ema"] = data
    if not grids:
        return strips or None
    steps = sorted(grids)
    shown = [steps[i] for i in subsample_indices(len(steps), MAX_SAMPLE_STEPS)]
    kinds = [k for k in ("ema", "raw") if any(k in grids[s] for s in shown)]
    names = {"ema": "EMA weights", "raw": "raw weights"}
    head = "<tr><th>step</th>" + "".join(f"<th>{names[k]}</th>" for k in kinds) + "</tr>"
    rows = "".join(
        f"<tr><th>{s:,}</th>" + "".join(f"<td>{_img(grids[s][k], f'{names[k]}, step {s}') if k in grids[s] else ''}"
                                        "</td>" for k in kinds) + "</tr>"
        for s in shown)
    note = f"<p>{len(shown)} of the {len(steps)} saved grids, evenly spaced.</p>" if len(shown) < len(steps) else ""
    return f"{note}<table>{head}{rows}</table>{strips}"


def _read_metrics(run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the numbers of eval.json, a problem reading it): both None when there is no eval.json."""
    path = run_dir / "eval.json"
    if not path.is_file():
        return None, None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return None, f"eval.json could not be read: {err}"
    if not isinstance(metrics, dict):
        return None, "eval.json does not hold a JSON object"
    return metrics, None


def _number(value: Any) -> str:
    """A metric for people: three significant digits, thousands separated."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return _format(value)


def _how_to_measure(run_dir: Path) -> str:
    return (f'<p class="note">No metrics yet. <code>tinydiffusion eval {_esc(run_dir)}</code> samples 1,000 images, '
            "scores them against the training data (Fréchet distance, KID, precision and recall, class accuracy) "
            "and writes <code>eval.json</code>; run <code>tinydiffusion report</code> again to see them here.</p>")


def _metrics_section(run_dir: Path, metrics: dict[str, Any] | None, problem: str | None) -> str:
    if problem is not None:
        return f'<p class="note">{_esc(problem)}</p>'
    if metrics is None:
        return _how_to_measure(run_dir)
    rows = "".join(f'<tr><th>{_esc(name)}</th><td class="num">{_esc(_number(metrics[key]))}</td>'
                   f'<td class="muted">{_esc(text)}</td></tr>'
                   for key, (name, text) in METRICS.items() if metrics.get(key) is not None)
    other = [(k, v) for k, v in _flatten(metrics) if k.split(".")[0] not in METRICS]
    how = (f"{metrics.get('n', '?')} samples from <code>{_esc(metrics.get('sampler', '?'))}</code>, compared in "
           f"the feature space of <code>{_esc(metrics.get('features', '?'))}</code>; numbers are comparable only "
           "between evaluations with the same features and N.")
    details = f"<details><summary>everything in eval.json</summary>{_table(other)}</details>" if other else ""
    return f"<p>From <code>eval.json</code> (<code>tinydiffusion eval</code>): {how}</p><table>{rows}</table>{details}"


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {s} s" if hours else f"{minutes} min {s} s" if minutes else f"{s} s"


def _last(values: np.ndarray | None) -> float:
    finite = values[np.isfinite(values)] if values is not None else np.array([])
    return float(finite[-1]) if finite.size else math.nan


def _training_text(run_dir: Path) -> str | None:
    """``"800 steps (10.2 epochs) in 4 min 12 s, 380 images/s"`` from log.csv."""
    try:
        log = read_log(run_dir / "log.csv")
    except UserError:
        return None
    step, epoch, elapsed = _last(log.get("step")), _last(log.get("epoch")), _last(log.get("elapsed_s"))
    speed = log.get("images_per_s")
    speed = speed[np.isfinite(speed)] if speed is not None else np.array([])
    parts = []
    if not math.isnan(step):
        parts.append(f"{int(step):,} steps" + (f" ({epoch:g} epochs)" if not math.isnan(epoch) else ""))
    if not math.isnan(elapsed):
        parts.append(f"in {_duration(elapsed)}")
    text = " ".join(parts)
    if speed.size:
        text += f", {np.median(speed):,.0f} images/s (median of the logged intervals)"
    return text or None


def _quality_text(run_dir: Path, metrics: dict[str, Any] | None) -> str:
    if metrics is None or not isinstance(metrics.get("fd"), (int, float)):
        return (f'not measured yet: <code>tinydiffusion eval {_esc(run_dir)}</code> adds it '
                '(see <a href="#metrics">Metrics</a>)')
    text = f'<span class="good">FD {_number(float(metrics["fd"]))}</span>'
    if isinstance(metrics.get("fd_floor"), (int, float)):
        text += f" against a floor of {_number(float(metrics['fd_floor']))} (real vs real images)"
    return text + f" — lower is better; {_esc(metrics.get('n', '?'))} samples, {_esc(metrics.get('features', ''))} " \
                  "features"


def _summary_section(run_dir: Path, config: dict[str, Any] | None, facts: dict[str, str],
                     metrics: dict[str, Any] | None, figures: list[str]) -> str:
    """The card at the top: what the run is, how long it took, what it makes and how good that is."""
    config = config or {}
    rows: list[tuple[str, str]] = []
    if config.get("recipe"):
        rows.append(("recipe", _esc(config["recipe"])))
    rows += [(k, _esc(v)) for k, v in facts.items()]
    training = _training_text(run_dir)
    if training:
        rows.append(("training", _esc(training)))
    rows.append(("quality", _quality_text(run_dir, metrics)))
    table = "".join(f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<div class="facts"><table>{table}</table></div>{"".join(figures)}'


def _media_blocks(media: dict[str, Path]) -> dict[str, list[str]]:
    unknown = sorted(set(media) - set(MEDIA))
    if unknown:
        raise UserError(f"unknown report media {', '.join(unknown)}; known: {', '.join(MEDIA)}")
    blocks: dict[str, list[str]] = {}
    for key, (section, caption) in MEDIA.items():
        data = _read_image(Path(media[key])) if key in media else None
        if data is not None:
            blocks.setdefault(section, []).append(_figure(data, caption, pixels=key != "schedule"))
    return blocks


def render_report(run_dir: str | Path, media: dict[str, Path] | None = None,
                  facts: dict[str, str] | None = None) -> str:
    """The report page of ``run_dir`` as an HTML string (see the module docstring for its sections).

    ``facts`` are extra rows of the summary card, label -> text (``{"network": "unet, 717,633
    parameters"}``); the final samples of ``media`` (``per_class``) stand beside them.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"no run directory at {run_dir}; pass the --out folder of a training run")
    config, problem = _load_config(run_dir)
    blocks = _media_blocks(media or {})
    metrics, metrics_problem = _read_metrics(run_dir)
    found = {
        "config": _config_section(config, problem, run_dir),
        "loss": _loss_section(run_dir),
        "samples": _samples_section(run_dir),
    }
    body = {s: found.get(s) or "" for s in SECTIONS}
    for section, figures in blocks.items():
        if section != "summary":
            body[section] += "".join(figures)
    if any(body.values()) or blocks or facts or metrics is not None or metrics_problem:
        body["summary"] = _summary_section(run_dir, config, facts or {}, metrics, blocks.get("summary", []))
        body["metrics"] = _metrics_section(run_dir, metrics, metrics_problem)
    shown = [s for s in SECTIONS if body[s]]
    sections = "".join(f'<section id="{s}"><h2>{_esc(SECTIONS[s])}</h2>{body[s]}</section>' for s in shown)
    title = f"tinydiffusion — {config.get('recipe') if config and config.get('recipe') else run_dir.name}"
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"{_header(run_dir, config, shown)}\n{sections}\n</body>\n</html>\n")


def write_report(run_dir: str | Path, media: dict[str, Path] | None = None,
                 facts: dict[str, str] | None = None) -> Path:
    """Write ``RUN_DIR/report.html`` (:func:`render_report`) atomically and return its path."""
    page = render_report(run_dir, media, facts)
    path = Path(run_dir) / "report.html"
    atomic_write(path, page.encode("utf-8"))
    return path
