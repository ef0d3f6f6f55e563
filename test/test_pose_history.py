"""Pose look-up at image stamps: exact, interpolated, nearest within tolerance, none."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eps3d_ros.geometry.pose_history import PoseHistory


def rot_z(angle: float, t=(0.0, 0.0, 0.0)) -> np.ndarray:
    m = np.eye(4)
    c, s = math.cos(angle), math.sin(angle)
    m[:2, :2] = [[c, -s], [s, c]]
    m[:3, 3] = t
    return m


def test_exact_interpolated_nearest_and_missing() -> None:
    h = PoseHistory(tolerance=0.05, max_gap=0.5)
    h.add("cam", 1.0, rot_z(0.0, (0, 0, 0)))
    h.add("cam", 1.2, rot_z(0.4, (2, 0, 0)))
    np.testing.assert_allclose(h.lookup("cam", 1.0), rot_z(0.0))
    np.testing.assert_allclose(h.lookup("cam", 1.05), rot_z(0.1, (0.5, 0, 0)), atol=1e-12)
    np.testing.assert_allclose(h.lookup("cam", 1.23), rot_z(0.4, (2, 0, 0)))  # nearest within 0.05 s
    assert h.lookup("cam", 1.5) is None and h.lookup("cam", 0.5) is None
    assert h.lookup("other", 1.0) is None
    # A sample arriving late is still used in order.
    h.add("cam", 1.1, rot_z(0.2, (1, 0, 0)))
    np.testing.assert_allclose(h.lookup("cam", 1.1), rot_z(0.2, (1, 0, 0)))
    # Samples further apart than max_gap are not interpolated.
    h.add("cam", 3.0, rot_z(1.0))
    assert h.lookup("cam", 2.0) is None
    with pytest.raises(ValueError, match="4x4"):
        h.add("cam", 4.0, np.eye(3))
    h.clear()
    assert h.frames() == []
