"""Helpers shared by the subcommands: devices, output paths, conditions from flags, progress.

This module is imported to build the parser, so it imports no PyTorch at the top: the helpers that
need it import it when they run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ..files import check_writable

if TYPE_CHECKING:
    import torch

    from ..run import Run


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")


def device_from(args: argparse.Namespace) -> torch.device:
    from ..train.setup import resolve_device

    return resolve_device(args.device)


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (there is none anyway when stderr is not a terminal)")


def progress_from(args: argparse.Namespace) -> bool | None:
    """``--quiet``: no bar; otherwise a bar when stderr is a terminal."""
    return False if args.quiet else None


def announce_long_work(command: str, calls: int, what: str, faster: str) -> None:
    """Say up front when a command will make many network calls, and how to make it faster."""
    from ..progress import LONG_CALLS

    if calls > LONG_CALLS:
        print(f"tinydiffusion {command}: {what} takes {calls:,} network calls, which is slow on a CPU; "
              f"{faster}", file=sys.stderr)


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
                   help="class id(s) to generate; several ids share the samples, one row each "
                        "(default: one row per class)")
    p.add_argument("--context", action="append", metavar="V1,V2,...|NAME=V,...",
                   help="a context vector such as '1,0,0.6,0,0', or the same mixture by the dataset's names, "
                        "such as 'hero=1,food=0.6' (entries not named are 0); repeat the flag for several (seed 002)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance weight w: eps_u + w (eps_c - eps_u); 1 = plain conditional")


def conditions(args: argparse.Namespace, run: Run, n: int) -> torch.Tensor | None:
    """The per-sample conditions asked for on the command line (see :meth:`Run.conditions`)."""
    import torch

    from ..conditioning import parse_context

    num_classes, context_dim = run.num_classes, run.context_dim
    if args.classes and args.context:
        raise UserError("give --class or --context, not both")
    if args.classes and not num_classes:
        kind = f"context vectors of length {context_dim} (use --context)" if context_dim else "no conditions"
        raise UserError(f"--class was given but this model takes {kind}")
    if args.context and not context_dim:
        kind = f"class ids 0..{num_classes - 1} (use --class)" if num_classes else "no conditions"
        raise UserError(f"--context was given but this model takes {kind}")
    if args.guidance is not None and not (num_classes or context_dim):
        raise UserError("--guidance needs a conditional model; this one was trained without labels")
    contexts = (torch.stack([parse_context(c, context_dim, run.class_names) for c in args.context])
                if args.context else None)
    return run.conditions(n, args.classes, contexts)
