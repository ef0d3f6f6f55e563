"""Object geometry from its points: centroid, axis-aligned box, PCA-oriented box, outlier removal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.similarity import Sim3


@dataclass(frozen=True)
class OrientedBox:
    center: np.ndarray  # [3]
    rotation: np.ndarray  # [3, 3] columns are the box axes (right-handed, det +1), world frame
    extent: np.ndarray  # [3] full side lengths along the columns of ``rotation``

    def corners(self) -> np.ndarray:
        """``[8, 3]`` world corners."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        return self.center + (signs * self.extent / 2) @ self.rotation.T

    def moved(self, sim3: Sim3) -> "OrientedBox":
        """The box mapped by ``x ↦ s R x + t``: centre mapped, axes rotated, extents scaled."""
        return OrientedBox(center=sim3.apply(self.center), rotation=sim3.R @ self.rotation,
                           extent=sim3.scale * self.extent)


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
    order) → mask ``[N]``, equal to running :func:`knn_outliers` on each group's points. Groups of at most
    ``k + 1`` points have no outliers. See :func:`grouped_neighbours` for the search."""
    nb = grouped_neighbours(points, groups, k, workers)
    return nb.outliers(std_ratio)


@dataclass(frozen=True, eq=False)
class GroupNeighbours:
    """The ``k`` nearest same-group neighbours of every point (self excluded), and per-group statistics.

    ``distance [N, k]`` float64 (``inf`` where a group has fewer than ``k + 1`` points), ``index [N, k]``
    int64 rows into the points (the point itself where padded), ``group [N]`` dense group index ``0..G-1``,
    ``mean_distance [N]`` mean distance to the neighbours (0 for points of groups of at most ``k + 1``
    points), ``spacing [G]`` the group's median ``mean_distance`` — its typical point spacing, in the
    points' units (0 for small groups), ``searched [G]`` groups of more than ``k + 1`` points.
    """

    distance: np.ndarray
    index: np.ndarray
    group: np.ndarray
    mean_distance: np.ndarray
    spacing: np.ndarray
    searched: np.ndarray

    def outliers(self, std_ratio: float) -> np.ndarray:
        """Mask ``[N]``: ``mean_distance > max(median + std_ratio * 1.4826 MAD, 2 median)`` of its group (see
        :func:`knn_outliers`); never in groups of at most ``k + 1`` points."""
        out = np.zeros(len(self.group), dtype=bool)
        sel = self.searched[self.group]
        if not sel.any():
            return out
        g = self.group[sel]
        md = self.mean_distance[sel]
        med = self.spacing
        mad = 1.4826 * _group_median(np.abs(md - med[g]), g, len(self.spacing))
        out[sel] = md > np.maximum(med + std_ratio * np.maximum(mad, 1e-12), 2.0 * med)[g]
        return out

    def densest_component(self, link_factor: float, keep: np.ndarray | None = None) -> np.ndarray:
        """Mask ``[N]`` of the points of each group's largest linked component (the group's densest cluster).

        Two kept points are linked when one is among the other's ``k`` nearest neighbours and they are at
        most ``link_factor`` x the group's ``spacing`` apart; a component is a connected set of links. ``keep``
        ``[N]`` bool: the points that take part (default all; e.g. the inliers). Ties between components of
        equal size: the one holding the lowest point index. Groups of at most ``k + 1`` points are kept whole
        (no statistics to link them by).
        """
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = len(self.group)
        keep = np.ones(n, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        out = keep.copy()
        if n == 0 or link_factor <= 0:
            return out
        radius = (link_factor * self.spacing)[self.group]  # [N]
        linked = (self.distance <= radius[:, None]) & keep[:, None] & keep[self.index]
        rows = np.nonzero(linked)[0]
        cols = self.index[linked]
        _, comp = connected_components(coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n)),
                                       directed=True, connection="weak")
        # components never span groups (links stay within a group): the largest one of each group wins
        size = np.bincount(comp[keep], minlength=comp.max() + 1)
        first = np.full(len(size), n, dtype=np.int64)
        np.minimum.at(first, comp, np.arange(n))
        cand = np.nonzero(keep)[0]
        order = np.lexsort((first[comp[cand]], -size[comp[cand]], self.group[cand]))
        cand = cand[order]
        lead = np.ones(len(cand), dtype=bool)
        lead[1:] = self.group[cand[1:]] != self.group[cand[:-1]]
        best = np.full(len(self.spacing), -1, dtype=np.int64)
        best[self.group[cand[lead]]] = comp[cand[lead]]
        return keep & ((comp == best[self.group]) | ~self.searched[self.group])


def grouped_neighbours(points: np.ndarray, groups: np.ndarray, k: int = 16, workers: int = 1) -> GroupNeighbours:
    """:class:`GroupNeighbours` of ``points [N, 3]`` in ``groups [N]`` (any integer labels, any order).

    Each group gets its own k-d tree (queried on ``workers`` threads, without the GIL); the statistics of
    all groups are computed together. (One tree over all points, with the group as a far-apart 4th
    coordinate, gives the same result but measured 2.5x slower.)
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    n = len(pts)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if pts.ndim != 2 or pts.shape[1] != 3 or groups.shape != (n,):
        raise ValueError(f"points must be [N, 3] and groups [N], got {pts.shape} and {groups.shape}")
    _, inv, size = np.unique(groups, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    dist = np.full((n, k), np.inf)
    index = np.repeat(np.arange(n, dtype=np.int64)[:, None], k, axis=1)
    mean_d = np.zeros(n)
    if n:
        order = np.argsort(inv, kind="stable")
        start = np.concatenate([[0], np.cumsum(size)])
        for gi in np.nonzero(size > k + 1)[0]:
            idx = order[start[gi]:start[gi + 1]]
            sub = pts[idx]
            d, j = cKDTree(sub).query(sub, k=k + 1, workers=workers)
            dist[idx], index[idx] = d[:, 1:], idx[j[:, 1:]]
            mean_d[idx] = d[:, 1:].mean(1)
    searched = size > k + 1
    spacing = np.zeros(len(size))
    sel = searched[inv]
    if sel.any():
        spacing = np.where(searched, np.nan_to_num(_group_median(mean_d[sel], inv[sel], len(size))), 0.0)
    return GroupNeighbours(dist, index, inv, mean_d, spacing, searched)


def _group_median(values: np.ndarray, groups: np.ndarray, num_groups: int | None = None) -> np.ndarray:
    """``np.median`` of each group (``groups`` in 0..G-1) → ``[G]`` (NaN for an empty group)."""
    count = np.bincount(groups, minlength=num_groups or 0)
    order = np.lexsort((values, groups))
    v = values[order]
    start = np.cumsum(count) - count
    lo = start + (count - 1) // 2
    hi = start + count // 2
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, (v[np.minimum(lo, len(v) - 1)] + v[np.minimum(hi, len(v) - 1)]) / 2, np.nan)
