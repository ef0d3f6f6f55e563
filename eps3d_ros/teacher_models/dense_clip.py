"""Dense text-aligned features from an open_clip ViT image tower (MaskCLIP's read-out).

CLIP's image tower pools one vector per image. MaskCLIP (Zhou et al., ECCV 2022) reads a vector per patch
out of the same weights: in the LAST transformer block the query-key attention is dropped and each token
takes its own value embedding through the output projection (``x + out_proj(v(ln_1(x)))``), the block's
MLP follows as usual, and every patch token then goes through the tower's final ``ln_post`` and ``proj``
into the joint image-text space, where it is compared with the text embeddings of class names.

Input frames keep their aspect: the longer side is resized to ``size`` pixels and the shorter one to the
nearest multiple of the patch size; the positional embedding is interpolated (bicubic) to that grid.
Output: unit vectors ``[h, w, D]`` on the patch grid (D = the CLIP embedding width, 512 for ViT-B).

Weights: an open_clip tag found in the Hugging Face cache, or a local checkpoint file of the architecture
(the text encoder's rules, :func:`eps3d_ros.text.clip.resolve_clip_weights`; nothing is downloaded when
``allow_download`` is false). The features live in the text space of those weights: train with the same
file as the text encoder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

log = logging.getLogger(__name__)

__all__ = ["DenseClipConfig", "DenseClip"]


@dataclass
class DenseClipConfig:
    model: str = "ViT-B-16"  # open_clip ViT architecture
    pretrained: str = ""  # tag or local checkpoint ("" = random: tests only)
    size: int = 448  # longer image side fed to the tower (the patch grid is size / patch)
    device: str = "cpu"  # auto, cpu, cuda, cuda:N (eps3d_ros.devices)
    quick_gelu: str = "auto"  # as TextEncoderConfig: follow the tag, or "true"/"false"
    allow_download: bool = False


class DenseClip:
    """``DenseClip(cfg)(rgb [H, W, 3] uint8) -> [h, w, D]`` unit features (see the module docstring)."""

    def __init__(self, config: DenseClipConfig | None = None) -> None:
        from eps3d_ros.devices import resolve_device
        from eps3d_ros.text import TextEncoderConfig
        from eps3d_ros.text.clip import (TINY_TEST_MODEL, import_open_clip, register_tiny_test_model,
                                         resolve_clip_weights)

        cfg = self.config = config or DenseClipConfig()
        if cfg.size < 16:
            raise ValueError(f"dense CLIP size must be >= 16 pixels, got {cfg.size}")
        open_clip = import_open_clip()
        arch = cfg.model.replace("/", "-")
        if arch == TINY_TEST_MODEL:
            register_tiny_test_model(arch)
        if arch not in open_clip.list_models():
            raise ValueError(f"unknown open_clip architecture {cfg.model!r}")
        tcfg = TextEncoderConfig(model=arch, pretrained=cfg.pretrained, allow_download=cfg.allow_download,
                                 quick_gelu=cfg.quick_gelu)
        checkpoint, tag_cfg = resolve_clip_weights(open_clip, arch, tcfg)
        quick = bool(tag_cfg.get("quick_gelu", False)) if cfg.quick_gelu == "auto" else cfg.quick_gelu == "true"
        if not checkpoint:
            log.warning("dense CLIP %s has RANDOM weights: for tests only", arch)
        model = open_clip.create_model(arch, pretrained=checkpoint or None, device="cpu", force_quick_gelu=quick)
        pre = open_clip.get_model_preprocess_cfg(model)
        visual = model.visual
        blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
        if blocks is None or not isinstance(getattr(blocks[-1], "attn", None), torch.nn.MultiheadAttention) \
                or getattr(visual, "attn_pool", None) is not None or visual.proj is None:
            raise ValueError(f"{arch}: the dense read-out needs an open_clip ViT image tower with standard "
                             "attention blocks and a projection (e.g. ViT-B-16, ViT-B-32, ViT-L-14)")
        self.device = resolve_device(cfg.device, "dense CLIP device")
        self.visual = visual.to(self.device).eval()
        del model
        self.arch, self.checkpoint, self.quick_gelu = arch, checkpoint, quick
        self.patch = int(visual.patch_size[0])
        self.mean = torch.tensor(pre["mean"], dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(pre["std"], dtype=torch.float32).view(3, 1, 1)
        self.dim = int(visual.proj.shape[1])

    # ------------------------------------------------------------------------------------- input
    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid ``(h, w)`` of an image of ``height x width``."""
        s, p = self.config.size, self.patch
        scale = s / max(height, width)
        return max(1, round(height * scale / p)), max(1, round(width * scale / p))

    def preprocess(self, rgb: np.ndarray, grid: tuple[int, int] | None = None) -> Tensor:
        """``[H, W, 3] uint8`` → normalised ``[1, 3, h*p, w*p]`` (aspect kept up to one patch; ``grid`` forces
        the patch grid, e.g. the first frame's for a whole sequence)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
        gh, gw = grid or self.grid(*rgb.shape[:2])
        x = torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255.0
        x = F.interpolate(x, size=(gh * self.patch, gw * self.patch), mode="bicubic", align_corners=False,
                          antialias=True).clamp(0, 1)
        return ((x[0] - self.mean) / self.std)[None]

    def _embed(self, x: Tensor) -> Tensor:
        """Patch + class tokens with the positional embedding interpolated to the grid → ``[B, 1 + h*w, C]``."""
        v = self.visual
        tokens = v.conv1(x)  # [B, C, h, w]
        B, C, gh, gw = tokens.shape
        tokens = tokens.flatten(2).transpose(1, 2)
        pos = v.positional_embedding.to(tokens.dtype)
        n0 = int(round((pos.shape[0] - 1) ** 0.5))
        grid_pos = pos[1:]
        if (gh, gw) != (n0, n0):
            grid_pos = grid_pos.reshape(1, n0, n0, C).permute(0, 3, 1, 2)
            grid_pos = F.interpolate(grid_pos, size=(gh, gw), mode="bicubic", align_corners=False)
            grid_pos = grid_pos.permute(0, 2, 3, 1).reshape(gh * gw, C)
        cls = v.class_embedding.to(tokens.dtype).expand(B, 1, C)
        out = torch.cat([cls + pos[:1], tokens + grid_pos], dim=1)
        return v.ln_pre(out)

    # ----------------------------------------------------------------------------------- read-out
    def tokens(self, x: Tensor) -> Tensor:
        """Normalised input ``[B, 3, H, W]`` → projected, un-normalised patch features ``[B, h*w, D]``."""
        v = self.visual
        tr = v.transformer
        h = self._embed(x)
        if not tr.batch_first:
            h = h.transpose(0, 1)
        for blk in tr.resblocks[:-1]:
            h = blk(h)
        last = tr.resblocks[-1]
        attn = last.attn
        width = attn.embed_dim
        value = F.linear(last.ln_1(h), attn.in_proj_weight[2 * width:], attn.in_proj_bias[2 * width:])
        h = h + last.ls_1(attn.out_proj(value))  # each token attends only to itself
        h = h + last.ls_2(last.mlp(last.ln_2(h)))
        if not tr.batch_first:
            h = h.transpose(0, 1)
        patches = v.ln_post(h[:, 1:])
        return patches @ v.proj

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, grid: tuple[int, int] | None = None) -> Tensor:
        """``[H, W, 3] uint8`` → unit features ``[h, w, D]`` (CPU, float32)."""
        x = self.preprocess(rgb, grid).to(self.device)
        gh, gw = x.shape[-2] // self.patch, x.shape[-1] // self.patch
        feats = F.normalize(self.tokens(x)[0].float(), dim=-1)
        return feats.reshape(gh, gw, -1).cpu()
