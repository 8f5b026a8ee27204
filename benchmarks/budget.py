"""The quality-per-CPU-minute study behind the ``quickstart`` recipe (``quality.py --suite budget``).

Every variant is 0.1.0's quickstart recipe (``quickstart-0.1.0.toml`` beside this script; the shipped
recipe has since become the study's winner) with a few settings changed, trained for the same number of
CPU minutes and scored the same way:

* **Budget.** The budget is what 800 steps of today's (0.1.0) quickstart cost; a variant whose step
  costs ``r`` of those steps trains for ``800 / r`` steps. ``--calibrate`` measures ``r`` for every
  distinct network and batch size, timing them in interleaved rounds and writing ``RUNS/speed.json``;
  only ratios enter, so the calibration holds even on a shared machine, and measuring speed apart from
  training lets the variants train while other work shares the machine without changing what they
  learn. ``--budget-anchor`` (today's quickstart's seconds per step on an idle machine) turns steps into
  CPU minutes, for the table and for ``--minutes`` budgets.
* **Score.** N samples (N/10 per class) with the variant's sampler settings and N more with plain
  conditional sampling (w = 1), scored with the shipped Fashion-MNIST extractor against the *whole*
  Fashion-MNIST test set at 16 px: FD (and its floor: N real training images against the same test
  set), KID, precision/recall (k = 3, N real test images), class accuracy guided and unguided, and the
  extractor's own accuracy on the real 16-px test images (the ceiling of class accuracy).

Results are kept per run (``RUNS/NAME/budget-score-*.json``), so the study can be run piece by piece
(``--variants a b c``) and the table and the plot rebuilt from what is there.
"""

from __future__ import annotations

import json
import math
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tinydiffusion.checkpoint import load_model
from tinydiffusion.config import build_config
from tinydiffusion.data import load_dataset, make_batches
from tinydiffusion.generate import SampleSettings, generate, sample_shape
from tinydiffusion.metrics.features import get_extractor, images_to_tensor
from tinydiffusion.metrics.frechet import feature_statistics, frechet_distance
from tinydiffusion.metrics.kid import kernel_inception_distance
from tinydiffusion.metrics.prdc import precision_recall
from tinydiffusion.train.distributed import Dist
from tinydiffusion.train.loop import Trainer
from tinydiffusion.train.setup import setup_run
from tinydiffusion.viz.grid import to_uint8

#: Steps of today's (0.1.0) quickstart: the budget is what they cost.
ANCHOR_STEPS = 800
#: 0.1.0's quickstart recipe, the base of every variant.
BASE = Path(__file__).with_name("quickstart-0.1.0.toml")
#: Settings every study run shares: one cheap preview at the end, no TensorBoard, no bar.
QUIET = ["preview.n=10", "preview.raw=false", "log.tensorboard=off", "log.progress=false", "log.every=100"]


@dataclass(frozen=True)
class Variant:
    """0.1.0's quickstart with ``train`` overrides (``--set`` syntax)."""

    description: str
    train: tuple[str, ...] = ()


QS = dict(sampler="dpm++", steps=20, guidance=2.0, clip_x0=True)  # today's quickstart sampling

VARIANTS: dict[str, Variant] = {
    "today": Variant("today's quickstart (0.1.0)"),
    # weight averaging
    "ema-rel10": Variant("EMA half-life 10 % of images seen (ramp-up), not a per-step 0.995",
                         ("ema.halflife_images=1e9", "ema.rampup=0.1")),
    "ema-rel05": Variant("EMA half-life 5 % of images seen", ("ema.halflife_images=1e9", "ema.rampup=0.05")),
    "ema-rel20": Variant("EMA half-life 20 % of images seen", ("ema.halflife_images=1e9", "ema.rampup=0.2")),
    # batch size and learning rate
    "b64": Variant("batch 64 (more, smaller steps)", ("optim.batch_size=64",)),
    "b64-lr3": Variant("batch 64, lr 3e-3", ("optim.batch_size=64", "optim.lr=3e-3")),
    "lr4": Variant("lr 4e-3", ("optim.lr=4e-3",)),
    # loss weighting and target
    "minsnr5": Variant("Min-SNR-5 weighting (v target)", ("objective.min_snr_gamma=5.0",)),
    "eps": Variant("ε-prediction", ("objective.prediction=epsilon",)),
    "x0": Variant("x₀-prediction", ("objective.prediction=x0",)),
    # width, depth, attention
    "w32-64-64": Variant("widths 32-64-64", ("model.block_out_channels=[32,64,64]",)),
    "depth2": Variant("two ResNet blocks per level", ("model.layers_per_block=2",)),
    "no-mid-attn": Variant("no attention in the middle block", ("model.mid_attention=false",)),
    "attn-8px": Variant("attention at 8 px as well as 4 px", ("model.attention_levels=[1,2]",)),
    # data
    "noflip": Variant("no horizontal flips (Fashion-MNIST's shoes all point left)", ("data.hflip=false",)),
    # on top of the two changes that helped most: Min-SNR-5 and no flips (the winner)
    "minsnr5-noflip": Variant("Min-SNR-5 and no flips", ("objective.min_snr_gamma=5.0", "data.hflip=false")),
    "combo": Variant("Min-SNR-5, no flips, batch 64, lr 3e-3",
                     ("objective.min_snr_gamma=5.0", "data.hflip=false", "optim.batch_size=64", "optim.lr=3e-3")),
    "winner-full60k": Variant("Min-SNR-5, no flips, on the full 60,000 training images (needs the idx files)",
                              ("objective.min_snr_gamma=5.0", "data.hflip=false", "data.spec=fashion-mnist")),
    "winner-ema-rel10": Variant("Min-SNR-5, no flips, EMA half-life 10 % of images seen",
                                ("objective.min_snr_gamma=5.0", "data.hflip=false", "ema.halflife_images=1e9",
                                 "ema.rampup=0.1")),
    "winner-no-mid-attn": Variant("Min-SNR-5, no flips, no attention in the middle block",
                                  ("objective.min_snr_gamma=5.0", "data.hflip=false", "model.mid_attention=false")),
    "minsnr2-noflip": Variant("Min-SNR-2 and no flips", ("objective.min_snr_gamma=2.0", "data.hflip=false")),
    "minsnr5-noflip-lr3": Variant("Min-SNR-5, no flips, lr 3e-3",
                                  ("objective.min_snr_gamma=5.0", "data.hflip=false", "optim.lr=3e-3")),
}

#: (variant, label, settings) sampler studies on a trained variant: no retraining, only sampling.
SAMPLING: dict[str, dict] = {
    "w1.5": dict(QS, guidance=1.5), "w2.5": dict(QS, guidance=2.5), "w3": dict(QS, guidance=3.0),
    "dpm5": dict(QS, steps=5), "dpm8": dict(QS, steps=8), "dpm10": dict(QS, steps=10), "dpm15": dict(QS, steps=15),
    "ddim10": dict(QS, sampler="ddim", steps=10), "ddim20": dict(QS, sampler="ddim", steps=20),
    "dpm10-w1.5": dict(QS, steps=10, guidance=1.5), "dpm10-w2.5": dict(QS, steps=10, guidance=2.5),
    "dpm10-noclip": dict(QS, steps=10, clip_x0=False),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- speed
def network_key(variant: Variant) -> tuple[str, ...]:
    """The settings that decide the cost of a step (network and batch), as a key into speed.json."""
    costly = ("model.", "optim.batch_size", "data.spec")
    return tuple(sorted(o for o in variant.train if o.startswith(costly)))


def calibrate(names: list[str], runs: Path, steps: int, rounds: int) -> dict:
    """Seconds per training step of every distinct network and batch, timed in interleaved rounds."""
    keys = {network_key(VARIANTS[n]): n for n in names}
    parts = {}
    for key, name in keys.items():
        cfg = build_config(config_file=BASE, overrides=["runtime.device=cpu", *VARIANTS[name].train, *QUIET])
        parts[key] = setup_run(cfg, torch.device("cpu"), 1)
    times: dict[tuple, list[float]] = {key: [] for key in parts}
    trainers = {key: Trainer(p, runs / "calibration", Dist()) for key, p in parts.items()}
    streams = {key: make_batches(p.dataset, p.cfg.optim.batch_size, device="cpu", seed=0, condition=p.condition,
                                 hflip=p.cfg.data.hflip) for key, p in parts.items()}
    for key, trainer in trainers.items():  # warm-up: kernels, allocator
        trainer.net.train()
        for _ in range(3):
            trainer.train_step(next(streams[key]), 1e-4)
    for r in range(rounds):
        for key, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(steps):
                trainer.train_step(next(streams[key]), 1e-4)
            times[key].append((time.perf_counter() - start) / steps)
        log(f"calibration round {r + 1}/{rounds}: " + ", ".join(f"{keys[k]} {1e3 * v[-1]:.0f} ms" for k, v in times.items()))
    return {json.dumps(list(key)): {"variant": keys[key], "seconds_per_step": statistics.median(v), "rounds": v}
            for key, v in times.items()}


def seconds_per_step(speed: dict, variant: Variant) -> float:
    key = json.dumps(list(network_key(variant)))
    if key not in speed:
        raise SystemExit(f"speed.json has no step time for {list(network_key(variant))}; run --calibrate with this variant")
    return float(speed[key]["seconds_per_step"])


# ---------------------------------------------------------------------------------------- training
def budget_steps(speed: dict, variant: Variant, minutes: float | None, anchor_s: float) -> tuple[int, float]:
    """(steps, CPU minutes) of a variant's budget: ``minutes``, or None for 800 steps of today's quickstart.

    Only ratios of measured step times enter (a step of this variant costs ``ratio`` steps of today's
    quickstart), so calibrating on a shared machine in interleaved rounds still gives the right budget;
    ``anchor_s`` (today's quickstart's seconds per step on an idle machine) converts steps to minutes.
    """
    ratio = seconds_per_step(speed, variant) / seconds_per_step(speed, VARIANTS["today"])
    if minutes is None:
        steps = max(1, math.floor(ANCHOR_STEPS / ratio))
    else:
        steps = max(1, math.floor(60 * minutes / (ratio * anchor_s)))
    return steps, steps * ratio * anchor_s / 60


def run_name(name: str, minutes: float | None) -> str:
    return name if minutes is None else f"{name}@{minutes:g}min"


def train(name: str, runs: Path, speed: dict, minutes: float | None, anchor_s: float) -> Path:
    """Train variant ``name`` for its budget into RUNS/NAME (reused once its budget.json is there)."""
    variant = VARIANTS[name]
    out = runs / run_name(name, minutes)
    steps, cpu_minutes = budget_steps(speed, variant, minutes, anchor_s)
    if (out / "budget.json").exists():  # written once training has finished
        return out
    overrides = [*variant.train, *QUIET]
    cmd = [sys.executable, "-m", "tinydiffusion", "train", "--config", str(BASE), "--out", str(out), "--steps", str(steps),
           "--device", "cpu"]
    for o in overrides:
        cmd += ["--set", o]
    log(f"$ {shlex.join(cmd)}    # {cpu_minutes:.2f} CPU minutes")
    subprocess.run(cmd, check=True)
    (out / "budget.json").write_text(json.dumps({"steps": steps, "cpu_minutes": cpu_minutes}) + "\n")
    return out


# ---------------------------------------------------------------------------------------- scoring
@dataclass
class Reference:
    """Extractor features of the Fashion-MNIST test set at 16 px, the floor set, and the ceiling."""

    extractor: object
    features: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    train16: np.ndarray
    ceiling: float

    @classmethod
    def build(cls) -> "Reference":
        extractor = get_extractor("fashion-mnist")
        test = load_dataset("fashion-mnist", split="test", image_size=16)
        x = images_to_tensor(test.images)
        features = extractor.features(x).numpy()
        ceiling = float((extractor.logits(x).argmax(1).numpy() == test.labels).mean())
        train16 = load_dataset("fashion-mnist", split="train", image_size=16).images
        mu, sigma = feature_statistics(features)
        return cls(extractor, features, mu, sigma, train16, ceiling)

    def fd(self, features: np.ndarray) -> float:
        mu, sigma = feature_statistics(features)
        return frechet_distance(mu, sigma, self.mu, self.sigma)

    def floor(self, n: int) -> float:
        rows = np.sort(np.random.default_rng([0, 1]).choice(len(self.train16), n, replace=False))
        return self.fd(self.extractor.features(images_to_tensor(self.train16[rows])).numpy())


def draw(run: Path, n: int, settings: dict, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """n samples, n/10 per class (class-major), as uint8, their labels, and the seconds it took."""
    loaded = load_model(run)
    labels = torch.arange(10).repeat_interleave(-(-n // 10))[:n]
    start = time.perf_counter()
    x = generate(loaded.model, loaded.schedule, sample_shape(loaded.meta["data"]), n,
                 settings=SampleSettings(**settings), prediction=loaded.prediction, seed=seed, cond=labels,
                 batch_size=500)
    return to_uint8(x), labels.numpy(), time.perf_counter() - start


def score(run: Path, label: str, settings: dict, ref: Reference, n: int) -> dict:
    """The study's numbers for one trained run and one set of sampler settings (cached in the run)."""
    path = run / f"budget-score-{label}-n{n}.json"
    if path.exists():
        return json.loads(path.read_text())
    images, labels, seconds = draw(run, n, settings, seed=10_000)
    x = images_to_tensor(images)
    features = ref.extractor.features(x).numpy()
    guided_acc = float((ref.extractor.logits(x).argmax(1).numpy() == labels).mean())
    plain = dict(settings, guidance=1.0)
    plain_images, _, _ = draw(run, n, plain, seed=20_000) if settings.get("guidance") not in (None, 1.0) else (images, None, 0)
    plain_acc = float((ref.extractor.logits(images_to_tensor(plain_images)).argmax(1).numpy() == labels).mean())
    kid, kid_se = kernel_inception_distance(ref.features, features, num_subsets=100, subset_size=1000, seed=0)
    rows = np.sort(np.random.default_rng([0, 2]).choice(len(ref.features), n, replace=False))
    precision, recall = precision_recall(ref.features[rows], features, k=3)
    result = {"label": label, "settings": settings, "n": n, "fd": ref.fd(features), "kid": kid, "kid_se": kid_se,
              "precision": precision, "recall": recall, "accuracy_guided": guided_acc,
              "accuracy_unguided": plain_acc, "sampling_seconds": seconds}
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


# ---------------------------------------------------------------------------------------- report
HEADER = ("| variant | what changed | steps | CPU min | sampler | FD ↓ | FD floor | KID ×10³ ↓ | precision | recall | "
          "class acc. (guided) | class acc. (w = 1) |\n|---|---|---:|---:|---|---:|---:|---|---:|---:|---:|---:|")


def row(name: str, run: Path, result: dict, floor: float) -> str:
    budget = json.loads((run / "budget.json").read_text())
    s = result["settings"]
    sampler = f"{s['sampler']} {s['steps']}, w = {s.get('guidance') or 1:g}" + ("" if s.get("clip_x0") else ", no clip")
    what = VARIANTS[name.split("@")[0]].description + ("" if result["label"] == "default" else f"; sampled {result['label']}")
    return (f"| {name}{'' if result['label'] == 'default' else ' / ' + result['label']} | {what} | {budget['steps']:,} | "
            f"{budget['cpu_minutes']:.2f} | {sampler} | {result['fd']:.3f} | {floor:.3f} | "
            f"{1e3 * result['kid']:.2f} ± {1e3 * result['kid_se']:.2f} | {result['precision']:.3f} | {result['recall']:.3f} | "
            f"{100 * result['accuracy_guided']:.1f} % | {100 * result['accuracy_unguided']:.1f} % |")


def plot(points: dict[str, list[tuple[float, float]]], path: Path, n: int, budget_minutes: float) -> None:
    """FD against CPU minutes, one line per curve (named ``VARIANT`` or ``VARIANT / SAMPLER``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for name, pts in points.items():
        pts = sorted(pts)
        variant = VARIANTS[name.split(" / ")[0]]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{name}: {variant.description}")
    ax.axvline(budget_minutes, color="grey", linestyle=":", linewidth=1)
    ax.text(budget_minutes, ax.get_ylim()[0], " the quickstart's budget", color="grey", va="bottom", fontsize=8)
    ax.set_xlabel("CPU minutes of training (2 cores)")
    ax.set_ylabel(f"FD to Fashion-MNIST test @16 px, N = {n:,}")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sample_settings(run: Path) -> dict:
    """The run's own [sample] settings (what ``tinydiffusion sample`` would use)."""
    meta = load_model(run).meta["sample"]
    return {k: meta[k] for k in ("sampler", "steps", "guidance", "clip_x0")}


def without_output_flags(argv: list[str]) -> list[str]:
    """The command line without where the runs live and where the table goes (for the table's caption)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--runs", "--write", "--section"):
            skip = True
        else:
            out.append(a)
    return out


def sampled_with(name: str, choices: list[str]) -> str:
    """The sampler study a variant is scored with: ``VARIANT=LABEL`` for it, else a bare ``LABEL``, else its own."""
    mapped = dict(c.split("=", 1) for c in choices if "=" in c)
    bare = [c for c in choices if "=" not in c]
    label = mapped.get(name, bare[0] if bare else "default")
    if label != "default" and label not in SAMPLING:
        raise SystemExit(f"unknown sampler study {label!r}; known: {', '.join(SAMPLING)}")
    return label


def main(args) -> str:
    runs: Path = args.runs
    runs.mkdir(parents=True, exist_ok=True)
    names = args.variants or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    speed_path = runs / "speed.json"
    if args.calibrate:
        speed = json.loads(speed_path.read_text()) if speed_path.exists() else {}
        speed.update(calibrate(names, runs, args.calibration_steps, args.calibration_rounds))
        speed_path.write_text(json.dumps(speed, indent=2) + "\n")
        log(f"wrote {speed_path}")
        return ""
    if not speed_path.exists():
        raise SystemExit(f"{speed_path} is missing: run with --calibrate first, on an otherwise idle machine")
    speed = json.loads(speed_path.read_text())
    if args.train_only:
        for name in names:
            for minutes in [None, *(args.minutes if name in args.curve else [])]:
                train(name, runs, speed, minutes, args.budget_anchor)
        return ""
    ref = Reference.build()
    floor = ref.floor(args.n)
    log(f"extractor accuracy on real 16-px test images (the ceiling): {100 * ref.ceiling:.2f} %; "
        f"FD floor at N={args.n}: {floor:.3f}")
    lines = []
    points: dict[str, list[tuple[float, float]]] = {}
    for name in names:
        for minutes in [None, *args.minutes]:
            if minutes is not None and name not in args.curve:
                continue
            run = train(name, runs, speed, minutes, args.budget_anchor)
            own = sampled_with(name, args.sample_with)
            labels = [(own, SAMPLING[own] if own != "default" else sample_settings(run))]
            if minutes is None and name in args.sampling_variants:
                labels += [(k, v) for k, v in SAMPLING.items() if not args.samplers or k in args.samplers]
            for label, settings in labels:
                result = score(run, label, settings, ref, args.n)
                lines.append(row(run.name, run, result, floor))
                log(lines[-1])
                if label == own and name in args.curve:
                    cpu = json.loads((run / "budget.json").read_text())["cpu_minutes"]
                    points.setdefault(name if own == "default" else f"{name} / {own}", []).append((cpu, result["fd"]))
    if points and args.plot:
        plot(points, args.plot, args.n, ANCHOR_STEPS * args.budget_anchor / 60)
    from quality import cpu_name  # beside this script

    shown = shlex.join(["python", "benchmarks/quality.py", *without_output_flags(sys.argv[1:])])
    head = (f"Scored {time.strftime('%Y-%m-%d')} on {cpu_name()} ({torch.get_num_threads()} scoring "
            f"thread(s), torch {torch.__version__}); `{shown}`. Reference: the 10,000 Fashion-MNIST test images at "
            f"16 px; FD floor = {args.n:,} real training images against them; the extractor names "
            f"{100 * ref.ceiling:.2f} % of the real 16-px test images correctly (the ceiling of class accuracy).")
    return "\n".join([head, "", HEADER, *lines])
