"""The similarity transform and its Umeyama fit (shared by the pipeline's alignment and training evaluation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eps3d_ros.geometry.similarity import AlignmentError, Sim3, nearest_rotation, umeyama_sim3


def random_sim3(seed: int, scale: float = 2.5) -> Sim3:
    rng = np.random.default_rng(seed)
    return Sim3(scale, Rotation.random(random_state=seed).as_matrix(), rng.normal(size=3))


def angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return math.degrees(Rotation.from_matrix(Ra.T @ Rb).magnitude())


def test_umeyama_recovers_exact_and_noisy_similarity() -> None:
    T = random_sim3(0)
    src = np.random.default_rng(1).normal(size=(50, 3))
    exact = umeyama_sim3(src, T.apply(src))
    assert exact.scale == pytest.approx(2.5, abs=1e-12)
    np.testing.assert_allclose(exact.R, T.R, atol=1e-12)
    np.testing.assert_allclose(exact.t, T.t, atol=1e-12)

    dst = T.apply(src) + 1e-3 * np.random.default_rng(2).normal(size=src.shape)
    fit = umeyama_sim3(src, dst)
    assert fit.scale == pytest.approx(2.5, rel=1e-3)
    assert angle_deg(fit.R, T.R) < 0.05
    np.testing.assert_allclose(fit.t, T.t, atol=3e-3)
    rigid = umeyama_sim3(src, src @ T.R.T + T.t, with_scale=False)
    assert rigid.scale == 1.0 and angle_deg(rigid.R, T.R) < 1e-9


def test_umeyama_planar_points_and_reflection() -> None:
    rng = np.random.default_rng(3)
    planar = np.c_[rng.normal(size=(10, 2)), np.zeros(10)]  # coplanar: the SVD has a zero singular value
    T = random_sim3(4, scale=0.7)
    fit = umeyama_sim3(planar, T.apply(planar))
    assert fit.scale == pytest.approx(0.7, abs=1e-12) and angle_deg(fit.R, T.R) < 1e-9
    # a mirrored target is best fit by a reflection; the result must still be a proper rotation
    src = rng.normal(size=(20, 3))
    fit = umeyama_sim3(src, src * [1.0, 1.0, -1.0])
    assert np.linalg.det(fit.R) == pytest.approx(1.0) and np.allclose(fit.R.T @ fit.R, np.eye(3))


def test_umeyama_degenerate_inputs_raise() -> None:
    with pytest.raises(AlignmentError, match="at least 3 correspondences, got 2"):
        umeyama_sim3(np.zeros((2, 3)), np.zeros((2, 3)))
    line = np.outer(np.arange(5.0), [1.0, 2.0, 3.0])
    with pytest.raises(AlignmentError, match="source points are collinear"):
        umeyama_sim3(line, np.random.default_rng(0).normal(size=(5, 3)))
    with pytest.raises(AlignmentError, match="NaN"):
        umeyama_sim3(np.full((3, 3), np.nan), np.zeros((3, 3)))
    with pytest.raises(AlignmentError, match="same shape"):
        umeyama_sim3(np.zeros((4, 3)), np.zeros((5, 3)))


def test_sim3_algebra() -> None:
    A, B = random_sim3(5, 2.0), random_sim3(6, 0.5)
    x = np.random.default_rng(7).normal(size=(4, 3))
    np.testing.assert_allclose((A @ B).apply(x), A.apply(B.apply(x)), atol=1e-12)
    np.testing.assert_allclose(A.inverse().apply(A.apply(x)), x, atol=1e-12)
    h = np.c_[x, np.ones(4)] @ A.matrix.T
    np.testing.assert_allclose(h[:, :3], A.apply(x), atol=1e-12)
    with pytest.raises(ValueError, match="proper rotation"):
        Sim3(1.0, np.diag([1.0, 1.0, -1.0]), np.zeros(3))


def test_pipeline_and_training_share_one_fit() -> None:
    from eps3d_ros.eval import model_eval as evaluate
    from eps3d_ros.geometry import alignment

    assert alignment.umeyama_sim3 is umeyama_sim3 and evaluate.umeyama_sim3 is umeyama_sim3
    assert alignment.Sim3 is Sim3 and alignment.AlignmentError is AlignmentError


def test_nearest_rotation_is_proper_and_idempotent() -> None:
    rng = np.random.default_rng(9)
    for _ in range(5):
        R = nearest_rotation(rng.normal(size=(3, 3)))
        assert np.allclose(R.T @ R, np.eye(3), atol=1e-12) and np.linalg.det(R) == pytest.approx(1.0)
        np.testing.assert_allclose(nearest_rotation(R), R, atol=1e-12)
    noisy = Rotation.random(random_state=3).as_matrix() + 1e-4 * rng.normal(size=(3, 3))
    assert angle_deg(nearest_rotation(noisy), Rotation.random(random_state=3).as_matrix()) < 0.01
