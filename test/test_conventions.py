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


def test_opengl_poses_become_opencv_poses() -> None:
    """A point straight ahead of an OpenGL camera (on its -z axis) with the image's up (+y) above it lands
    straight ahead (+z) and above the centre (-y) of the converted OpenCV camera; the centre stays."""
    R = random_rotations(4)
    C = torch.randn(4, 3, 1, dtype=torch.float64)
    gl = cv.to_homogeneous(torch.cat([R, C], dim=-1))
    ocv = cv.opengl_to_opencv_poses(gl)
    torch.testing.assert_close(ocv[:, :3, 3], gl[:, :3, 3])
    ahead_up = gl[:, :3, :3] @ torch.tensor([0.0, 0.5, -2.0], dtype=torch.float64) + gl[:, :3, 3]
    E = cv.poses_to_extrinsics(ocv)
    cam = (E[:, :, :3] @ ahead_up[..., None])[..., 0] + E[:, :, 3]
    torch.testing.assert_close(cam, torch.tensor([[0.0, -0.5, 2.0]] * 4, dtype=torch.float64))
    torch.testing.assert_close(cv.opengl_to_opencv_poses(ocv), gl)  # its own inverse
    assert torch.allclose(torch.linalg.det(ocv[:, :3, :3]), torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="poses"):
        cv.opengl_to_opencv_poses(torch.zeros(3, 3))


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


def test_pixel_centre_intrinsics_move_the_principal_point_half_a_pixel() -> None:
    K = torch.tensor([[80.0, 0, 56], [0, 80, 56], [0, 0, 1]])
    Kc = cv.intrinsics_for_pixel_centres(K)
    assert Kc[0, 2] == 56.5 and Kc[1, 2] == 56.5 and torch.equal(Kc[:2, :2], K[:2, :2])
    torch.testing.assert_close(cv.intrinsics_for_pixel_indices(Kc), K)
    assert cv.intrinsics_for_pixel_centres(K[None].expand(3, 3, 3)).shape == (3, 3, 3)
    with pytest.raises(ValueError, match="intrinsics"):
        cv.intrinsics_for_pixel_centres(torch.zeros(3, 4))


def test_network_gaussians_render_back_onto_their_pixels_with_pixel_centre_intrinsics() -> None:
    """Pixel-aligned Gaussians unprojected as the network does (pixel (u, v) at (u, v)) from true depth
    render their image back sharply only with the pixel-centre K; with the network's own K every render is
    half a pixel off (the renderer samples (u + 0.5, v + 0.5)) and blurred."""
    from eps3d_ros.data.synthetic import generate_scene
    from eps3d_ros.eval import psnr
    from eps3d_ros.model.outputs import depth_to_world_points
    from eps3d_ros.render import render_gaussians

    s = generate_scene(3, num_views=1, height=56, width=56)
    E, K = torch.from_numpy(s.extrinsics), torch.from_numpy(s.intrinsics)  # the data's K samples pixel centres
    depth = torch.from_numpy(s.depth)[None, ..., None]
    image = torch.from_numpy(s.rgb[0]).float() / 255
    ok = s.depth[0].reshape(-1) > 0

    def render(K_unproject: torch.Tensor, K_render: torch.Tensor) -> float:
        means = depth_to_world_points(depth, E[None], K_unproject[None]).reshape(-1, 3)[ok]
        n = means.shape[0]
        scales = (0.05 * depth.reshape(-1)[ok] / K[0, 0, 0])[:, None].expand(n, 3).contiguous()  # 0.05 px
        out = render_gaussians(means, torch.full((n,), 0.99), image.reshape(-1, 3)[ok], E, K_render, 56, 56,
                               scales=scales, rotations=torch.tensor([0.0, 0, 0, 1]).expand(n, 4), backend="torch")
        m = torch.from_numpy(s.depth[0] > 0)
        return float(psnr(out.features[0][m][None, None], image[m][None, None])[0])

    K_net = cv.intrinsics_for_pixel_indices(K)  # what the network would predict for this camera
    exact = render(K_net, cv.intrinsics_for_pixel_centres(K_net))
    assert exact > 30.0, exact
    # the same Gaussians rendered with the network's own K: half a pixel off, several dB lost
    assert render(K_net, K_net) < exact - 3.0
