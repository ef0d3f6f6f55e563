"""Camera metrics: relative rotation and translation-direction errors, both relative to the first view.

A feed-forward model predicts cameras in its own frame (the first view's camera, unknown scale), so
only relative poses are comparable. For each view ``i >= 1`` the relative transform
``E_i ∘ E_0⁻¹`` (camera-from-world extrinsics, OpenCV axes; ``eps3d_ros.conventions``) is formed for
the prediction and the ground truth, and:

* **rotation error** — the angle of ``R_pred R_trueᵀ`` in degrees (geodesic distance on SO(3));
* **translation direction error** — the angle between the two relative translations in degrees
  (scale-free; the sign counts, so it lies in [0°, 180°]). A relative translation shorter than
  ``min_baseline`` (times the longest true one) has no direction and gives NaN.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from eps3d_ros.conventions import invert_rigid, to_homogeneous

__all__ = ["relative_pose_errors", "rotation_angle_deg"]


def rotation_angle_deg(R: Tensor) -> Tensor:
    """Angles in degrees ``[...]`` of rotation matrices ``[..., 3, 3]`` (trace formula, clamped)."""
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must be [..., 3, 3], got {tuple(R.shape)}")
    cos = ((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))


def _relative_to_first(extrinsics: Tensor) -> Tensor:
    """``[S, 3, 4]`` → ``E_i ∘ E_0⁻¹`` ``[S, 3, 4]`` (view 0 becomes the identity)."""
    return (to_homogeneous(extrinsics) @ to_homogeneous(invert_rigid(extrinsics[0]))[None])[:, :3]


def relative_pose_errors(pred_extrinsics: Tensor | np.ndarray, true_extrinsics: Tensor | np.ndarray,
                         min_baseline: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Per view ``i = 1 .. S-1``: ``(rotation error [S-1], translation direction error [S-1])`` in degrees.

    ``pred_extrinsics``, ``true_extrinsics`` ``[S, 3, 4]`` (or ``[S, 4, 4]``) camera-from-world, any scale.
    """
    P = torch.as_tensor(pred_extrinsics, dtype=torch.float64)[..., :3, :]
    T = torch.as_tensor(true_extrinsics, dtype=torch.float64)[..., :3, :]
    if P.dim() != 3 or P.shape != T.shape or P.shape[-2:] != (3, 4):
        raise ValueError(f"extrinsics must be two [S, 3, 4] stacks of one shape, got {tuple(P.shape)} and "
                         f"{tuple(T.shape)}")
    if P.shape[0] < 2:
        raise ValueError("relative pose errors need at least two views")
    rp, rt = _relative_to_first(P)[1:], _relative_to_first(T)[1:]
    rot = rotation_angle_deg(rp[..., :3] @ rt[..., :3].transpose(-1, -2))
    tp, tt = rp[..., 3], rt[..., 3]
    n_p, n_t = tp.norm(dim=-1), tt.norm(dim=-1)
    cos = (tp * tt).sum(-1) / (n_p * n_t).clamp(min=1e-30)
    trans = torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))
    degenerate = (n_t <= min_baseline * n_t.max().clamp(min=1e-30)) | (n_p <= 1e-12)
    trans = torch.where(degenerate, torch.full_like(trans, float("nan")), trans)
    return rot.numpy(), trans.numpy()
