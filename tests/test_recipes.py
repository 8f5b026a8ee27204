"""Every shipped recipe trains for a few steps, and builds the network its seed describes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinydiffusion import checkpoint
from tinydiffusion.cli.main import main
from tinydiffusion.config import recipe_names

SEED_PARAMS = {  # the seeds' own parameter counts (the README's 'Recipes' table)
    "hf-mnist-basic": 309_057,
    "pulfer-mnist": 606_852,
    "pulfer-fashion": 606_852,
    "s-curve": 72_066,
    "hf-mnist-unet2d": 1_707_009,
    "dli-fashion16": 240_385,
    "dlai-sprites": 1_481_027,  # 1,480,771 in the seed, whose 1x1 shortcut conv is not registered
}
#: The CPU variants train their seed's network (and seed-faithful recipe) unchanged.
CPU_VARIANTS = {"s-curve-fast": "s-curve", "pulfer-mnist-fast": "pulfer-mnist", "pulfer-fashion-fast": "pulfer-fashion",
                "hf-mnist-unet2d-fast": "hf-mnist-unet2d", "dlai-tiles-fast": "dlai-tiles",
                "dlai-sprites-fast": "dlai-sprites"}
QUICK = ["--set", "preview.n=2", "--set", "sample.steps=2", "--set", "log.every=1", "--set", "log.progress=false",
         "--set", "log.tensorboard=off", "--set", "optim.warmup_steps=0"]


def test_recipe_list_is_complete() -> None:
    expected = {"quickstart", "dli-fashion16", "hf-mnist-basic", "hf-mnist-unet2d", "dlai-sprites", "dlai-tiles",
                "pulfer-mnist", "pulfer-fashion", "s-curve", "fashion28", "mnist28", "tiles32", *CPU_VARIANTS}
    assert set(recipe_names()) == expected


def test_recipes_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["recipes", "--json"]) == 0
    infos = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(infos) == set(recipe_names())
    for name, params in SEED_PARAMS.items():
        assert infos[name]["params"] == params, name
    for variant, seed in CPU_VARIANTS.items():
        assert infos[variant]["params"] == infos[seed]["params"] and infos[variant]["model"] == infos[seed]["model"]
    for info in infos.values():
        assert info["description"] and info["model"] and info["params"] > 0


@pytest.fixture(scope="module")
def sprites(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A synthetic file in the course's sprite format (its real images are not available)."""
    folder = tmp_path_factory.mktemp("sprites")
    rng = np.random.default_rng(0)
    np.save(folder / "images.npy", rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8))
    np.save(folder / "labels.npy", np.eye(5)[rng.integers(0, 5, 40)])
    return f"sprites:{folder / 'images.npy'},{folder / 'labels.npy'}"


@pytest.mark.parametrize("recipe", sorted(recipe_names()))
def test_recipe_trains_a_few_steps(recipe: str, tmp_path: Path, sprites: str) -> None:
    args = ["train", "--recipe", recipe, "--out", str(tmp_path / recipe), "--steps", "2", "--batch-size", "4", *QUICK]
    if recipe.startswith("dlai-sprites"):
        args += ["--data", sprites]
    elif not recipe.startswith("s-curve"):
        args += ["--set", "data.n=16"]
    assert main(args) == 0
    loaded = checkpoint.load_model(tmp_path / recipe)
    assert loaded.meta["step"] == 2 and loaded.meta["recipe"] == recipe
    if recipe in SEED_PARAMS:
        assert sum(p.numel() for p in loaded.model.parameters()) == SEED_PARAMS[recipe]
    assert list((tmp_path / recipe / "samples").glob("step-00000002*.png"))
