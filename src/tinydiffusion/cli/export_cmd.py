"""``tinydiffusion export RUN --diffusers DIR``: a run as a folder that diffusers loads."""

from __future__ import annotations

import argparse
import sys

HELP = "write a run as a diffusers folder (UNet2DModel + scheduler; DDPMPipeline for unconditional runs)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory (or its model.safetensors)")
    p.add_argument("--diffusers", required=True, metavar="DIR", help="the folder to write (must not exist yet)")


def run(args: argparse.Namespace) -> int:
    from ..interop.export import export_diffusers
    from ..run import load

    out, note = export_diffusers(load(args.run, "cpu"), args.diffusers)
    if note:
        print(f"tinydiffusion export: note: {note}", file=sys.stderr)
    print(f"wrote {out} (diffusers UNet2DModel + scheduler; {out / 'README.md'} shows how to sample)", file=sys.stderr)
    return 0
