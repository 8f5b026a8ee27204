"""Sample quality of recipes, measured as a user would measure it: ``tinydiffusion train`` then ``eval``.

    python benchmarks/quality.py [--suite cpu|gpu] [--runs DIR] [-n N] [--write docs/benchmarks.md]
    python benchmarks/quality.py --suite budget --calibrate            # seconds per step, on an idle machine
    python benchmarks/quality.py --suite budget -n 5000 [--variants ...] [--write docs/benchmarks.md]

``--suite budget`` is the quality-per-CPU-minute study behind the quickstart (see ``budget.py``).

Each case trains a recipe into ``RUNS/NAME`` (or reuses the run when ``model.safetensors`` is already
there) and evaluates it with several sampler settings through ``tinydiffusion eval`` with the project's
own feature extractor (each result is kept in the run as ``quality-eval-*.json`` and reused). Prints a
Markdown table (recipe, sampler, network calls, guidance, FD and its real-versus-real floor, KID,
precision, recall, class accuracy, training time) and, with ``--write``, puts it into the file between
the ``<!-- quality:SUITE -->`` and ``<!-- /quality:SUITE -->`` markers.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import platform
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class Case:
    """A recipe trained once and evaluated with each of ``evals`` (extra ``tinydiffusion eval`` flags)."""

    name: str
    train: list[str]
    evals: list[list[str]]
    reference: list[str] = field(default_factory=list)


SUITES = {
    # 2-core CPU: the quickstart as shipped, at 10 and 20 sampler steps and three guidance weights, and the
    # comparison with seed 000's recipe as the seed wrote it (both scored against full Fashion-MNIST).
    # DDPM with all T steps takes 4,000 network calls here (half an hour); the budget suite studies samplers.
    "cpu": [
        Case("quickstart", ["--recipe", "quickstart"], [
            ["--sampler", "dpm++", "--steps", "10", "--guidance", "2"],  # the recipe's own sampler
            ["--sampler", "dpm++", "--steps", "20", "--guidance", "2"],
            ["--sampler", "dpm++", "--steps", "10", "--guidance", "1"],
            ["--sampler", "dpm++", "--steps", "10", "--guidance", "3"],
            ["--sampler", "dpm++", "--steps", "10", "--guidance", "2", "--reference", "fashion-mnist"],
        ]),
        Case("dli-fashion16", ["--recipe", "dli-fashion16"], [
            ["--reference", "fashion-mnist"],
        ]),
    ],
    # One GPU: the quality recipe at N = 10,000.
    "gpu": [
        Case("fashion28", ["--recipe", "fashion28"], [
            ["--sampler", "dpm++", "--steps", "20", "--guidance", "2"],
            ["--sampler", "dpm++", "--steps", "20", "--guidance", "3"],
        ]),
    ],
}


def run(cmd: list[str]) -> str:
    print("$ " + shlex.join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def training_seconds(run_dir: Path) -> float:
    with open(run_dir / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["elapsed_s"])


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def evaluate_case(case: Case, runs: Path, n: int) -> list[list[str]]:
    run_dir = runs / case.name
    if not (run_dir / "model.safetensors").exists():
        run(["tinydiffusion", "train", *case.train, "--out", str(run_dir)])
    minutes = training_seconds(run_dir) / 60
    rows = []
    for flags in case.evals:
        cached = run_dir / f"quality-eval-{'_'.join(f.lstrip('-') for f in flags) or 'default'}-n{n}.json"
        if not cached.exists():  # evaluations are kept in the run, so a table can be rebuilt without sampling
            cached.write_text(run(["tinydiffusion", "eval", str(run_dir), "-n", str(n), "--no-save", *flags]))
        r = json.loads(cached.read_text())
        ref = r["reference"]
        rows.append([
            case.name, r["sampler"], str(r["network_calls"]), fmt(r.get("guidance"), 1) if r.get("guidance") else "—",
            f"{ref['dataset']}@{ref['image_size']}", str(r["n"]), fmt(r["fd"]), fmt(r["fd_floor"]),
            f"{1e3 * r['kid']:.2f} ± {1e3 * r['kid_se']:.2f}", fmt(r["precision"], 2), fmt(r["recall"], 2),
            fmt(r.get("class_accuracy"), 3), f"{minutes:.1f} min",
        ])
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    return rows


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo where there is one, else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


HEADER = ("| recipe | sampler | network calls | guidance | reference | N | FD | FD floor | KID ×10³ | precision | "
          "recall | class accuracy | training |\n|---|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|")


def table(rows: list[list[str]], suite: str, n: int) -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name()
    cmd = f"python benchmarks/quality.py --suite {suite} -n {n}"
    lines = [f"Measured {datetime.date.today()} on {device} ({torch.get_num_threads()} CPU threads), "
             f"torch {torch.__version__}; `{cmd}`.", "", HEADER]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(path: Path, suite: str, text: str) -> None:
    start, end = f"<!-- quality:{suite} -->", f"<!-- /quality:{suite} -->"
    doc = path.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{path} has no {start} ... {end} section")
    path.write_text(pattern.sub(lambda _: f"{start}\n{text}\n{end}", doc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted([*SUITES, "budget"]),
                        default="gpu" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--runs", type=Path, default=None, help="where the runs live (default runs/quality or "
                                                                 "runs/budget)")
    parser.add_argument("-n", type=int, default=1000, help="generated (and real) images per evaluation")
    parser.add_argument("--write", type=Path, default=None, help="the Markdown file to update")
    parser.add_argument("--section", default=None,
                        help="the marker to write between (<!-- quality:SECTION -->; default: the suite)")
    study = parser.add_argument_group("--suite budget")
    study.add_argument("--calibrate", action="store_true", help="measure seconds per step (idle machine) and stop")
    study.add_argument("--calibration-steps", type=int, default=10)
    study.add_argument("--calibration-rounds", type=int, default=3)
    study.add_argument("--variants", nargs="+", help="variants to train and score (default: all)")
    study.add_argument("--train-only", action="store_true", help="train the variants' runs, score nothing")
    study.add_argument("--minutes", type=float, nargs="*", default=[], help="extra budgets for the FD-vs-minutes curve")
    study.add_argument("--curve", nargs="*", default=[], help="variants trained at every --minutes budget")
    study.add_argument("--sampling-variants", nargs="*", default=[], help="variants also scored with other samplers")
    study.add_argument("--samplers", nargs="*", default=[], help="only these of the sampler studies (default: all)")
    study.add_argument("--sample-with", nargs="*", default=[], metavar="[VARIANT=]LABEL",
                       help="score variants with a sampler study's settings instead of their recipe's: "
                            "LABEL for all, VARIANT=LABEL for one")
    study.add_argument("--plot", type=Path, default=None, help="PNG of FD against CPU minutes")
    study.add_argument("--budget-anchor", type=float, default=0.1945,
                       help="seconds per step of today's quickstart on an idle machine (2-core Xeon, 2026-11-30)")
    args = parser.parse_args()
    if args.suite == "budget":
        import budget  # benchmarks/budget.py, beside this script

        args.runs = args.runs or Path("runs/budget")
        text = budget.main(args)
        if text:
            print(text)
            if args.write:
                write_section(args.write, args.section or args.suite, text)
        return
    args.runs = args.runs or Path("runs/quality")
    rows = [row for case in SUITES[args.suite] for row in evaluate_case(case, args.runs, args.n)]
    text = table(rows, args.suite, args.n)
    print(text)
    if args.write:
        write_section(args.write, args.section or args.suite, text)


if __name__ == "__main__":
    main()
