"""Helpers shared by the subcommands: devices, output paths, conditions from flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..conditioning import check_classes, parse_context
from ..errors import UserError
from ..files import check_writable
from ..generate import class_rows
from ..train.setup import resolve_device


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")


def device_from(args: argparse.Namespace) -> torch.device:
    return resolve_device(args.device)


def output_path(path: str | None, suffixes: tuple[str, ...], flag: str = "--out") -> Path | None:
    """Check an output file before any work is done: a known suffix and an existing, writable folder."""
    if path is None:
        return None
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {path}: the file must end in {' or '.join(suffixes)}")
    if not p.parent.exists():
        raise UserError(f"{flag} {path}: the folder {p.parent} does not exist; create it first")
    if p.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name")
    check_writable(p.parent, f"{flag} {path}")
    return p


def distinct_outputs(outputs: dict[str, Path | None]) -> None:
    """Refuse two flags naming the same file (one would silently overwrite the other)."""
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise UserError(f"{seen[key]} and {flag} both name {path}; give them different files")
        seen[key] = flag


def add_condition_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--class", dest="classes", type=int, nargs="+", metavar="ID",
                   help="class id(s) to generate; several ids are cycled over the samples (default: one row per class)")
    p.add_argument("--context", action="append", metavar="V1,V2,...|NAME=V,...",
                   help="a context vector such as '1,0,0.6,0,0', or the same mixture by the dataset's names, "
                        "such as 'hero=1,food=0.6' (entries not named are 0); repeat the flag for several (seed 002)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance weight w: eps_u + w (eps_c - eps_u); 1 = plain conditional")


def conditions(args: argparse.Namespace, model_config: dict, n: int,
               names: list[str] | None = None) -> tuple[torch.Tensor | None, int | None]:
    """The per-sample conditions asked for on the command line, and the grid row length they suggest.

    ``names`` are the dataset's class (context) names, for ``--context NAME=V,...``.
    """
    num_classes = int(model_config.get("num_classes") or 0)
    context_dim = int(model_config.get("context_dim") or 0)
    if args.classes and args.context:
        raise UserError("give --class or --context, not both")
    if args.classes:
        if not num_classes:
            kind = f"context vectors of length {context_dim} (use --context)" if context_dim else "no conditions"
            raise UserError(f"--class was given but this model takes {kind}")
        check_classes(args.classes, num_classes)
        ids = torch.tensor(args.classes, dtype=torch.long)
        return ids.repeat(-(-n // len(ids)))[:n], (None if len(ids) == 1 else len(ids))
    if args.context:
        if not context_dim:
            kind = f"class ids 0..{num_classes - 1} (use --class)" if num_classes else "no conditions"
            raise UserError(f"--context was given but this model takes {kind}")
        rows = torch.stack([parse_context(c, context_dim, names) for c in args.context])
        return rows.repeat(-(-n // len(rows)), 1)[:n], (None if len(rows) == 1 else len(rows))
    if args.guidance is not None and not (num_classes or context_dim):
        raise UserError("--guidance needs a conditional model; this one was trained without labels")
    if num_classes or context_dim:  # one row per class, or per one-hot context
        return class_rows(n, num_classes or context_dim, one_hot=not num_classes)
    return None, None
