"""The camera head's 9-d pose encoding and its decoding into extrinsics and pixel intrinsics.

Layout ``[tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w]``: translation and an xyzw (scalar-last), not
necessarily unit quaternion of the **camera-from-world** transform, then vertical/horizontal field
of view in radians.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..conventions import quat_xyzw_to_matrix

# The reference adds this to tan(fov/2) before dividing (kept for fidelity).
FOCAL_EPS = 1e-3


def pose_encoding_to_extrinsics_intrinsics(pose_enc: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """``[..., 9]`` → camera-from-world ``[..., 3, 4]`` (OpenCV) and pixel intrinsics ``[..., 3, 3]``.

    ``fy = (H/2) / (tan(fov_h/2) + 1e-3)``, ``fx = (W/2) / (tan(fov_w/2) + 1e-3)``, principal point
    exactly ``(W/2, H/2)``.
    """
    if pose_enc.shape[-1] != 9:
        raise ValueError(f"pose encoding must be [..., 9], got {tuple(pose_enc.shape)}")
    t, q, fov_h, fov_w = pose_enc[..., :3], pose_enc[..., 3:7], pose_enc[..., 7], pose_enc[..., 8]
    R = quat_xyzw_to_matrix(q)
    extrinsics = torch.cat([R, t[..., None]], dim=-1)
    fy = (height / 2.0) / (torch.tan(fov_h / 2.0) + FOCAL_EPS)
    fx = (width / 2.0) / (torch.tan(fov_w / 2.0) + FOCAL_EPS)
    K = torch.zeros(pose_enc.shape[:-1] + (3, 3), dtype=pose_enc.dtype, device=pose_enc.device)
    K[..., 0, 0] = fx
    K[..., 1, 1] = fy
    K[..., 0, 2] = width / 2.0
    K[..., 1, 2] = height / 2.0
    K[..., 2, 2] = 1.0
    return extrinsics, K


def extrinsics_intrinsics_to_pose_encoding(extrinsics: Tensor, K: Tensor, height: int, width: int) -> Tensor:
    """Inverse of :func:`pose_encoding_to_extrinsics_intrinsics` (unit quaternion with w >= 0)."""
    from ..conventions import matrix_to_quat_xyzw

    q = matrix_to_quat_xyzw(extrinsics[..., :3, :3])
    fov_h = 2.0 * torch.atan(height / 2.0 / K[..., 1, 1] - FOCAL_EPS)
    fov_w = 2.0 * torch.atan(width / 2.0 / K[..., 0, 0] - FOCAL_EPS)
    return torch.cat([extrinsics[..., :3, 3], q, fov_h[..., None], fov_w[..., None]], dim=-1)
