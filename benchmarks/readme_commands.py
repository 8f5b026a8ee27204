"""Time every command the README shows after training, to state their times in the README.

    python benchmarks/readme_commands.py [--run runs/quickstart] [--threads 2]

Takes the ``tinydiffusion ...`` commands of the README's "Then:" block and of its "Seeing diffusion"
table (not ``train``), runs each in a scratch folder against the trained run (``runs/quickstart`` in
the README is replaced by ``--run``), and prints a Markdown table of wall-clock seconds. Measure on a
quiet machine: other jobs on the same cores make the numbers meaningless.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands(readme: Path) -> list[str]:
    """The README's commands after training, in order of appearance, without comments or ``...`` fragments."""
    text = readme.read_text(encoding="utf-8")
    then = text.split("Then:", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in then.splitlines()]
    seeing = text.split("## Seeing diffusion", 1)[1].split("\n## ", 1)[0]
    commands += re.findall(r"`(tinydiffusion (?:show|sample|report|eval)[^`]*)`", seeing)
    return [c for c in dict.fromkeys(commands) if c.startswith("tinydiffusion ") and "..." not in c]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(REPO / "runs" / "quickstart"), help="a trained quickstart run")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS for the commands")
    args = parser.parse_args()
    run = Path(args.run).resolve()
    if not (run / "model.safetensors").is_file():
        print(f"no trained run at {run}; run tinydiffusion train first", file=sys.stderr)
        return 2
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    print("| command | seconds |\n|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for command in readme_commands(REPO / "README.md"):
            argv = [a.replace("runs/quickstart", str(run)) for a in shlex.split(command)]
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "tinydiffusion", *argv[1:]], cwd=scratch, env=env,
                                  capture_output=True, text=True)
            seconds = time.perf_counter() - start
            status = "" if done.returncode == 0 else f" (exit {done.returncode}: {done.stderr.strip()[-200:]})"
            print(f"| `{command}` | {seconds:.1f}{status} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
