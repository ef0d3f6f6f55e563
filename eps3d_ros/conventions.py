"""Geometry conventions, written down once, and the only functions that convert between them.

Every other module states which convention it uses and calls these functions to convert.

Cameras
    * Axes are OpenCV: x right, y down, z forward.
    * ``extrinsics`` (a.k.a. ``viewmat``) are **camera-from-world** (world-to-camera):
      ``x_cam = R @ x_world + t`` with ``E = [R | t]`` as ``[..., 3, 4]`` or ``[..., 4, 4]``.
      This is what the network predicts and what gsplat expects.
    * ``poses`` are **camera-to-world** (the camera's pose in the world): ``[..., 4, 4]``.
    * ``K`` in **pixels**: ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``. Normalised intrinsics divide
      row 0 by the image width W and row 1 by the height H.
    * OpenGL / NeRF camera axes (instant-ngp, nerfstudio ``transforms.json``) are x right, y up, z
      backward (the camera looks down -z): :func:`opengl_to_opencv_poses` flips the y and z axes of
      such camera-to-world poses.
    * Pixel ``(u, v)`` = (column, row). The network unprojects pixel indices without a +0.5 centre
      offset (as the reference does); the renderers sample at pixel centres ``(u + 0.5, v + 0.5)``
      (as gsplat does). Rendering the network's Gaussians with the network's ``K`` is therefore half a
      pixel off: :func:`intrinsics_for_pixel_centres` gives the ``K`` to render with.

Quaternions
    * ``xyzw`` (scalar last) is what the network and the EPS3D reference use, and what ROS
      ``geometry_msgs/Quaternion`` uses.
    * ``wxyz`` (scalar first) is what gsplat uses.

Colours
    * A Gaussian's colour is its degree-0 spherical harmonic: ``rgb = 0.5 + SH_C0 * dc`` (3DGS, gsplat, the
      PLY layout), with :data:`SH_C0` the degree-0 real spherical harmonic.

Shape legend: B batch, S views, N Gaussians, C cameras, H/W image size.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "SH_C0",
    "xyzw_to_wxyz",
    "wxyz_to_xyzw",
    "quat_xyzw_to_matrix",
    "matrix_to_quat_xyzw",
    "covariance_from_scale_rotation",
    "to_homogeneous",
    "invert_rigid",
    "extrinsics_to_poses",
    "poses_to_extrinsics",
    "opengl_to_opencv_poses",
    "intrinsics_pixels_to_normalized",
    "intrinsics_normalized_to_pixels",
    "intrinsics_for_pixel_centres",
    "intrinsics_for_pixel_indices",
]

SH_C0 = 0.28209479177387814  # degree-0 real spherical harmonic, 1 / (2 sqrt(pi)): rgb = 0.5 + SH_C0 * dc


def xyzw_to_wxyz(q: Tensor) -> Tensor:
    """Reorder quaternions ``[..., 4]`` from scalar-last to scalar-first."""
    _check_last(q, 4, "quaternion")
    return torch.cat([q[..., 3:4], q[..., 0:3]], dim=-1)


def wxyz_to_xyzw(q: Tensor) -> Tensor:
    """Reorder quaternions ``[..., 4]`` from scalar-first to scalar-last."""
    _check_last(q, 4, "quaternion")
    return torch.cat([q[..., 1:4], q[..., 0:1]], dim=-1)


def quat_xyzw_to_matrix(q: Tensor, eps: float = 0.0) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` from (not necessarily unit) xyzw quaternions ``[..., 4]``.

    Uses ``2 / (|q|^2 + eps)`` so a non-unit quaternion still yields a rotation. The camera
    head's conversion uses ``eps = 0``; the Gaussian adapter uses ``eps = 1e-8``.
    """
    _check_last(q, 4, "quaternion")
    x, y, z, w = q.unbind(-1)
    two_s = 2.0 / ((q * q).sum(-1) + eps)
    m = torch.stack(
        [
            1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
            two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
            two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
        ],
        dim=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat_xyzw(m: Tensor) -> Tensor:
    """Unit xyzw quaternions ``[..., 4]`` (with w >= 0) from rotation matrices ``[..., 3, 3]``."""
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must be [..., 3, 3], got {tuple(m.shape)}")
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # Four candidate solutions; pick the best-conditioned one per matrix (largest denominator).
    q_abs = torch.sqrt(
        torch.clamp(
            torch.stack(
                [
                    1.0 + m00 + m11 + m22,
                    1.0 + m00 - m11 - m22,
                    1.0 - m00 + m11 - m22,
                    1.0 - m00 - m11 + m22,
                ],
                dim=-1,
            ),
            min=0.0,
        )
    )
    candidates = torch.stack(
        [
            torch.stack([m21 - m12, m02 - m20, m10 - m01, q_abs[..., 0] ** 2], dim=-1),
            torch.stack([q_abs[..., 1] ** 2, m10 + m01, m02 + m20, m21 - m12], dim=-1),
            torch.stack([m10 + m01, q_abs[..., 2] ** 2, m12 + m21, m02 - m20], dim=-1),
            torch.stack([m20 + m02, m21 + m12, q_abs[..., 3] ** 2, m10 - m01], dim=-1),
        ],
        dim=-2,
    ) / (2.0 * q_abs.clamp(min=0.1)[..., None])
    best = q_abs.argmax(dim=-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., 3:4] < 0, -q, q)


def covariance_from_scale_rotation(scales: Tensor, rotations_xyzw: Tensor) -> Tensor:
    """Covariances ``R S S^T R^T`` ``[..., 3, 3]`` from std-dev scales ``[..., 3]`` and xyzw quaternions ``[..., 4]``.

    The quaternion need not be unit (``2 / (|q|^2 + 1e-8)`` as the EPS3D adapter does).
    """
    rs = quat_xyzw_to_matrix(rotations_xyzw, eps=1e-8) * scales[..., None, :]  # R S: scale R's columns
    return rs @ rs.transpose(-1, -2)


def to_homogeneous(m: Tensor) -> Tensor:
    """``[..., 3, 4]`` → ``[..., 4, 4]`` by appending the row ``[0, 0, 0, 1]``; 4x4 passes through."""
    if m.shape[-2:] == (4, 4):
        return m
    if m.shape[-2:] != (3, 4):
        raise ValueError(f"expected [..., 3, 4] or [..., 4, 4] matrices, got {tuple(m.shape)}")
    bottom = torch.zeros(m.shape[:-2] + (1, 4), dtype=m.dtype, device=m.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([m, bottom], dim=-2)


def invert_rigid(m: Tensor) -> Tensor:
    """Closed-form inverse ``[R^T | -R^T t]`` of rigid transforms ``[..., 3, 4]`` or ``[..., 4, 4]``.

    Returns the same shape as the input.
    """
    if m.shape[-2:] not in ((3, 4), (4, 4)):
        raise ValueError(f"expected [..., 3, 4] or [..., 4, 4] matrices, got {tuple(m.shape)}")
    r = m[..., :3, :3]
    t = m[..., :3, 3:]
    rt = r.transpose(-1, -2)
    out = torch.cat([rt, -rt @ t], dim=-1)
    return to_homogeneous(out) if m.shape[-2:] == (4, 4) else out


def extrinsics_to_poses(extrinsics: Tensor) -> Tensor:
    """Camera-from-world ``[..., 3|4, 4]`` → camera-to-world ``[..., 4, 4]``."""
    return to_homogeneous(invert_rigid(extrinsics))


def poses_to_extrinsics(poses: Tensor) -> Tensor:
    """Camera-to-world ``[..., 3|4, 4]`` → camera-from-world ``[..., 3, 4]``."""
    return invert_rigid(poses)[..., :3, :]


def opengl_to_opencv_poses(poses: Tensor) -> Tensor:
    """Camera-to-world poses ``[..., 3|4, 4]`` of OpenGL cameras (x right, y up, z backward) → the same cameras
    with OpenCV axes (x right, y down, z forward): the camera's y and z axes (columns 1 and 2 of the rotation)
    change sign, the camera centre stays. The map is its own inverse."""
    if poses.shape[-2:] not in ((3, 4), (4, 4)):
        raise ValueError(f"expected [..., 3, 4] or [..., 4, 4] poses, got {tuple(poses.shape)}")
    flip = poses.new_tensor([1.0, -1.0, -1.0, 1.0])
    return poses * flip


def intrinsics_pixels_to_normalized(K: Tensor, height: int, width: int) -> Tensor:
    """Pixel intrinsics ``[..., 3, 3]`` → normalised (row 0 / W, row 1 / H)."""
    _check_k(K)
    scale = K.new_tensor([1.0 / width, 1.0 / height, 1.0])
    return K * scale[:, None]


def intrinsics_normalized_to_pixels(K: Tensor, height: int, width: int) -> Tensor:
    """Normalised intrinsics ``[..., 3, 3]`` → pixels (row 0 * W, row 1 * H)."""
    _check_k(K)
    scale = K.new_tensor([float(width), float(height), 1.0])
    return K * scale[:, None]


def intrinsics_for_pixel_centres(K: Tensor) -> Tensor:
    """Network intrinsics ``[..., 3, 3]`` → the same camera for a renderer that samples pixel ``(u, v)`` at
    ``(u + 0.5, v + 0.5)``: the principal point moves by +0.5 px in x and y.

    The network unprojects pixel ``(u, v)`` at image coordinate ``(u, v)``. Rendering its pixel-aligned
    Gaussians with its own ``K`` lands each one half a pixel off its pixel's sample point, which blurs
    every render (an oracle with true depth and cameras tops out near 22 dB); with this ``K`` it is exact.
    """
    _check_k(K)
    out = K.clone()
    out[..., 0, 2] += 0.5 * out[..., 2, 2]
    out[..., 1, 2] += 0.5 * out[..., 2, 2]
    return out


def intrinsics_for_pixel_indices(K: Tensor) -> Tensor:
    """Inverse of :func:`intrinsics_for_pixel_centres`: a renderer's (or dataset's) ``K`` → the ``K`` that
    unprojects pixel indices ``(u, v)`` as the network does onto the rays through the pixel centres."""
    _check_k(K)
    out = K.clone()
    out[..., 0, 2] -= 0.5 * out[..., 2, 2]
    out[..., 1, 2] -= 0.5 * out[..., 2, 2]
    return out


def _check_last(x: Tensor, n: int, what: str) -> None:
    if x.shape[-1] != n:
        raise ValueError(f"{what} must have last dimension {n}, got shape {tuple(x.shape)}")


def _check_k(K: Tensor) -> None:
    if K.shape[-2:] != (3, 3):
        raise ValueError(f"intrinsics must be [..., 3, 3], got {tuple(K.shape)}")
