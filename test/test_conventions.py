"""Each conversion in eps3d_ros.conventions, on known values and as round trips."""

from __future__ import annotations

import math

import pytest
import torch

from eps3d_ros import conventions as cv


def random_rotations(n: int) -> torch.Tensor:
    q = torch.randn(n, 4, dtype=torch.float64)
    return cv.quat_xyzw_to_matrix(q / q.norm(dim=-1, keepdim=True))


def test_xyzw_wxyz_reorder() -> None:
    q = torch.tensor([1.0, 2.0, 3.0, 4.0])  # x y z w
    assert cv.xyzw_to_wxyz(q).tolist() == [4.0, 1.0, 2.0, 3.0]
    assert cv.wxyz_to_xyzw(cv.xyzw_to_wxyz(q)).tolist() == q.tolist()
    with pytest.raises(ValueError, match="last dimension 4"):
        cv.xyzw_to_wxyz(torch.zeros(3))


def test_quaternion_known_rotation() -> None:
    # 90 degrees about z: x axis -> y axis. xyzw = (0, 0, sin45, cos45).
    s = math.sqrt(0.5)
    R = cv.quat_xyzw_to_matrix(torch.tensor([0.0, 0.0, s, s], dtype=torch.float64))
    torch.testing.assert_close(R @ torch.tensor([1.0, 0, 0], dtype=torch.float64), torch.tensor([0.0, 1, 0], dtype=torch.float64))
    # A non-unit quaternion gives the same rotation (division by |q|^2).
    torch.testing.assert_close(cv.quat_xyzw_to_matrix(torch.tensor([0.0, 0.0, 3 * s, 3 * s], dtype=torch.float64)), R)


def test_matrix_quaternion_round_trip() -> None:
    R = random_rotations(200)
    q = cv.matrix_to_quat_xyzw(R)
    assert torch.all(q[:, 3] >= 0)
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(200, dtype=torch.float64))
    torch.testing.assert_close(cv.quat_xyzw_to_matrix(q), R, atol=1e-10, rtol=0)
    # Near-180-degree rotations (w ~ 0) are the ill-conditioned case.
    R180 = cv.quat_xyzw_to_matrix(torch.tensor([[1.0, 0, 0, 1e-9], [0, 0.6, 0.8, 0]], dtype=torch.float64))
    torch.testing.assert_close(cv.quat_xyzw_to_matrix(cv.matrix_to_quat_xyzw(R180)), R180, atol=1e-8, rtol=0)


def test_rigid_inverse_and_pose_conversions() -> None:
    R = random_rotations(10)
    t = torch.randn(10, 3, 1, dtype=torch.float64)
    E = torch.cat([R, t], dim=-1)  # camera-from-world [10, 3, 4]
    P = cv.extrinsics_to_poses(E)  # camera-to-world [10, 4, 4]
    assert P.shape == (10, 4, 4)
    torch.testing.assert_close(P, torch.linalg.inv(cv.to_homogeneous(E)))
    # The camera centre is where x_cam = 0: C = -R^T t, the translation of the pose.
    torch.testing.assert_close(P[:, :3, 3:], -R.transpose(1, 2) @ t)
    torch.testing.assert_close(cv.poses_to_extrinsics(P), E)
    # A world point maps to camera coordinates and back.
    x = torch.randn(10, 3, 1, dtype=torch.float64)
    x_cam = R @ x + t
    torch.testing.assert_close(P[:, :3, :3] @ x_cam + P[:, :3, 3:], x)
    assert cv.invert_rigid(E).shape == (10, 3, 4)
    with pytest.raises(ValueError, match="3, 4"):
        cv.invert_rigid(torch.zeros(3, 3))


def test_intrinsics_normalisation() -> None:
    K = torch.tensor([[500.0, 0, 320], [0, 400.0, 240], [0, 0, 1]])
    Kn = cv.intrinsics_pixels_to_normalized(K, height=480, width=640)
    torch.testing.assert_close(Kn, torch.tensor([[500 / 640, 0, 0.5], [0, 400 / 480, 0.5], [0, 0, 1]]))
    torch.testing.assert_close(cv.intrinsics_normalized_to_pixels(Kn, 480, 640), K)
    batched = K.expand(2, 3, 3, 3)
    assert cv.intrinsics_pixels_to_normalized(batched, 480, 640).shape == (2, 3, 3, 3)
    with pytest.raises(ValueError, match="intrinsics"):
        cv.intrinsics_pixels_to_normalized(torch.zeros(3, 4), 1, 1)


def test_covariance_from_scale_rotation() -> None:
    R = random_rotations(20)
    q = cv.matrix_to_quat_xyzw(R)
    s = torch.rand(20, 3, dtype=torch.float64) + 0.1
    cov = cv.covariance_from_scale_rotation(s, 2.0 * q)  # non-unit quaternion, same rotation
    torch.testing.assert_close(cov, R @ torch.diag_embed(s**2) @ R.transpose(1, 2))
    # Eigenvalues are the squared scales.
    torch.testing.assert_close(torch.linalg.eigvalsh(cov), torch.sort(s**2, dim=-1).values)
