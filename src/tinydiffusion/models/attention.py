"""Spatial self-attention for the U-Net (DDPM §B at 16×16; Dhariwal & Nichol 2021, multi-head)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SelfAttention(nn.Module):
    """x + W_out · MHA(GroupNorm(x)) over the H·W positions, with heads of ``head_dim`` channels.

    q, k and v are Linear maps (with bias) of the normalised features; softmax(q kᵀ/√head_dim) v
    runs in :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels where available).
    """

    def __init__(self, channels: int, head_dim: int, groups: int, eps: float = 1e-5) -> None:
        super().__init__()
        if channels % head_dim:
            raise ValueError(f"attention over {channels} channels cannot have heads of {head_dim} channels")
        self.heads = channels // head_dim
        self.norm = nn.GroupNorm(groups, channels, eps=eps)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c)  # (B, HW, C), a view for channels_last

        def split_heads(y: Tensor) -> Tensor:  # (B, HW, C) -> (B, heads, HW, head_dim)
            return y.reshape(b, h * w, self.heads, c // self.heads).transpose(1, 2)

        q, k, v = split_heads(self.to_q(tokens)), split_heads(self.to_k(tokens)), split_heads(self.to_v(tokens))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
        return x + self.to_out(out).reshape(b, h, w, c).permute(0, 3, 1, 2)
