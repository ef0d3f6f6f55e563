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
    pts = np.asarray(points, dtype=np.float64)
    return grouped_knn_outliers(pts, np.zeros(len(pts), dtype=np.int64), k, std_ratio)


def grouped_knn_outliers(points: np.ndarray, groups: np.ndarray, k: int = 16, std_ratio: float = 2.0,
                         workers: int = 1) -> np.ndarray:
    """:func:`knn_outliers` of every group at once: ``points [N, 3]``, ``groups [N]`` (object index, any
    order) → mask ``[N]``, equal to running :func:`knn_outliers` on each group's points.

    Each group gets its own k-d tree (queried on ``workers`` threads, without the GIL); the medians and
    thresholds of all groups are computed together. (One tree over all points, with the group as a
    far-apart 4th coordinate, gives the same result but measured 2.5x slower.) Groups of at most ``k + 1``
    points have no outliers.
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    out = np.zeros(len(pts), dtype=bool)
    if len(pts) == 0:
        return out
    _, inv, size = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.argsort(inv, kind="stable")
    start = np.concatenate([[0], np.cumsum(size)])
    mean_d = np.zeros(len(pts))
    big = np.nonzero(size > k + 1)[0]
    for gi in big:
        idx = order[start[gi]:start[gi + 1]]
        sub = pts[idx]
        dist, _ = cKDTree(sub).query(sub, k=k + 1, workers=workers)
        mean_d[idx] = dist[:, 1:].mean(1)
    sel = (size > k + 1)[inv]
    if not sel.any():
        return out
    g = inv[sel]
    md = mean_d[sel]
    med = _group_median(md, g)
    mad = 1.4826 * _group_median(np.abs(md - med[g]), g)
    out[sel] = md > np.maximum(med + std_ratio * np.maximum(mad, 1e-12), 2.0 * med)[g]
    return out


def _group_median(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``np.median`` of each group (``groups`` in 0..G-1) → ``[G]`` (NaN for an empty group)."""
    count = np.bincount(groups)
    order = np.lexsort((values, groups))
    v = values[order]
    start = np.cumsum(count) - count
    lo = start + (count - 1) // 2
    hi = start + count // 2
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, (v[np.minimum(lo, len(v) - 1)] + v[np.minimum(hi, len(v) - 1)]) / 2, np.nan)
