"""Typed outputs of the network. Shape legend: B batch, S views, N Gaussians, H/W image size."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from ..conventions import extrinsics_to_poses, intrinsics_pixels_to_normalized, invert_rigid


@dataclass
class Gaussians:
    """Panoptic 3D Gaussians, world frame of the first view (up to scale)."""

    means: Tensor  # [B, N, 3]
    opacities: Tensor  # [B, N] in (0, 1)
    scales: Tensor  # [B, N, 3] per-axis standard deviations
    rotations: Tensor  # [B, N, 4] unit quaternions, xyzw
    covariances: Tensor  # [B, N, 3, 3] world frame
    harmonics: Tensor  # [B, N, 3, (d+1)^2] SH coefficients [colour, coefficient], degree-masked
    semantics: Tensor  # [B, N, Cs] raw semantic features (expand with EPS3D.expand_semantic_features)
    instances: Tensor  # [B, N, Ci] instance features (after Sem2Ins)

    @property
    def num(self) -> int:
        return self.means.shape[1]

    def to(self, *args, **kwargs) -> "Gaussians":
        return replace(self, **{f.name: getattr(self, f.name).to(*args, **kwargs) for f in fields(self)})

    def detach(self) -> "Gaussians":
        return replace(self, **{f.name: getattr(self, f.name).detach() for f in fields(self)})


@dataclass
class EPS3DOutput:
    """What :class:`eps3d_ros.model.EPS3D` predicts for ``images [B, S, 3, H, W]``."""

    depth: Tensor  # [B, S, H, W, 1] camera-space depth (up to scale)
    depth_conf: Tensor  # [B, S, H, W] >= 1
    pose_enc: Tensor  # [B, S, 9] last camera-head iteration: [t, q_xyzw, fov_h, fov_w]
    pose_enc_list: list[Tensor]  # every refinement iteration, [B, S, 9] each
    extrinsics: Tensor  # [B, S, 3, 4] camera-from-world, OpenCV axes
    intrinsics: Tensor  # [B, S, 3, 3] pixels
    world_points: Tensor  # [B, S, H, W, 3] depth unprojected to the world frame
    gaussians: Gaussians  # N = S*H*W in (view, row, col) order, or the voxels when voxelize is on
    appearance_raw: Tensor  # [B, S, A, H, W] raw appearance-head output (A = 84 for SH degree 4)
    semantic_maps: Tensor  # [B, S, Cs, H, W] per-pixel semantic features
    instance_maps: Tensor  # [B, S, Ci, H, W] per-pixel instance features (after Sem2Ins)

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.depth.shape[2]), int(self.depth.shape[3])

    @property
    def poses(self) -> Tensor:
        """Camera-to-world ``[B, S, 4, 4]``."""
        return extrinsics_to_poses(self.extrinsics)

    @property
    def intrinsics_normalized(self) -> Tensor:
        """``[B, S, 3, 3]`` with row 0 divided by W and row 1 by H."""
        H, W = self.image_size
        return intrinsics_pixels_to_normalized(self.intrinsics, H, W)

    @property
    def scene_scale(self) -> Tensor:
        """Mean Euclidean norm of all world points ``[]``."""
        return self.world_points.norm(dim=-1).mean()

    def to(self, *args, **kwargs) -> "EPS3DOutput":
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                out[f.name] = [t.to(*args, **kwargs) for t in v]
            else:
                out[f.name] = v.to(*args, **kwargs)
        return EPS3DOutput(**out)


def depth_to_world_points(depth: Tensor, extrinsics: Tensor, intrinsics: Tensor) -> Tensor:
    """Unproject depth ``[B, S, H, W, 1]`` with camera-from-world ``[B, S, 3, 4]`` and pixel K → ``[B, S, H, W, 3]``.

    Pixel indices ``u = 0..W-1``, ``v = 0..H-1`` are used without a +0.5 centre offset (the reference's
    convention), then ``x_world = R^T x_cam - R^T t`` (closed-form rigid inverse).
    """
    H, W = depth.shape[2], depth.shape[3]
    d = depth[..., 0]
    v, u = torch.meshgrid(
        torch.arange(H, dtype=depth.dtype, device=depth.device),
        torch.arange(W, dtype=depth.dtype, device=depth.device),
        indexing="ij",
    )
    fx, fy = intrinsics[..., 0, 0, None, None], intrinsics[..., 1, 1, None, None]
    cx, cy = intrinsics[..., 0, 2, None, None], intrinsics[..., 1, 2, None, None]
    cam = torch.stack([(u - cx) * d / fx, (v - cy) * d / fy, d], dim=-1)  # [B, S, H, W, 3]
    c2w = invert_rigid(extrinsics[..., :3, :])  # [B, S, 3, 4] camera-to-world
    return torch.einsum("bsij,bshwj->bshwi", c2w[..., :3], cam) + c2w[:, :, None, None, :, 3]
