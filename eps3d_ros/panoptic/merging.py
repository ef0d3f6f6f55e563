"""Merging over-split instances: clusters of one object that HDBSCAN cut apart (a chair in 2-4 pieces).

Two thing clusters merge when their features and space agree:

* the same class (their opacity-weighted label votes);
* close instance features: the cosine of their feature centroids (mean of the unit instance features of
  their points, normalised) is at least ``min_similarity``;
* touching in 3D: at least ``min_contact`` of the smaller cluster's core points (see
  :meth:`~eps3d_ros.panoptic.geometry.GroupNeighbours.densest_component`) have a core point of the other
  within ``contact_factor`` x the larger of the two clusters' point spacings. Spacings are measured on the
  points themselves, so the test holds in any units (metres or the network's own).

Pairs are taken by decreasing feature cosine, and the feature test is repeated on the merged groups (their
pooled centroids), so a chain A-B-C only forms while the group as a whole still agrees.
"""

from __future__ import annotations

import numpy as np

__all__ = ["merge_clusters"]


def merge_clusters(
    points: np.ndarray,
    features: np.ndarray,
    cluster: np.ndarray,
    core: np.ndarray,
    labels: np.ndarray,
    spacing: np.ndarray,
    *,
    min_similarity: float,
    contact_factor: float,
    min_contact: float,
    workers: int = 1,
) -> np.ndarray:
    """Group index ``[C]`` of each cluster (``0..G-1``, numbered by their lowest cluster).

    ``points [N, 3]``, ``features [N, D]`` (instance features, any norm) and ``cluster [N]`` (``0..C-1``) of
    the clusters' member points; ``core [N]`` bool: the points whose contact counts; ``labels [C]``: each
    cluster's class (clusters with a negative label never merge); ``spacing [C]``: each cluster's typical
    point spacing (0 = unknown: never merges).
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    cluster = np.asarray(cluster, dtype=np.int64)
    core = np.asarray(core, dtype=bool)
    labels = np.asarray(labels, dtype=np.int64)
    spacing = np.asarray(spacing, dtype=np.float64)
    c = len(labels)
    parent = np.arange(c)
    if c < 2 or len(pts) == 0:
        return _numbered(parent)
    f = np.asarray(features, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    sums = np.zeros((c, f.shape[1]))
    np.add.at(sums, cluster, f)  # [C, D] sum of unit features per cluster
    unit = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    n_core = np.bincount(cluster[core], minlength=c)
    cos = unit @ unit.T
    a, b = np.triu_indices(c, k=1)
    ok = (labels[a] == labels[b]) & (labels[a] >= 0) & (cos[a, b] >= min_similarity) & (n_core[a] > 0) \
        & (n_core[b] > 0) & (spacing[a] > 0) & (spacing[b] > 0)
    a, b = a[ok], b[ok]
    if not len(a):
        return _numbered(parent)
    order = np.argsort(-cos[a, b], kind="stable")
    by_cluster = np.argsort(cluster, kind="stable")
    start = np.concatenate([[0], np.cumsum(np.bincount(cluster, minlength=c))])
    trees: dict[int, object] = {}
    group_sum = sums.copy()

    def core_points(k: int) -> np.ndarray:
        idx = by_cluster[start[k]:start[k + 1]]
        return pts[idx[core[idx]]]

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i in order:
        x, y = int(a[i]), int(b[i])
        rx, ry = find(x), find(y)
        if rx == ry:
            continue
        gx, gy = group_sum[rx], group_sum[ry]
        if gx @ gy / max(np.linalg.norm(gx) * np.linalg.norm(gy), 1e-12) < min_similarity:
            continue
        small, big = (x, y) if n_core[x] <= n_core[y] else (y, x)
        if big not in trees:
            trees[big] = cKDTree(core_points(big))
        radius = contact_factor * max(spacing[x], spacing[y])
        d, _ = trees[big].query(core_points(small), k=1, distance_upper_bound=radius, workers=workers)
        if np.isfinite(d).mean() < min_contact:
            continue
        keep, gone = min(rx, ry), max(rx, ry)
        parent[gone] = keep
        group_sum[keep] = gx + gy
    return _numbered(np.array([find(k) for k in range(c)]))


def _numbered(root: np.ndarray) -> np.ndarray:
    """Roots ``[C]`` → dense group numbers in order of each group's lowest cluster."""
    _, first, inv = np.unique(root, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inv.reshape(-1)].astype(np.int64)
