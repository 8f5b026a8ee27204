"""``tinydiffusion recipes``: the shipped recipes, one line each (or JSON with parameter counts)."""

from __future__ import annotations

import argparse
import json
import warnings
from typing import TYPE_CHECKING

from ..config import TrainConfig, build_config, recipe_names

if TYPE_CHECKING:
    from ..data import Dataset

HELP = "list the recipes (tinydiffusion train --recipe NAME)"

#: (channels, native size, classes, context length) of the datasets that are not bundled, so that a
#: recipe's network can be built and counted without downloading them.
_SHAPES = {"fashion-mnist": (1, 28, 10, 0), "mnist": (1, 28, 10, 0), "sprites": (3, 16, 0, 5)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON list: name, description, model, params, data")


def stand_in_dataset(cfg: TrainConfig) -> Dataset:
    """The recipe's dataset, or for external data a one-row-per-class stand-in with the same facts."""
    import numpy as np

    from ..data import Dataset, load_dataset

    kind = cfg.data.spec.split(":", 1)[0]
    if kind not in _SHAPES:
        return load_dataset(cfg.data.spec, image_size=cfg.data.image_size, n=cfg.data.n)
    channels, size, classes, context = _SHAPES[kind]
    size = cfg.data.image_size or size
    rows = max(classes, context, 1)
    images = np.zeros((rows, size, size, channels), np.uint8)
    if context:
        return Dataset(cfg.data.spec, images=images, contexts=np.eye(context, dtype=np.float32))
    return Dataset(cfg.data.spec, images=images, labels=np.arange(classes, dtype=np.int64),
                   class_names=[str(i) for i in range(classes)])


def recipe_info(name: str) -> dict:
    """A recipe's name, description, network, data and the parameter count of the network it builds."""
    from ..models import build_model, count_parameters
    from ..train.setup import build_schedule, model_params, resolve_condition

    cfg = build_config(name)
    dataset = stand_in_dataset(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the seed schedules warn about alpha_bar_T, as they should when training
        schedule = build_schedule(cfg)
    condition = resolve_condition(cfg.data.condition, cfg.model.name, dataset)
    params = model_params(cfg, dataset, schedule, condition)
    count = count_parameters(build_model(cfg.model.name, params))
    return {"name": name, "description": cfg.description, "model": cfg.model.name, "params": count,
            "data": cfg.data.spec, "condition": condition}


def run(args: argparse.Namespace) -> int:
    from ..data import DATASETS

    infos = [recipe_info(name) for name in recipe_names()]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    width = max(len(i["name"]) for i in infos)
    for i in infos:
        print(f"{i['name']:<{width}}  {i['params']:>10,} params  {i['description']}")
    print(f"\ndatasets: {', '.join(DATASETS)}")
    return 0
