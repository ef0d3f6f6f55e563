"""A similarity transform ``x ↦ s R x + t`` and its least-squares fit to point correspondences (Umeyama).

Pure numpy, below both the pipeline (metric alignment of a prediction) and training evaluation
(scoring centroids in the true frame). Composition: ``(A ∘ B)(x) = A(B(x))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Sim3", "AlignmentError", "umeyama_sim3", "nearest_rotation"]


class AlignmentError(ValueError):
    """Correspondences or depth that cannot determine a transform (too few, degenerate)."""


@dataclass(frozen=True, eq=False)  # identity equality/hash: numpy fields have no truth value
class Sim3:
    """``x ↦ scale * R @ x + t``."""

    scale: float
    R: np.ndarray  # [3, 3] float64 rotation (det +1)
    t: np.ndarray  # [3] float64

    def __post_init__(self) -> None:
        s = float(self.scale)
        if not (s > 0 and math.isfinite(s)):
            raise ValueError(f"Sim3 scale must be positive and finite, got {self.scale}")
        R = np.array(self.R, dtype=np.float64)
        t = np.array(self.t, dtype=np.float64).reshape(-1)
        if R.shape != (3, 3) or t.shape != (3,):
            raise ValueError(f"Sim3 needs R [3, 3] and t [3], got {R.shape} and {t.shape}")
        if not (np.isfinite(R).all() and np.isfinite(t).all()):
            raise ValueError("Sim3 has NaN or infinite entries")
        if not np.allclose(R.T @ R, np.eye(3), atol=1e-5) or np.linalg.det(R) <= 0:
            raise ValueError("Sim3 R is not a proper rotation (orthonormal, det +1)")
        object.__setattr__(self, "scale", s)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "t", t)
        R.setflags(write=False)
        t.setflags(write=False)

    @classmethod
    def identity(cls) -> "Sim3":
        return cls(1.0, np.eye(3), np.zeros(3))

    @classmethod
    def from_rigid(cls, m: np.ndarray, scale: float = 1.0) -> "Sim3":
        """``x ↦ scale * (R x + t)`` from a rigid ``[3|4, 4]`` ``[R | t]`` (R re-orthonormalised, as float32
        predictions are not exactly orthonormal)."""
        m = np.asarray(m, dtype=np.float64)
        R = nearest_rotation(m[:3, :3])
        return cls(scale, R, scale * m[:3, 3])

    @classmethod
    def from_matrix(cls, m: np.ndarray, atol: float = 1e-6) -> "Sim3":
        """The similarity of a homogeneous ``[4, 4]`` ``[[s R, t], [0, 1]]`` (a rigid transform: ``s = 1``); a
        matrix that is not one (shear, reflection, a projective last row) is a ``ValueError``."""
        m = np.asarray(m, dtype=np.float64)
        if m.shape != (4, 4) or not np.isfinite(m).all():
            raise ValueError(f"a similarity matrix is a finite [4, 4], got shape {m.shape}")
        if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=atol):
            raise ValueError(f"a similarity matrix has the last row [0, 0, 0, 1], got {m[3].tolist()}")
        A = m[:3, :3]
        det = float(np.linalg.det(A))
        if not det > 0:
            raise ValueError(f"not a similarity: det of the linear part is {det:g} (a reflection or degenerate)")
        s = det ** (1.0 / 3.0)
        R = A / s
        if not np.allclose(R.T @ R, np.eye(3), atol=max(atol, 1e-9) * 10):
            raise ValueError("not a similarity: the linear part is not a scaled rotation (shear or anisotropic scale)")
        return cls(s, nearest_rotation(R), m[:3, 3])

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and bool(np.all(self.R == np.eye(3))) and not bool(np.any(self.t))

    @property
    def matrix(self) -> np.ndarray:
        """``[4, 4]`` homogeneous ``[[s R, t], [0, 1]]``."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.R
        m[:3, 3] = self.t
        return m

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Points ``[..., 3]`` → ``[..., 3]`` (float64)."""
        p = np.asarray(points, dtype=np.float64)
        if p.shape[-1] != 3:
            raise ValueError(f"points must be [..., 3], got shape {p.shape}")
        return self.scale * p @ self.R.T + self.t

    def compose(self, other: "Sim3") -> "Sim3":
        """``self ∘ other``: apply ``other`` first."""
        return Sim3(self.scale * other.scale, self.R @ other.R, self.scale * self.R @ other.t + self.t)

    def __matmul__(self, other: "Sim3") -> "Sim3":
        return self.compose(other)

    def inverse(self) -> "Sim3":
        return Sim3(1.0 / self.scale, self.R.T, -(self.R.T @ self.t) / self.scale)


def nearest_rotation(m: np.ndarray) -> np.ndarray:
    """The proper rotation closest to ``m [3, 3]`` in the Frobenius norm (polar decomposition via SVD)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, d]) @ vt


def umeyama_sim3(src: np.ndarray, dst: np.ndarray, with_scale: bool = True, collinear_tol: float = 1e-6) -> Sim3:
    """Least-squares similarity ``s R src + t ≈ dst`` (Umeyama 1991), ``src, dst [N, 3]``.

    The rotation is proper (det +1) even when a reflection would fit better. Needs N >= 3 points
    that are not collinear (``sigma_2 / sigma_1`` of the centred source above ``collinear_tol``).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 3 or src.shape != dst.shape:
        raise AlignmentError(f"umeyama needs two [N, 3] arrays of the same shape, got {src.shape} and {dst.shape}")
    n = src.shape[0]
    if n < 3:
        raise AlignmentError(f"umeyama needs at least 3 correspondences, got {n}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise AlignmentError("umeyama correspondences contain NaN or infinite values")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    for name, x in (("source", xs), ("target", xd)):
        sv = np.linalg.svd(x, compute_uv=False)
        if sv[0] <= 1e-12 or sv[1] <= collinear_tol * sv[0]:
            raise AlignmentError(f"umeyama {name} points are collinear or coincident (singular values "
                                 f"{sv.round(9).tolist()}): rotation about their line is undetermined")
    cov = xd.T @ xs / n  # [3, 3]
    u, d, vt = np.linalg.svd(cov)
    e = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[2] = -1.0  # the best orthogonal fit is a reflection: flip the weakest axis
    R = u @ np.diag(e) @ vt
    var_s = (xs * xs).sum() / n
    s = float((d * e).sum() / var_s) if with_scale else 1.0
    if not s > 0:
        raise AlignmentError(f"umeyama found a non-positive scale {s}: the correspondences do not match")
    return Sim3(s, R, mu_d - s * R @ mu_s)
