"""Patch embeddings of the aggregator: a plain 14x14 convolution, or a DINOv2 ViT with registers.

Both map ImageNet-normalised frames ``[F, 3, H, W]`` to patch tokens ``[F, P, C]`` (row-major over
the ``H/14 x W/14`` grid).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import DinoV2Config
from .transformer import Block, run_block


class ConvPatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [F, P, C]


class DinoV2PatchEmbed(nn.Module):
    """DINOv2 ViT with register tokens; returns the final-norm patch tokens."""

    def __init__(self, cfg: DinoV2Config, patch_size: int = 14) -> None:
        super().__init__()
        C = cfg.embed_dim
        self.patch_size = patch_size
        self.cfg = cfg
        grid = cfg.img_size // patch_size
        self.patch_embed = ConvPatchEmbed(patch_size, C)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, C))
        self.register_tokens = nn.Parameter(torch.zeros(1, cfg.num_register_tokens, C))
        self.mask_token = nn.Parameter(torch.zeros(1, C))  # kept for checkpoint compatibility; unused here
        self.blocks = nn.ModuleList(
            Block(C, cfg.num_heads, cfg.mlp_ratio, init_values=cfg.init_values, norm_eps=1e-6) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(C, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.normal_(self.register_tokens, std=1e-6)

    def _position_embedding(self, ph: int, pw: int, dtype: torch.dtype) -> Tensor:
        n = self.pos_embed.shape[1] - 1
        grid = int(math.sqrt(n))
        if ph == grid and pw == grid:  # exactly the training resolution: no resize
            return self.pos_embed.to(dtype)
        pos = self.pos_embed.float()
        patch = pos[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
        if self.cfg.interpolate_offset:
            scale = ((ph + self.cfg.interpolate_offset) / grid, (pw + self.cfg.interpolate_offset) / grid)
            patch = F.interpolate(patch, scale_factor=scale, mode="bicubic", antialias=self.cfg.interpolate_antialias)
        else:
            patch = F.interpolate(patch, size=(ph, pw), mode="bicubic", antialias=self.cfg.interpolate_antialias)
        patch = patch.permute(0, 2, 3, 1).reshape(1, ph * pw, -1)
        return torch.cat([pos[:, :1], patch], dim=1).to(dtype)

    def forward(self, x: Tensor) -> Tensor:
        ph, pw = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        t = self.patch_embed(x)  # [F, P, C]
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1).to(t.dtype), t], dim=1)
        t = t + self._position_embedding(ph, pw, t.dtype)
        regs = self.register_tokens.expand(t.shape[0], -1, -1).to(t.dtype)
        t = torch.cat([t[:, :1], regs, t[:, 1:]], dim=1)
        for blk in self.blocks:
            t = run_block(blk, t)
        t = self.norm(t)
        return t[:, 1 + self.register_tokens.shape[1]:]

