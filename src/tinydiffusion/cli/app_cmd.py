"""``tinydiffusion app [RUN_DIR ...]``: the explorer in the browser (needs the ``[app]`` extra, Gradio).

Nothing heavy is imported at module level (no torch, no Gradio), so ``tinydiffusion --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "explore the diffusion process and trained runs in the browser (needs: pip install 'tinydiffusion[app]')"
DEFAULT_RUNS = Path("runs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="*", metavar="RUN_DIR",
                   help="run directories, or folders of runs (default: ./runs when it exists)")
    p.add_argument("--port", type=int, help="port to serve on (default: the first free one from 7860)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 127.0.0.1 keeps the app on this machine, 0.0.0.0 opens it to the "
                        "network")
    p.add_argument("--device", default="auto", help="where to sample: auto (a GPU when there is one), cpu or cuda")
    p.add_argument("--max-n", type=int, default=64, help="most images one request may sample")
    p.add_argument("--max-steps", type=int, default=1000, help="most sampler steps one request may take")
    p.add_argument("--max-points", type=int, default=5000, help="most 2-D points one request may sample")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # Gradio's Hugging Face library: the app never needs the Hub
    from ..app.launch import import_gradio

    import_gradio()  # a missing extra is one line, before any other work
    from ..app.launch import start
    from ..app.runs import Limits, RunRegistry
    from ..train.setup import resolve_device

    limits = Limits(max_n=args.max_n, max_steps=args.max_steps, max_points=args.max_points)
    paths = args.runs or ([DEFAULT_RUNS] if DEFAULT_RUNS.is_dir() else [])
    registry = RunRegistry.discover(paths, resolve_device(args.device))
    found = ", ".join(registry.runs) or "none (the forward process works without; give RUN_DIR to sample)"
    print(f"tinydiffusion app: runs: {found}; sampling on {registry.device}", file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"tinydiffusion app: warning: listening on {args.host}: other machines on the network can use the app",
              file=sys.stderr)
    try:
        start(registry, limits, host=args.host, port=args.port, open_browser=args.open, block=True)
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped, also while it is still starting
        pass
    print("tinydiffusion app: stopped", file=sys.stderr)
    return 0
