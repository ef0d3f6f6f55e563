"""Similarity fits, depth scale, Gaussian transforms and the metric alignment branches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from eps3d_ros.conventions import covariance_from_scale_rotation, poses_to_extrinsics
from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.model import EPS3DOutput, Gaussians
from eps3d_ros.geometry.alignment import (
    AlignmentError,
    Sim3,
    camera_centers,
    depth_scale_ratio,
    metric_alignment,
    transform_gaussians,
)
from eps3d_ros.settings.tree import Eps3dConfig
from eps3d_ros.frames.frame import Frame, synthetic_frames


def random_sim3(seed: int, scale: float = 2.5) -> Sim3:
    rng = np.random.default_rng(seed)
    return Sim3(scale, Rotation.random(random_state=seed).as_matrix(), rng.normal(size=3))


def angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return math.degrees(Rotation.from_matrix(Ra.T @ Rb).magnitude())


# ----------------------------------------------------------------------------------- depth ratio
def test_depth_ratio_is_robust_to_outliers() -> None:
    rng = np.random.default_rng(0)
    pred = rng.uniform(0.5, 3.0, size=(2, 20, 30))
    measured = 2.5 * pred
    out = rng.random(pred.shape) < 0.3  # 30% garbage: reflections, edges, moving things
    measured[out] = rng.uniform(0.1, 20.0, size=out.sum())
    measured[0, :2] = np.nan  # and invalid pixels
    assert depth_scale_ratio(pred, measured) == pytest.approx(2.5, rel=0.02)
    assert depth_scale_ratio(torch.from_numpy(pred).float(), (2.5 * pred).astype(np.float32)) == pytest.approx(2.5, rel=1e-6)
    few = np.full(pred.shape, np.nan)
    few[0, 0, :10] = 1.0
    with pytest.raises(AlignmentError, match=r"only 10 pixels .*\(need >= 100\)"):
        depth_scale_ratio(pred, few)
    with pytest.raises(AlignmentError, match="mismatched sizes"):
        depth_scale_ratio(pred, pred[:, :10])


# ------------------------------------------------------------------------------ Gaussians
def random_gaussians(n: int = 64, seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    scales = torch.rand(1, n, 3, generator=g, dtype=torch.float64) * 0.1 + 0.01
    rot = torch.nn.functional.normalize(torch.randn(1, n, 4, generator=g, dtype=torch.float64), dim=-1)
    return Gaussians(
        means=torch.randn(1, n, 3, generator=g, dtype=torch.float64), opacities=torch.rand(1, n, dtype=torch.float64),
        scales=scales, rotations=rot, covariances=covariance_from_scale_rotation(scales, rot),
        harmonics=torch.zeros(1, n, 3, 25, dtype=torch.float64), semantics=torch.randn(1, n, 32, dtype=torch.float64),
        instances=torch.randn(1, n, 32, dtype=torch.float64),
    )


def test_transform_gaussians_keeps_geometry_consistent() -> None:
    g = random_gaussians()
    T = random_sim3(8, scale=1.7)
    h = transform_gaussians(g, T)
    np.testing.assert_allclose(h.means[0].numpy(), T.apply(g.means[0].numpy()), atol=1e-12)
    # covariance eigenvalues scale by s², and the transformed (scale, rotation) rebuild the covariance
    ev0 = torch.linalg.eigvalsh(g.covariances[0])
    ev1 = torch.linalg.eigvalsh(h.covariances[0])
    torch.testing.assert_close(ev1, ev0 * 1.7**2)
    torch.testing.assert_close(covariance_from_scale_rotation(h.scales, h.rotations), h.covariances)
    torch.testing.assert_close(h.rotations.norm(dim=-1), torch.ones(1, 64, dtype=torch.float64))
    # a point on a Gaussian's principal axis (k std-devs along axis i) maps to the same place on the new Gaussian
    from eps3d_ros.conventions import quat_xyzw_to_matrix

    axes0 = quat_xyzw_to_matrix(g.rotations[0])  # columns = principal axes
    axes1 = quat_xyzw_to_matrix(h.rotations[0])
    for i in range(3):
        p0 = g.means[0] + 2.0 * g.scales[0, :, i : i + 1] * axes0[:, :, i]
        p1 = h.means[0] + 2.0 * h.scales[0, :, i : i + 1] * axes1[:, :, i]
        np.testing.assert_allclose(p1.numpy(), T.apply(p0.numpy()), atol=1e-8)
    # Mahalanobis distances are invariant
    x = torch.randn(64, 3, dtype=torch.float64)
    d0 = x - g.means[0]
    d1 = torch.from_numpy(T.apply(x.numpy())) - h.means[0]
    m0 = (d0[:, None] @ torch.linalg.inv(g.covariances[0]) @ d0[..., None]).flatten()
    m1 = (d1[:, None] @ torch.linalg.inv(h.covariances[0]) @ d1[..., None]).flatten()
    torch.testing.assert_close(m0, m1)
    torch.testing.assert_close(h.semantics, g.semantics)


# ----------------------------------------------------------------------- metric alignment
def fake_prediction(poses_map: np.ndarray, T: Sim3, depth_metric: np.ndarray) -> EPS3DOutput:
    """What a perfect network would predict in the world ``T⁻¹(map)``: cameras, depth and world points.

    ``poses_map [S, 4, 4]`` camera-to-map; ``depth_metric [S, H, W]`` metres (NaN → predicted as 1).
    """
    S, H, W = depth_metric.shape
    Ti = T.inverse()
    poses_pred = np.repeat(np.eye(4)[None], S, 0)
    poses_pred[:, :3, :3] = Ti.R @ poses_map[:, :3, :3]
    poses_pred[:, :3, 3] = Ti.apply(poses_map[:, :3, 3])
    ext = poses_to_extrinsics(torch.from_numpy(poses_pred))  # [S, 3, 4]
    depth = np.where(np.isfinite(depth_metric), depth_metric * Ti.scale, 1.0)
    n = S * H * W
    z = torch.zeros
    K = torch.tensor([[30.0, 0, W / 2], [0, 30.0, H / 2], [0, 0, 1]], dtype=torch.float64).expand(1, S, 3, 3)
    g = Gaussians(means=z(1, n, 3), opacities=z(1, n), scales=z(1, n, 3), rotations=z(1, n, 4),
                  covariances=z(1, n, 3, 3), harmonics=z(1, n, 3, 1), semantics=z(1, n, 2), instances=z(1, n, 2))
    return EPS3DOutput(
        depth=torch.from_numpy(depth)[None, ..., None], depth_conf=torch.ones(1, S, H, W), pose_enc=z(1, S, 9),
        pose_enc_list=[z(1, S, 9)], extrinsics=ext[None], intrinsics=K, world_points=z(1, S, H, W, 3),
        gaussians=g, appearance_raw=z(1, S, 1, H, W), semantic_maps=z(1, S, 2, H, W), instance_maps=z(1, S, 2, H, W),
    )


def with_(frames, depth: bool = True, poses: int | None = None):
    """Frames without depth and/or with only the first ``poses`` poses."""
    out = []
    for i, f in enumerate(frames):
        keep_pose = poses is None or i < poses
        out.append(Frame(f.stamp, f.rgb, f.K, f.frame_id, depth=f.depth if depth else None,
                         pose=f.pose if keep_pose else None))
    return out


@pytest.fixture(scope="module")
def synthetic():
    scene = generate_scene(seed=2, num_views=3, height=28, width=28)
    frames = synthetic_frames(scene)
    poses = np.stack([f.pose for f in frames])
    depth = np.stack([f.depth for f in frames])
    return scene, frames, poses, depth


def config() -> Eps3dConfig:
    return Eps3dConfig()


def test_tf_alignment_recovers_map_centres_on_a_synthetic_scene(synthetic) -> None:
    scene, frames, poses, depth = synthetic
    # the prediction's world is the first camera, at an arbitrary scale: T = pose_0 ∘ scale 3.2
    T = Sim3.from_rigid(poses[0]) @ Sim3(3.2, np.eye(3), np.zeros(3))
    pred = fake_prediction(poses, T, depth)
    ext0 = pred.extrinsics[0, 0].numpy()
    np.testing.assert_allclose(ext0, np.eye(4)[:3], atol=1e-9)  # first predicted camera = origin
    a = metric_alignment(pred, frames, config())
    assert (a.method, a.frame_id, a.scale_known) == ("tf", "map", True)
    centres = a.sim3.apply(camera_centers(pred.extrinsics[0]))
    np.testing.assert_allclose(centres, poses[:, :3, 3], atol=1e-4)
    assert a.residual_m < 1e-6 and a.sim3.scale == pytest.approx(3.2, rel=1e-6)
    assert a.depth_scale == pytest.approx(3.2, rel=1e-5)  # depth agrees with TF
    # the scene's world points, predicted in T⁻¹(map), come back to the map
    pts = scene.world_points(1)[scene.valid[1]]
    np.testing.assert_allclose(a.sim3.apply(T.inverse().apply(pts)), pts, atol=1e-4)


def line_poses(n: int = 3, step: float = 0.3) -> np.ndarray:
    """Camera-to-map poses along the x axis, looking along +y, slightly turning."""
    poses = np.repeat(np.eye(4)[None], n, 0)
    for i in range(n):
        poses[i, :3, :3] = Rotation.from_euler("xz", [-90.0, 5.0 * i], degrees=True).as_matrix()
        poses[i, :3, 3] = [0.2 + step * i, -1.0, 1.2]
    return poses


def pose_frames(poses: np.ndarray, depth: np.ndarray | None, frame_id: str = "cam_optical") -> list[Frame]:
    S = len(poses)
    H, W = (8, 10) if depth is None else depth.shape[1:]
    K = np.array([[30.0, 0, 4.5], [0, 30.0, 3.5], [0, 0, 1]])
    return [Frame(float(i), np.zeros((H, W, 3), np.uint8), K, frame_id, depth=None if depth is None else depth[i],
                  pose=poses[i]) for i in range(S)]


def metric_depth(S: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 4.0, size=(S, 8, 10)).astype(np.float32)


@pytest.mark.parametrize("n_poses", [1, 2])
def test_few_poses_with_depth_use_depth_scale_and_one_pose(n_poses) -> None:
    poses = line_poses(3)
    T = random_sim3(11, scale=0.4)
    d = metric_depth(3)
    pred = fake_prediction(poses, T, d)
    frames = with_(pose_frames(poses, d), poses=n_poses)
    a = metric_alignment(pred, frames, config())
    assert (a.method, a.frame_id, a.scale_known) == ("tf+depth", "map", True)
    assert a.sim3.scale == pytest.approx(0.4, rel=1e-6) and a.reference_index == n_poses - 1
    np.testing.assert_allclose(a.sim3.apply(camera_centers(pred.extrinsics[0])), poses[:, :3, 3], atol=1e-4)
    assert any("TF pose" in n for n in a.notes)


def test_collinear_poses_with_depth_anchor_on_the_newest_pose() -> None:
    poses = line_poses(4)
    T = random_sim3(12, scale=2.0)
    d = metric_depth(4)
    pred = fake_prediction(poses, T, d)
    a = metric_alignment(pred, pose_frames(poses, d), config())
    assert (a.method, a.scale_known, a.reference_index) == ("tf+depth", True, 3)
    assert any("collinear" in n for n in a.notes)
    np.testing.assert_allclose(a.sim3.apply(camera_centers(pred.extrinsics[0])), poses[:, :3, 3], atol=1e-4)


def test_two_poses_without_depth_take_scale_from_the_baseline() -> None:
    poses = line_poses(2)
    T = random_sim3(13, scale=5.0)
    pred = fake_prediction(poses, T, metric_depth(2))
    a = metric_alignment(pred, pose_frames(poses, None), config())
    assert (a.method, a.frame_id, a.scale_known) == ("tf", "map", True)
    assert a.sim3.scale == pytest.approx(5.0, rel=1e-9)
    np.testing.assert_allclose(a.sim3.apply(camera_centers(pred.extrinsics[0])), poses[:, :3, 3], atol=1e-4)


def test_one_pose_without_depth_stays_in_the_camera_frame() -> None:
    """The map frame is metric by definition (ObjectArray.msg): an unscaled scene is not put there."""
    poses = line_poses(2)
    pred = fake_prediction(poses, random_sim3(14, scale=5.0), metric_depth(2))
    frames = with_(pose_frames(poses, None), poses=1)
    a = metric_alignment(pred, frames, config())
    assert (a.method, a.frame_id, a.scale_known, a.sim3.scale) == ("none", frames[-1].frame_id, False, 1.0)
    assert any("cannot be placed in the map frame" in n for n in a.notes)


def test_depth_only_puts_the_scene_in_the_newest_camera_frame() -> None:
    poses = line_poses(3)
    T = random_sim3(15, scale=0.25)
    d = metric_depth(3)
    pred = fake_prediction(poses, T, d)
    frames = [Frame(f.stamp, f.rgb, f.K, f"cam{i}", depth=f.depth) for i, f in enumerate(pose_frames(poses, d))]
    a = metric_alignment(pred, frames, config())
    assert (a.method, a.frame_id, a.scale_known, a.reference_index) == ("depth", "cam2", True, 2)
    assert math.isnan(a.residual_m)
    # a map point, predicted in T⁻¹(map), lands at its metric coordinates in camera 2
    X = np.array([[0.3, 0.8, 0.9], [-1.0, 2.0, 0.1]])
    cam2 = (X - poses[2, :3, 3]) @ poses[2, :3, :3]
    np.testing.assert_allclose(a.sim3.apply(T.inverse().apply(X)), cam2, atol=1e-6)


def test_neither_pose_nor_depth() -> None:
    poses = line_poses(3)
    T = random_sim3(16, scale=0.25)
    pred = fake_prediction(poses, T, metric_depth(3))
    frames = [Frame(f.stamp, f.rgb, f.K, "cam") for f in pose_frames(poses, None)]
    a = metric_alignment(pred, frames, config())
    assert (a.method, a.frame_id, a.scale_known, a.sim3.scale) == ("none", "cam", False, 1.0)
    np.testing.assert_allclose(a.sim3.apply(camera_centers(pred.extrinsics[0]))[2], 0.0, atol=1e-9)


def test_unusable_or_disabled_depth_falls_back() -> None:
    poses = line_poses(2)
    d = metric_depth(2)
    pred = fake_prediction(poses, random_sim3(17, scale=3.0), d)
    sparse = d.copy()
    sparse[:, 1:] = np.nan  # 20 valid pixels < 100
    a = metric_alignment(pred, pose_frames(poses, sparse), config())
    assert a.method == "tf" and a.depth_scale is None and any("only 20 pixels" in n for n in a.notes)
    cfg = config()
    cfg.pipeline.use_depth = False
    a = metric_alignment(pred, with_(pose_frames(poses, d), poses=1), cfg)
    assert a.method == "none" and not a.scale_known and a.frame_id != "map"
    with pytest.raises(ValueError, match="2 frames for a prediction of 3 views"):
        metric_alignment(fake_prediction(line_poses(3), random_sim3(1), metric_depth(3)), pose_frames(poses, d), cfg)


def test_tf_that_disagrees_with_the_images_is_rejected_with_a_warning() -> None:
    """A bag whose TF belongs to another trajectory: no silently wrong metric map, the camera frame instead."""
    poses = line_poses(4)
    poses[:, :3, 3] += np.array([[0.0, 0.0, 0.0], [0.0, 0.6, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.9]])  # not a line
    T = random_sim3(21, scale=2.0)
    d = metric_depth(4)
    pred = fake_prediction(poses, T, d)
    good = metric_alignment(pred, pose_frames(poses, d), config())
    assert good.method == "tf" and good.warning == "" and good.residual_m < 1e-6
    shuffled = poses[[2, 0, 3, 1]]  # TF of the wrong frames
    frames = [Frame(f.stamp, f.rgb, f.K, f.frame_id, depth=f.depth, pose=p)
              for f, p in zip(pose_frames(poses, d), shuffled)]
    a = metric_alignment(pred, frames, config())
    assert a.frame_id == frames[-1].frame_id and a.method == "depth" and a.scale_known
    assert "TF and images disagree" in a.warning and "max_alignment_error" in a.warning
    cfg = config()
    cfg.pipeline.max_alignment_error = 100.0  # a user who accepts it gets the fit
    assert metric_alignment(pred, frames, cfg).method == "tf"


def test_depth_that_disagrees_with_the_prediction_gives_no_scale() -> None:
    poses = line_poses(3)
    d = metric_depth(3)
    pred = fake_prediction(poses, random_sim3(22, scale=0.5), d)
    noise = np.random.default_rng(0).uniform(0.2, 5.0, d.shape).astype(np.float32)
    frames = [Frame(f.stamp, f.rgb, f.K, "cam", depth=f.depth * noise[i]) for i, f in enumerate(pose_frames(poses, d))]
    a = metric_alignment(pred, frames, config())
    assert a.method == "none" and not a.scale_known and "measured and predicted depth disagree" in a.warning
