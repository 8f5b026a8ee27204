"""Shared test setup: the data root, and a tiny training configuration for fast end-to-end runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Real MNIST / Fashion-MNIST come from ../shared/data next to the checkout (CI sets it too).
if "TINYDIFFUSION_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["TINYDIFFUSION_DATA"] = str(SHARED_DATA)

#: --set overrides that shrink the quickstart recipe to a network and run that take a second or two.
TINY = [
    "model.block_out_channels=[8, 16]",
    "model.norm_groups=4",
    "model.attention_head_dim=8",
    "data.n=64",
    "optim.batch_size=8",
    "optim.warmup_steps=0",
    "preview.n=4",
    "preview.max_share=1",  # every scheduled preview, however long it takes beside a step this short
    "sample.steps=2",
    "log.every=1",
    "log.tensorboard=off",
    "log.progress=false",
]


def tiny_args(out: Path, steps: int = 3, *extra: str) -> list[str]:
    """``tinydiffusion train`` arguments for a tiny quickstart-shaped run into ``out``."""
    args = ["train", "--out", str(out), "--steps", str(steps)]
    for override in [*TINY, *extra]:
        args += ["--set", override]
    return args


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny class-conditional run (read-only for the tests that share it)."""
    from tinydiffusion.cli.main import main

    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(tiny_args(out, 3)) == 0
    return out


@pytest.fixture(scope="session")
def context_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run of seed 002's context network on the bundled tiles (6-dim context vectors, RGB)."""
    from tinydiffusion.cli.main import main

    out = tmp_path_factory.mktemp("runs") / "context"
    assert main(["train", "--recipe", "dlai-tiles", "--out", str(out), "--steps", "2", "--batch-size", "8",
                 "--set", "model.n_feat=16", "--set", "data.n=32", "--set", "preview.n=4", "--set", "sample.steps=2",
                 "--set", "log.tensorboard=off", "--set", "log.progress=false", "--set", "log.every=1"]) == 0
    return out
