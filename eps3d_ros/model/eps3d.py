"""EPS3D: unposed RGB views → cameras, depth and panoptic 3D Gaussians, in one forward pass.

Module tree and parameter names equal the reference's (``encoder.*`` / ``decoder.*``), so the
released ``model.safetensors`` loads strictly. The model only composes; each stage lives in its own
file (aggregator, camera head, DPT heads, Sem2Ins, Gaussian adapter, voxel fusion).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .aggregator import Aggregator
from .camera_head import CameraHead
from .config import EPS3DConfig
from .dpt_head import DPTHead, activate_depth
from .gaussian_adapter import GaussianAdapter
from .outputs import EPS3DOutput, depth_to_world_points
from .pose_encoding import pose_encoding_to_extrinsics_intrinsics
from .sem2ins import Sem2InsFusion
from .transformer import Block
from .voxel_fusion import voxel_fuse

if TYPE_CHECKING:
    from .checkpoint import LoadReport


class EPS3DEncoder(nn.Module):
    def __init__(self, cfg: EPS3DConfig) -> None:
        super().__init__()
        g, p = cfg.gaussians, cfg.aggregator.patch_size
        dim = 2 * cfg.aggregator.embed_dim
        self.aggregator = Aggregator(cfg.aggregator)
        self.camera_head = CameraHead(dim, cfg.camera_head)
        self.depth_head = DPTHead(dim, cfg.dpt, out_dim=2, patch_size=p)
        self.gaussian_param_head = DPTHead(dim, cfg.dpt, g.appearance_channels, p, image_merger=True)
        self.gaussian_feature_param_head = DPTHead(dim, cfg.dpt, g.semantic_dim, p, image_merger=True)
        self.gaussian_instance_param_head = DPTHead(dim, cfg.dpt, g.instance_dim, p, image_merger=True)
        if g.use_sem2ins:
            self.sem2ins_fusion = Sem2InsFusion(g.instance_dim, g.semantic_dim, g.sem2ins_hidden, g.sem2ins_w_init)
        self.gaussian_adapter = GaussianAdapter(g)


class EPS3DDecoder(nn.Module):
    """Holds the semantic feature expansion (x0.5 bilinear, then a 1x1 conv into CLIP space)."""

    def __init__(self, cfg: EPS3DConfig) -> None:
        super().__init__()
        g = cfg.gaussians
        self.feature_expansion = nn.Sequential(
            nn.Upsample(scale_factor=0.5, mode="bilinear", align_corners=False),
            nn.Conv2d(g.semantic_dim, g.semantic_expanded_dim, 1),
        )


class EPS3D(nn.Module):
    """The network. ``EPS3D(EPS3DConfig.from_preset("tiny"))`` or ``EPS3D.from_pretrained(path)``."""

    def __init__(self, config: EPS3DConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.encoder = EPS3DEncoder(config)
        self.decoder = EPS3DDecoder(config)
        self.load_report: LoadReport | None = None

    # ---------------------------------------------------------------------------------- forward
    def forward(self, images: Tensor, global_step: int = 0) -> EPS3DOutput:
        """images ``[B, S, 3, H, W]`` (or ``[S, 3, H, W]``), float in [0, 1], H and W multiples of 14."""
        images = self.check_images(images)
        cfg, enc = self.config, self.encoder
        B, S, _, H, W = images.shape
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if images.is_cuda and cfg.aggregator_autocast_bf16
            else contextlib.nullcontext()
        )
        with autocast:
            layers, _ = enc.aggregator(images, cfg.dpt.layers)
        layers = {k: v.float() for k, v in layers.items()}
        psi = enc.aggregator.patch_start_idx
        last = layers[max(layers)]

        pose_enc_list = enc.camera_head(last[:, :, 0])
        pose_enc = pose_enc_list[-1]
        extrinsics, intrinsics = pose_encoding_to_extrinsics_intrinsics(pose_enc, H, W)

        head_in = [layers[i] for i in cfg.dpt.layers]
        depth, depth_conf = activate_depth(enc.depth_head(head_in, images, psi))
        world_points = depth_to_world_points(depth, extrinsics, intrinsics)

        appearance = enc.gaussian_param_head(head_in, images, psi)  # [B, S, A, H, W]
        semantic = enc.gaussian_feature_param_head(head_in, images, psi)  # [B, S, Cs, H, W]
        instance = enc.gaussian_instance_param_head(head_in, images, psi)  # [B, S, Ci, H, W]
        if cfg.gaussians.use_sem2ins:
            instance = enc.sem2ins_fusion(instance, semantic)

        # [B, S, 147, H, W] → [B, S*H*W, 147] in (view, row, col) order; the confidence channel stays out.
        raw = torch.cat([appearance[:, :, :-1], semantic, instance], dim=2)
        raw = raw.permute(0, 1, 3, 4, 2).reshape(B, S * H * W, -1)
        means = world_points.reshape(B, S * H * W, 3)
        if cfg.gaussians.voxelize:
            conf = appearance[:, :, -1].reshape(B, -1)
            means, raw = self._voxelize(means, raw, conf)
        gaussians = enc.gaussian_adapter(means, raw, global_step)
        return EPS3DOutput(
            depth=depth, depth_conf=depth_conf, pose_enc=pose_enc, pose_enc_list=pose_enc_list,
            extrinsics=extrinsics, intrinsics=intrinsics, world_points=world_points, gaussians=gaussians,
            appearance_raw=appearance, semantic_maps=semantic, instance_maps=instance,
        )

    def _voxelize(self, means: Tensor, raw: Tensor, conf: Tensor) -> tuple[Tensor, Tensor]:
        fused = [voxel_fuse(means[b], raw[b], conf[b], self.config.gaussians.voxel_size) for b in range(means.shape[0])]
        n = max(p.shape[0] for p, _ in fused)
        # Batches differ in voxel count: pad with fully transparent Gaussians (opacity logit -inf → 0).
        pts = means.new_zeros(len(fused), n, 3)
        feats = raw.new_zeros(len(fused), n, raw.shape[-1])
        feats[..., 0] = float("-inf")
        for b, (p, f) in enumerate(fused):
            pts[b, : p.shape[0]] = p
            feats[b, : f.shape[0]] = f
        return pts, feats

    def check_images(self, images: Tensor) -> Tensor:
        """Validate and return images as ``[B, S, 3, H, W]``; raise ``ValueError`` naming the problem."""
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dim() == 4:
            images = images[None]
        p = self.config.aggregator.patch_size
        if images.dim() != 5 or images.shape[2] != 3:
            raise ValueError(f"images must be [B, S, 3, H, W] (or [S, 3, H, W]) RGB, got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point in [0, 1], got dtype {images.dtype} (divide uint8 by 255)")
        H, W = images.shape[-2:]
        if H % p or W % p or H == 0 or W == 0:
            raise ValueError(
                f"image height and width must be positive multiples of the patch size {p}, got {H}x{W} "
                f"(resize or crop, e.g. to {max(p, H // p * p)}x{max(p, W // p * p)})"
            )
        if not torch.isfinite(images).all():
            raise ValueError("images contain NaN or infinite values")
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"images must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
        param = next(self.parameters())
        return images.to(device=param.device, dtype=torch.float32)

    # ------------------------------------------------------------------------ semantic features
    def expand_semantics(self, maps: Tensor) -> Tensor:
        """Rendered semantic maps ``[..., Cs, h, w]`` → CLIP-space maps ``[..., 512, h//2, w//2]`` (the decoder's step)."""
        lead = maps.shape[:-3]
        out = self.decoder.feature_expansion(maps.reshape(-1, *maps.shape[-3:]))
        return out.reshape(*lead, *out.shape[-3:])

    def expand_semantic_features(self, features: Tensor) -> Tensor:
        """Per-Gaussian features ``[..., Cs]`` → ``[..., 512]`` with the expansion's 1x1 conv.

        The conv is linear, so it commutes with alpha blending: expanding each Gaussian and then
        rendering equals rendering and then expanding (without the x0.5 resampling).
        """
        conv = self.decoder.feature_expansion[1]
        return F.linear(features, conv.weight[:, :, 0, 0], conv.bias)

    # ---------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        strict: bool = True,
        config: EPS3DConfig | str | Path | None = None,
    ) -> "EPS3D":
        """Load our format, the EPS3D release layout or a VGGT checkpoint; see :mod:`.checkpoint`."""
        from .checkpoint import load_pretrained

        return load_pretrained(cls, path, device=device, strict=strict, config=config)

    def save_pretrained(self, directory: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` (config embedded in its metadata) and ``config.json``."""
        from .checkpoint import save_pretrained

        return save_pretrained(self, directory, metadata)

    def set_gradient_checkpointing(self, enabled: bool = True) -> "EPS3D":
        """Recompute transformer blocks in the backward pass (training memory); no effect in eval."""
        for module in self.modules():
            if isinstance(module, Block):
                module.gradient_checkpointing = enabled
        return self

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
