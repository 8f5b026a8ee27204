"""How a run was made, kept across ``--resume``: one config file per stretch of training.

``config.toml`` is the resolved config the run started with and is never rewritten by a resume. Every
``--resume`` that continues from step S writes ``config-resume-<S>.toml`` (S with 8 digits) with the
config it trains with from S on, so the files together say how every step was made. Before a resume
starts, its config is compared with the newest of these files: a change of the network, the data, the
schedule or the objective would continue different weights on a different problem and is refused; any
other change (batch size, learning rate, seed, length, sampling, logging, …) is allowed and reported.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from .config import TrainConfig, from_dict, read_toml, to_dict
from .errors import UserError

CONFIG_FILE = "config.toml"
_RESUME_NAME = re.compile(r"^config-resume-(\d{8,})\.toml$")
#: Settings a run cannot change when it continues (the weights would no longer fit the problem).
INCOMPATIBLE = ("model", "data", "schedule", "objective", "ema.enabled")
#: Settings that do not describe the training at all.
IGNORED = ("out", "description")


def resume_config_path(run_dir: Path, step: int) -> Path:
    """``RUN_DIR/config-resume-<step>.toml``: the config of the training that continues from ``step``."""
    return Path(run_dir) / f"config-resume-{step:08d}.toml"


def config_history(run_dir: Path) -> list[Path]:
    """The config files of a run in the order they were made: ``config.toml``, then one per resume."""
    run_dir = Path(run_dir)
    resumes = sorted((int(m.group(1)), p) for p in run_dir.glob("config-resume-*.toml")
                     if (m := _RESUME_NAME.match(p.name)))
    first = [run_dir / CONFIG_FILE] if (run_dir / CONFIG_FILE).is_file() else []
    return first + [p for _, p in resumes]


def current_config(run_dir: Path) -> Path | None:
    """The config the run trained with last (the newest file of :func:`config_history`), or None."""
    history = config_history(run_dir)
    return history[-1] if history else None


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_changes(before: TrainConfig, after: TrainConfig) -> list[tuple[str, Any, Any]]:
    """(setting, old value, new value) for every setting that differs (None: not set)."""
    a, b = _flatten(to_dict(before)), _flatten(to_dict(after))
    keys = sorted(set(a) | set(b))
    return [(k, a.get(k), b.get(k)) for k in keys
            if a.get(k) != b.get(k) and not any(k == i or k.startswith(f"{i}.") for i in IGNORED)]


def _is_incompatible(key: str) -> bool:
    return any(key == i or key.startswith(f"{i}.") for i in INCOMPATIBLE)


def _describe(changes: list[tuple[str, Any, Any]], limit: int = 6) -> str:
    def show(v: Any) -> str:
        return "unset" if v is None else repr(v) if isinstance(v, str) else str(v)

    text = ", ".join(f"{k} {show(old)} -> {show(new)}" for k, old, new in changes[:limit])
    return text + (f" and {len(changes) - limit} more" if len(changes) > limit else "")


def check_resume(run_dir: Path, cfg: TrainConfig) -> list[tuple[str, Any, Any]]:
    """Compare a resume's resolved ``cfg`` with the run's newest config file.

    Raises a UserError for a change of :data:`INCOMPATIBLE` settings and returns the other changes
    (empty when the run has no config file to compare with).
    """
    saved_path = current_config(run_dir)
    if saved_path is None:
        return []
    saved = from_dict(read_toml(saved_path))
    changes = config_changes(saved, cfg)
    refused = [c for c in changes if _is_incompatible(c[0])]
    if refused:
        raise UserError(f"--resume would change what {Path(run_dir)} was trained on ({_describe(refused)}, as "
                        f"against {saved_path.name}); a run cannot continue with a different model, data, schedule or "
                        "objective: resume with its own settings (tinydiffusion train --resume --out "
                        f"{Path(run_dir)}) or train into a new --out")
    return changes


def report_changes(run_dir: Path, step: int, changes: list[tuple[str, Any, Any]]) -> None:
    """Warn (one line) about the settings a resume changed, naming the file that records them."""
    if changes:
        warnings.warn(f"resuming {Path(run_dir)} at step {step} with changed settings: {_describe(changes)} "
                      f"(recorded in {resume_config_path(run_dir, step).name}; {CONFIG_FILE} keeps the original)",
                      UserWarning, stacklevel=2)
