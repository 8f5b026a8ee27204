"""Time every command the README shows after training, to state their times in the README.

    python benchmarks/readme_commands.py [--run runs/quickstart] [--threads 2]

Takes the ``tinydiffusion ...`` commands of the README's quick start and of its "Seeing diffusion"
table (not ``train``, nor commands on other runs), runs each in a scratch folder against the trained run (``runs/quickstart`` in
the README is replaced by ``--run``), and prints a Markdown table of wall-clock and CPU seconds. Measure
on a quiet machine: other jobs on the same cores make the wall-clock numbers meaningless (the CPU
seconds suffer less).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
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
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#", 1)[0].strip() for block in re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
                for line in block.splitlines()]
    seeing = "\n".join(line for line in text.split("## Seeing diffusion", 1)[1].split("\n## ", 1)[0].splitlines()
                        if line.startswith("|"))  # the table
    commands += re.findall(r"`(tinydiffusion (?:show|sample|report|eval|export)[^`]*)`", seeing)
    return [c for c in dict.fromkeys(commands)
            if c.startswith("tinydiffusion ") and not c.startswith("tinydiffusion train") and "..." not in c
            and ("runs/" not in c or "runs/quickstart" in c)]


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    print("| command | wall s | CPU s |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for command in readme_commands(REPO / "README.md"):
            argv = [a.replace("runs/quickstart", str(run)) for a in shlex.split(command)]
            start, cpu = time.perf_counter(), _children_cpu()
            done = subprocess.run([sys.executable, "-m", "tinydiffusion", *argv[1:]], cwd=scratch, env=env,
                                  capture_output=True, text=True)
            seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
            status = "" if done.returncode == 0 else f" (exit {done.returncode}: {done.stderr.strip()[-200:]})"
            print(f"| `{command}` | {seconds:.1f}{status} | {cpu:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
