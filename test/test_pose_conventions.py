"""Poses checked by orientation, not only centres: OpenGL or world-to-camera matrices given as OpenCV
camera-to-world are named (from the reconstruction's cameras and points, or from measured depth alone), correct
poses raise nothing, and a window with such poses stays in the camera frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from eps3d_ros.conventions import extrinsics_to_poses, opengl_to_opencv_poses, poses_to_extrinsics
from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.frames.frame import Frame, synthetic_frames
from eps3d_ros.geometry.alignment import metric_alignment
from eps3d_ros.geometry.pose_conventions import (CONVENTIONS, as_opencv_poses, convention_warning, depth_agreement,
                                                 depth_convention_warning, fit_conventions)
from eps3d_ros.geometry.similarity import Sim3
from eps3d_ros.model import EPS3DOutput, Gaussians
from eps3d_ros.model.outputs import depth_to_world_points
from eps3d_ros.settings.tree import Eps3dConfig

FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def scene():
    s = generate_scene(seed=7, num_views=4, height=56, width=56)
    frames = synthetic_frames(s)
    return s, frames, np.stack([f.pose for f in frames])


def prediction(frames, poses: np.ndarray, scale: float = 2.5, rotation_noise_deg: float = 0.0) -> EPS3DOutput:
    """What an exact network predicts: the cameras in the first camera's frame at another scale (rotations
    optionally off by ``rotation_noise_deg``), depth and world points consistent with them."""
    T = (Sim3.from_rigid(poses[0]) @ Sim3(scale, np.eye(3), np.zeros(3))).inverse()
    p = np.repeat(np.eye(4)[None], len(poses), 0)
    rng = np.random.default_rng(0)
    for i, P in enumerate(poses):
        axis = rng.normal(size=3)
        turn = Rotation.from_rotvec(np.radians(rotation_noise_deg) * axis / np.linalg.norm(axis)).as_matrix()
        p[i, :3, :3] = T.R @ P[:3, :3] @ (turn if i else np.eye(3))
        p[i, :3, 3] = T.apply(P[:3, 3])
    ext = poses_to_extrinsics(torch.from_numpy(p))[None]  # [1, S, 3, 4]
    depth = torch.from_numpy(np.stack([np.nan_to_num(f.depth, nan=1.0) for f in frames]) / scale)[None, ..., None]
    K = torch.from_numpy(np.stack([f.K for f in frames]))[None]
    S, H, W = depth.shape[1:4]
    n, z = S * H * W, torch.zeros
    g = Gaussians(means=z(1, n, 3), opacities=z(1, n), scales=z(1, n, 3), rotations=z(1, n, 4),
                  covariances=z(1, n, 3, 3), harmonics=z(1, n, 3, 1), semantics=z(1, n, 2), instances=z(1, n, 2))
    return EPS3DOutput(depth=depth, depth_conf=torch.ones(1, S, H, W), pose_enc=z(1, S, 9), pose_enc_list=[z(1, S, 9)],
                       extrinsics=ext, intrinsics=K, world_points=depth_to_world_points(depth, ext, K),
                       gaussians=g, appearance_raw=z(1, S, 1, H, W), semantic_maps=z(1, S, 2, H, W),
                       instance_maps=z(1, S, 2, H, W))


def given(frames, poses: np.ndarray, depth: bool) -> list[Frame]:
    return [Frame(f.stamp, f.rgb, f.K, f.frame_id, depth=f.depth if depth else None, pose=P)
            for f, P in zip(frames, poses)]


def test_every_reading_converts_back_to_the_opencv_poses(scene) -> None:
    _, _, poses = scene
    t = torch.from_numpy(poses)
    written = {"opencv_c2w": poses, "opengl_c2w": opengl_to_opencv_poses(t).numpy(),
               "opencv_w2c": extrinsics_to_poses(t).numpy(),
               "opengl_w2c": extrinsics_to_poses(opengl_to_opencv_poses(t)).numpy()}
    assert set(written) == set(CONVENTIONS)
    for name, P in written.items():
        np.testing.assert_allclose(as_opencv_poses(P, name), poses, atol=1e-9)


@pytest.mark.parametrize("depth", [False, True])
def test_correct_poses_raise_nothing_and_fit(scene, depth: bool) -> None:
    _, frames, poses = scene
    a = metric_alignment(prediction(frames, poses), given(frames, poses, depth), Eps3dConfig())
    assert (a.method, a.frame_id, a.warning) == ("tf", "map", "")
    # a weak camera head (every predicted rotation 25 degrees off) raises nothing either
    noisy = prediction(frames, poses, rotation_noise_deg=25.0)
    fits = fit_conventions(noisy.extrinsics[0].numpy(), poses)
    assert convention_warning(fits, 0.25) == "" and next(f for f in fits if f.name == "opencv_c2w").rotation_deg > 15


@pytest.mark.parametrize("depth", [False, True])
@pytest.mark.parametrize("name, written, phrase", [
    ("opengl_c2w", lambda P: P @ FLIP, "camera-to-world poses with OpenGL camera axes"),
    ("opencv_w2c", lambda P: np.linalg.inv(P), "world-to-camera matrices (camera-from-world extrinsics"),
])
def test_another_convention_is_named_and_the_window_stays_in_the_camera_frame(scene, depth, name, written,
                                                                              phrase) -> None:
    _, frames, poses = scene
    wrong = np.stack([written(P) for P in poses])
    a = metric_alignment(prediction(frames, poses), given(frames, wrong, depth), Eps3dConfig())
    assert a.frame_id != "map" and a.warning.startswith("the poses do not look like OpenCV camera-to-world"), a.warning
    assert phrase in a.warning and CONVENTIONS[name][1] in a.warning
    assert "kept in the camera frame" in a.warning


def test_measured_depth_alone_tells_the_convention(scene) -> None:
    """No network needed: the views' depth, moved by the poses into each other, agrees only under the right
    reading (the poses' centres are the same under both axis conventions)."""
    _, frames, poses = scene
    depths, Ks = [f.depth for f in frames], [f.K for f in frames]
    right = depth_agreement(poses, depths, Ks, "opencv_c2w")
    flipped = np.stack([P @ FLIP for P in poses])
    wrong = depth_agreement(flipped, depths, Ks, "opencv_c2w")
    assert right > 0.9 and 1 - wrong >= 3 * (1 - right) and wrong < right - 0.08, (right, wrong)
    assert depth_convention_warning(poses, depths, Ks) == ""
    assert "OpenGL camera axes" in depth_convention_warning(flipped, depths, Ks)
    assert depth_agreement(flipped, depths, Ks, "opengl_c2w") == pytest.approx(right)
    # a prediction whose cameras are nonsense cannot hide it
    junk_poses = np.stack([np.eye(4) for _ in poses])
    for i in range(len(junk_poses)):
        junk_poses[i, :3, 3] = [i * 0.3, (i % 2) * 0.2, 0.1 * i * i]
    junk = prediction(frames, junk_poses)
    a = metric_alignment(junk, given(frames, flipped, True), Eps3dConfig())
    assert "OpenGL camera axes" in a.warning
