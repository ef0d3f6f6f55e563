"""Object geometry from its points: centroid, axis-aligned box, PCA-oriented box, outlier removal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OrientedBox:
    center: np.ndarray  # [3]
    rotation: np.ndarray  # [3, 3] columns are the box axes (right-handed, det +1), world frame
    extent: np.ndarray  # [3] full side lengths along the columns of ``rotation``

    def corners(self) -> np.ndarray:
        """``[8, 3]`` world corners."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        return self.center + (signs * self.extent / 2) @ self.rotation.T


def oriented_box(points: np.ndarray) -> OrientedBox:
    """PCA box: axes = principal directions of ``points [N, 3]`` (largest first), tight extents."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise ValueError(f"oriented_box needs [N, 3] points with N > 0, got {pts.shape}")
    mean = pts.mean(0)
    if len(pts) < 3:
        rot = np.eye(3)
    else:
        _, vecs = np.linalg.eigh(np.cov((pts - mean).T))
        rot = vecs[:, ::-1].copy()  # descending variance
        if np.linalg.det(rot) < 0:
            rot[:, 2] *= -1
    local = (pts - mean) @ rot
    lo, hi = local.min(0), local.max(0)
    return OrientedBox(center=mean + rot @ ((lo + hi) / 2), rotation=rot, extent=hi - lo)


def knn_outliers(points: np.ndarray, k: int = 16, std_ratio: float = 2.0) -> np.ndarray:
    """Outlier mask ``[N]``: mean distance to the k nearest same-object neighbours far above the rest.

    PE3R drops points whose average distance to same-label neighbours is abnormally large; here the
    neighbours are the object's own points in 3D and "abnormal" is both ``> median + std_ratio * 1.4826 MAD``
    (robust to the outliers themselves) and more than twice the median (so that the natural spread of
    randomly sampled surfaces is kept).
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    if len(pts) <= k + 1:
        return np.zeros(len(pts), dtype=bool)
    dist, _ = cKDTree(pts).query(pts, k=k + 1)
    mean_d = dist[:, 1:].mean(1)
    med = np.median(mean_d)
    mad = 1.4826 * np.median(np.abs(mean_d - med))
    return mean_d > max(med + std_ratio * max(mad, 1e-12), 2.0 * med)
