"""Train the small CNN classifiers whose features the metrics use, and write them to the package assets.

    python scripts/train_feature_extractors.py                       # all three, a few minutes each on 2 cores
    python scripts/train_feature_extractors.py --datasets mnist --epochs 1

One classifier per dataset family (:mod:`tinydiffusion.metrics.classifier`): ``fashion-mnist`` and
``mnist`` (grey, 28 px, the idx train split; tested on the test split) and ``dcss-tiles`` (RGB, 32 px;
a seeded, class-stratified 20 % of the tiles is held out for testing, as the set has no split).
Augmentation per sample: a random shift of up to 2 px (replicated border), a horizontal flip where it
keeps the class (not for digits), and with probability ½ a round trip through 16 px (down by
antialiased bilinear or by area averaging, back up by the classifier's own resize) so that 16-px
generated samples are in distribution. AdamW with a one-cycle learning rate, batch 128, cross-entropy
with label smoothing, dropout before the head. Each epoch prints the test accuracy at both sizes.
Everything random is drawn from generators seeded by ``--seed``; with the same torch build and thread
count the weights are reproducible.

Each file ``features-<name>.safetensors`` carries metadata: dataset, input size, feature dimension,
classes, the classifier config, test accuracy at native size and at 16 px, and training time.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor

from tinydiffusion.data import load_dataset
from tinydiffusion.metrics.classifier import ClassifierConfig, DomainClassifier, resize_to
from tinydiffusion.metrics.features import images_to_tensor

ASSETS = Path(__file__).resolve().parents[1] / "src" / "tinydiffusion" / "assets"
LOW_RES = 16
SHIFT = 2
BATCH = 128


@dataclass(frozen=True)
class Family:
    """How to train one extractor: its dataset spec, canonical size, epochs and whether flips are allowed."""

    spec: str
    input_size: int
    epochs: int
    hflip: bool
    learning_rate: float = 2e-3
    widths: tuple[int, int, int] = (32, 64, 128)
    convs: tuple[int, int, int] = (2, 2, 2)
    dropout: float = 0.0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0


FAMILIES = {
    # Fashion-MNIST's judge must tell a 16-px shirt from a pullover: two convolutions per stage, and
    # regularised (dropout, weight decay, label smoothing) for the 20 epochs it needs to pass 93 % / 91 %.
    "fashion-mnist": Family("fashion-mnist", 28, epochs=20, hflip=True, convs=(2, 2, 2), dropout=0.3,
                            weight_decay=0.05, label_smoothing=0.1),
    "mnist": Family("mnist", 28, epochs=2, hflip=False, convs=(2, 2, 1)),
    "dcss-tiles": Family("dcss-tiles", 32, epochs=30, hflip=True, convs=(2, 2, 1)),
}


@dataclass
class Split:
    """Train and test images (float, [−1, 1], NCHW) at native size, test images at 16 px, labels, names."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_x16: Tensor
    test_y: Tensor
    class_names: list[str]


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a seeded ``fraction`` of each class (rounded), the held-out test set."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        test[rng.choice(rows, int(round(fraction * len(rows))), replace=False)] = True
    return test


def load_split(family: Family, seed: int) -> Split:
    """The family's train/test data; tiles are split by :func:`stratified_holdout`, the MNISTs by file."""
    if family.spec == "dcss-tiles":
        full = load_dataset(family.spec, image_size=family.input_size)
        low = load_dataset(family.spec, image_size=LOW_RES)
        test = stratified_holdout(full.labels, 0.2, seed)
        x, x16, y = images_to_tensor(full.images), images_to_tensor(low.images), torch.from_numpy(full.labels)
        return Split(x[~test], y[~test], x[test], x16[test], y[test], full.class_names)
    train = load_dataset(family.spec, split="train")
    test = load_dataset(family.spec, split="test")
    test16 = load_dataset(family.spec, split="test", image_size=LOW_RES)
    return Split(images_to_tensor(train.images), torch.from_numpy(train.labels), images_to_tensor(test.images),
                 images_to_tensor(test16.images), torch.from_numpy(test.labels), train.class_names)


def augment(x: Tensor, family: Family, generator: torch.Generator) -> Tensor:
    """Random shift, optional flip and a 16-px round trip for half the batch (module docstring)."""
    b, c, s, _ = x.shape
    padded = F.pad(x, (SHIFT,) * 4, mode="replicate")
    dy, dx = (torch.randint(0, 2 * SHIFT + 1, (2, b), generator=generator))
    grid = torch.arange(s)
    rows = (dy[:, None] + grid)[:, None, :, None]
    cols = (dx[:, None] + grid)[:, None, None, :]
    x = padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
    if family.hflip:
        flip = torch.rand(b, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    low = torch.rand(b, generator=generator) < 0.5
    by_area = torch.rand(b, generator=generator) < 0.5
    for mask, mode in ((low & by_area, "area"), (low & ~by_area, "bilinear")):
        if mask.any():
            small = F.interpolate(x[mask], size=(LOW_RES, LOW_RES), mode=mode,
                                  **({"antialias": True, "align_corners": False} if mode == "bilinear" else {}))
            x[mask] = resize_to(small, s)
    return x


def accuracy(model: DomainClassifier, x: Tensor, y: Tensor) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on images x and labels y."""
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((predictions == y).float().mean())


def train(name: str, family: Family, *, epochs: int, seed: int) -> tuple[DomainClassifier, dict]:
    """Train one extractor; returns the model (eval mode) and its metadata."""
    torch.manual_seed(seed)  # parameter initialisation
    generator = torch.Generator().manual_seed(seed)
    data = load_split(family, seed)
    config = ClassifierConfig(in_channels=data.train_x.shape[1], num_classes=len(data.class_names),
                              input_size=family.input_size, widths=family.widths, convs=family.convs,
                              dropout=family.dropout)
    model = DomainClassifier(config).to(memory_format=torch.channels_last)
    steps_per_epoch = -(-len(data.train_x) // BATCH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=family.learning_rate, weight_decay=family.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=family.learning_rate,
                                                   total_steps=epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(data.train_x), generator=generator)
        total = 0.0
        for i in range(steps_per_epoch):
            rows = order[i * BATCH:(i + 1) * BATCH]
            x = augment(data.train_x[rows], family, generator).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), data.train_y[rows], label_smoothing=family.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        print(f"{name}: epoch {epoch + 1}/{epochs} loss {total / steps_per_epoch:.4f}, test accuracy "
              f"{accuracy(model, data.test_x, data.test_y):.4f} (native) "
              f"{accuracy(model, data.test_x16, data.test_y):.4f} (16 px) "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    seconds = time.perf_counter() - start  # includes the per-epoch test passes
    model = model.to(memory_format=torch.contiguous_format).eval()
    metadata = {
        "dataset": family.spec,
        "input_size": family.input_size,
        "feature_dim": model.feature_dim,
        "classes": data.class_names,
        "config": config.to_dict(),
        "test_accuracy": round(accuracy(model, data.test_x, data.test_y), 4),
        "test_accuracy_16px": round(accuracy(model, data.test_x16, data.test_y), 4),
        "test_n": len(data.test_y),
        "train_n": len(data.train_y),
        "epochs": epochs,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }
    return model, metadata


def save(model: DomainClassifier, metadata: dict, path: Path) -> None:
    """Weights (float32) plus metadata; lists and dicts JSON-encoded, everything else as text."""
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    text = {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v) for k, v in metadata.items()}
    save_file(tensors, str(path), metadata=text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--epochs", type=int, help="override each family's number of epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=ASSETS)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        family = FAMILIES[name]
        model, metadata = train(name, family, epochs=args.epochs or family.epochs, seed=args.seed)
        path = args.out_dir / f"features-{name}.safetensors"
        save(model, metadata, path)
        print(f"{name}: test accuracy {metadata['test_accuracy']:.4f} (native), "
              f"{metadata['test_accuracy_16px']:.4f} (16 px), {metadata['train_seconds']:.0f} s -> {path} "
              f"({path.stat().st_size / 1024:.0f} KiB)", flush=True)


if __name__ == "__main__":
    main()
