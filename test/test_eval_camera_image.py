"""Camera and image metrics: relative pose errors by hand, invariances, PSNR, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eps3d_ros.conventions import invert_rigid, to_homogeneous
from eps3d_ros.eval import psnr, relative_pose_errors, rotation_angle_deg


def _rot_z(deg: float) -> torch.Tensor:
    a = math.radians(deg)
    return torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]],
                        dtype=torch.float64)


def _extrinsics(rotations: list[torch.Tensor], translations: list[list[float]]) -> torch.Tensor:
    return torch.stack([torch.cat([R, torch.tensor(t, dtype=torch.float64)[:, None]], 1)
                        for R, t in zip(rotations, translations)])


def _random_rigid(gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.det(q))
    return torch.cat([q, torch.randn(3, 1, generator=gen, dtype=torch.float64)], 1)


def test_rotation_angle_by_hand() -> None:
    angles = rotation_angle_deg(torch.stack([_rot_z(0.0), _rot_z(30.0), _rot_z(-90.0), _rot_z(180.0)]))
    assert torch.allclose(angles, torch.tensor([0.0, 30.0, 90.0, 180.0], dtype=torch.float64), atol=1e-5)


def test_relative_pose_errors_by_hand() -> None:
    true = _extrinsics([_rot_z(0), _rot_z(20), _rot_z(40)], [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    # view 1: 5 degrees more rotation, translation turned by 90 degrees and twice as long; view 2 exact
    pred = _extrinsics([_rot_z(0), _rot_z(25), _rot_z(40)], [[0, 0, 0], [0, 2, 0], [0, 1, 0]])
    rot, trans = relative_pose_errors(pred, true)
    assert rot == pytest.approx([5.0, 0.0], abs=1e-6) and trans == pytest.approx([90.0, 0.0], abs=1e-6)
    # the opposite translation direction is 180 degrees off (the sign counts)
    _, flipped = relative_pose_errors(_extrinsics([_rot_z(0), _rot_z(20)], [[0, 0, 0], [-1, 0, 0]]), true[:2])
    assert flipped == pytest.approx([180.0], abs=1e-6)


def test_relative_pose_errors_ignore_the_world_frame_and_scale() -> None:
    gen = torch.Generator().manual_seed(0)
    true = torch.stack([_random_rigid(gen) for _ in range(4)])
    # the same cameras seen from another world frame, at another scale: no error at all
    world = to_homogeneous(_random_rigid(gen))
    moved = to_homogeneous(true) @ invert_rigid(world)[None]
    moved[:, :3, 3] *= 3.7
    rot, trans = relative_pose_errors(moved[:, :3], true)
    assert np.abs(rot).max() < 1e-5 and np.abs(trans).max() < 1e-5
    rot, trans = relative_pose_errors(true.numpy(), true.numpy())  # numpy in, numpy out
    assert isinstance(rot, np.ndarray) and rot.shape == (3,) and np.abs(trans).max() < 1e-5


def test_relative_pose_errors_degenerate_baseline_and_bad_input() -> None:
    true = _extrinsics([_rot_z(0), _rot_z(30)], [[0, 0, 0], [0, 0, 0]])  # pure rotation: no direction
    rot, trans = relative_pose_errors(true, true)
    assert rot == pytest.approx([0.0], abs=1e-6) and np.isnan(trans).all()
    with pytest.raises(ValueError, match="at least two views"):
        relative_pose_errors(true[:1], true[:1])
    with pytest.raises(ValueError, match=r"\[S, 3, 4\]"):
        relative_pose_errors(true, true[:, :, :3])


def test_psnr() -> None:
    a = torch.zeros(2, 4, 4, 3)
    b = a.clone()
    b[0] += 0.1  # MSE 0.01 -> 20 dB
    out = psnr(b, a)
    assert out[0] == pytest.approx(20.0, abs=1e-5) and np.isinf(out[1])
    assert psnr(b.numpy() * 255, a.numpy() * 255, peak=255.0)[0] == pytest.approx(20.0, abs=1e-5)
    with pytest.raises(ValueError, match="psnr"):
        psnr(a, a[:1])
