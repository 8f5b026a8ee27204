"""A run as a diffusers folder: ``unet/`` and ``scheduler/`` (and ``model_index.json`` for unconditional runs).

``UNet2DModel.from_pretrained(DIR, subfolder="unet")`` and the scheduler class named in
``scheduler/scheduler_config.json`` load it; an unconditional run also loads as
``DDPMPipeline.from_pretrained(DIR)``. The network gives the same outputs as ours (same weights, same
architecture, see :mod:`.unet`), so a loop over the scheduler's steps from the same x_T gives the same
images as ``tinydiffusion sample`` with the run's sampler. ``tinydiffusion.json`` keeps what diffusers'
configs have no place for (class names, the null class id used for guidance, the guidance weight).

The folder is written under a temporary name next to ``DIR`` and renamed into place at the end, so an
interrupted export leaves no half-written ``DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..generate import sampler_steps
from ..run import Run
from .schedulers import require_diffusers, scheduler_for
from .unet import check_expressible, diffusers_state_dict, unet2d_config

META_FILE = "tinydiffusion.json"


def _readme(run: Run, steps: int, info: dict[str, Any]) -> str:
    """How to sample from the folder with diffusers (written as DIR/README.md)."""
    lines = [f"# {run.meta.get('recipe', 'tinydiffusion')} run, exported for diffusers", "",
             f"Exported by `tinydiffusion export` from `{run.path}` (step {run.meta.get('step')}).", "", "```python",
             "import torch, diffusers", "",
             'unet = diffusers.UNet2DModel.from_pretrained(DIR, subfolder="unet").eval()',
             f'scheduler = diffusers.{info["scheduler"]}.from_pretrained(DIR, subfolder="scheduler")',
             f"scheduler.set_timesteps({steps})",
             f"x = torch.randn(16, {', '.join(map(str, run.shape))})"]
    if run.num_classes:
        null = info["null_class"]
        w = info["guidance"] or 1.0
        lines += [f"labels = torch.full((16,), 7)  # class ids 0..{run.num_classes - 1}; {null} is the null class",
                  "for t in scheduler.timesteps:",
                  "    with torch.no_grad():",
                  f"        out = unet(torch.cat([x, x]), t, class_labels=torch.cat([labels, torch.full_like(labels, "
                  f"{null})])).sample",
                  "    cond, uncond = out.chunk(2)",
                  f"    x = scheduler.step(uncond + {w:g} * (cond - uncond), t, x).prev_sample  # guidance w={w:g}"]
    else:
        lines += ["for t in scheduler.timesteps:",
                  "    with torch.no_grad():",
                  "        x = scheduler.step(unet(x, t).sample, t, x).prev_sample",
                  "", f"# or: diffusers.DDPMPipeline.from_pretrained(DIR)(num_inference_steps={steps})"]
    lines += ["images = (x.clamp(-1, 1) + 1) / 2  # in [0, 1]", "```", ""]
    return "\n".join(lines)


def export_diffusers(run: Run, out_dir: str | Path) -> tuple[Path, str | None]:
    """Write ``run`` as a diffusers folder at ``out_dir`` (which must not exist yet, or be empty).

    Returns the folder and a note when the run's sampler has no diffusers scheduler.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir} already exists and is not empty; choose a new folder (or remove it)")
    if not out_dir.parent.is_dir():
        raise UserError(f"the folder {out_dir.parent} does not exist; create it first")
    cfg = check_expressible(run.meta["model"], run.meta["model_config"])
    diffusers = require_diffusers()
    unet = diffusers.UNet2DModel(**unet2d_config(cfg))
    unet.load_state_dict(diffusers_state_dict({k: v.cpu() for k, v in run.model.state_dict().items()}), strict=True)
    settings = run.defaults
    scheduler, note = scheduler_for(run.schedule, settings, run.prediction)
    info = {"format": "tinydiffusion-diffusers-export/1", "recipe": run.meta.get("recipe"), "step": run.meta.get("step"),
            "class_names": run.class_names if run.num_classes else None,
            "null_class": run.num_classes if run.num_classes else None,
            "guidance": settings.guidance if run.num_classes else None, "sampler": settings.sampler,
            "steps": sampler_steps(run.schedule, settings), "prediction": run.prediction,
            "scheduler": type(scheduler).__name__, "data": run.data}
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if run.num_classes:  # DDPMPipeline cannot pass class labels: the parts only
            unet.save_pretrained(tmp / "unet")
            scheduler.save_pretrained(tmp / "scheduler")
        else:
            diffusers.DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(tmp)
        (tmp / META_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_readme(run, info["steps"], info), encoding="utf-8")
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    except OSError as exc:
        raise UserError(f"could not write {out_dir}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir, note
