"""The recorded RGB-D reader on the shared Redwood frames: intrinsics, poses, cross-view consistency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eps3d_ros.data.redwood import load_rgbd_sequence, read_trajectory_log

from helpers import REPO

ROOT = REPO.parent / "shared" / "data" / "redwood_rgbd"


@pytest.fixture(scope="module")
def seq():
    return load_rgbd_sequence(ROOT)


def test_layout(seq) -> None:
    assert seq.rgb.shape == (5, 480, 640, 3) and seq.rgb.dtype == np.uint8
    assert seq.depth.shape == (5, 480, 640) and seq.depth.dtype == np.float32
    np.testing.assert_allclose(seq.K, [[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])
    assert abs(float(np.nanmedian(seq.depth)) - 1.861) < 0.01 and float(np.nanmax(seq.depth)) <= 2.71
    assert np.allclose(np.linalg.det(seq.poses[:, :3, :3]), 1.0)
    assert seq.extrinsics.shape == (5, 3, 4)


def test_measured_depth_agrees_across_views(seq) -> None:
    """View 0's points, seen from view 1 with its pose and K, land where view 1 measured them."""
    pts = seq.world_points(0).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(1)][::7]
    E = seq.extrinsics[1]
    cam = pts @ E[:, :3].T + E[:, 3]
    uv = cam @ seq.K.T
    u, v = np.round(uv[:, 0] / uv[:, 2]).astype(int), np.round(uv[:, 1] / uv[:, 2]).astype(int)
    ok = (u >= 0) & (u < 640) & (v >= 0) & (v < 480)
    measured = seq.depth[1][v[ok], u[ok]]
    diff = np.abs(measured - cam[ok, 2])
    diff = diff[np.isfinite(diff)]
    assert np.median(diff) < 0.02 and len(diff) > 10000


def test_bad_layouts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="rgbd.match"):
        load_rgbd_sequence(tmp_path)
    (tmp_path / "t.log").write_text("0 0 1\n1 0 0 0\n")
    with pytest.raises(ValueError, match="blocks of 5 lines"):
        read_trajectory_log(tmp_path / "t.log")
