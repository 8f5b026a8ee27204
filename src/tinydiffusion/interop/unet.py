"""Our ``unet`` network (:mod:`tinydiffusion.models.unet`) as diffusers' ``UNet2DModel``.

The two are the same network when the configuration maps (the skip structure, ResNet blocks, attention
and time embedding are the DDPM/ADM design both follow; ``tests/test_models.py`` checks the outputs
agree). What diffusers' classes cannot express is refused with one line: other networks, context
vectors (``UNet2DModel`` embeds class ids only), and image sizes that some level halves to an odd size
(diffusers upsamples by exactly 2, ours to the size of the skip it meets).
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from ..errors import UserError
from ..models import model_config
from ..models.unet import UNetConfig

#: Our parameter names -> diffusers' (regular expressions applied in order).
_RENAMES = [(r"^down\.", "down_blocks."), (r"^up\.", "up_blocks."),
            (r"^mid\.attention\.", "mid_block.attentions.0."), (r"^mid\.", "mid_block."),
            (r"\.downsample\.", ".downsamplers.0."), (r"\.upsample\.", ".upsamplers.0."),
            (r"\.time_proj\.", ".time_emb_proj."), (r"\.shortcut\.", ".conv_shortcut."), (r"\.norm\.", ".group_norm."),
            (r"\.to_out\.", ".to_out.0."), (r"^time_embedding\.0\.", "time_embedding.linear_1."),
            (r"^time_embedding\.2\.", "time_embedding.linear_2."), (r"^norm_out\.", "conv_norm_out.")]


def diffusers_name(name: str) -> str:
    """The name of one of our U-Net's parameters in diffusers' ``UNet2DModel``."""
    for pattern, replacement in _RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


def diffusers_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Our U-Net's ``state_dict`` under diffusers' names (the same tensors)."""
    return {diffusers_name(k): v for k, v in state.items()}


def check_expressible(model_name: str, config: dict[str, Any]) -> UNetConfig:
    """The network's config when diffusers' ``UNet2DModel`` can express it; a one-line UserError otherwise."""
    if model_name != "unet":
        raise UserError(f"this run's network is {model_name!r}, which diffusers has no class for; "
                        "export --diffusers works for runs of the 'unet' network (e.g. the quickstart recipe)")
    cfg = model_config("unet", config)
    if cfg.context_dim:
        raise UserError("this run takes context vectors, which diffusers' UNet2DModel cannot (it embeds class ids "
                        "only); export --diffusers works for unconditional and class-conditional unet runs")
    odd = [s for s in cfg.level_sizes()[:-1] if s % 2]
    if odd:
        raise UserError(f"{cfg.image_size}x{cfg.image_size} images reach an odd size ({odd[0]}) before a "
                        "downsampler, which diffusers' UNet2DModel cannot upsample back; export works when every "
                        "level but the last has an even size")
    return cfg


def unet2d_config(cfg: UNetConfig) -> dict[str, Any]:
    """The ``UNet2DModel`` keyword arguments of the same network."""
    levels = range(len(cfg.block_out_channels))
    return dict(
        sample_size=cfg.image_size,
        in_channels=cfg.channels,
        out_channels=cfg.channels,
        block_out_channels=cfg.block_out_channels,
        layers_per_block=cfg.layers_per_block,
        down_block_types=tuple("AttnDownBlock2D" if cfg.has_attention(i) else "DownBlock2D" for i in levels),
        up_block_types=tuple("AttnUpBlock2D" if cfg.has_attention(i) else "UpBlock2D" for i in reversed(levels)),
        add_attention=cfg.mid_attention,
        attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=cfg.norm_groups,
        attn_norm_num_groups=cfg.norm_groups,  # diffusers' mid block drops its attention norm otherwise
        norm_eps=1e-5,
        resnet_time_scale_shift="scale_shift" if cfg.time_conditioning == "scale_shift" else "default",
        num_class_embeds=cfg.num_classes + 1 if cfg.num_classes else None,  # the last row: the null class
        dropout=cfg.dropout,
        flip_sin_to_cos=True,
        freq_shift=0,
    )
