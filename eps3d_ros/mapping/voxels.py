"""Weighted voxel sets: the bounded point representation of every map object.

A voxel set holds one point per occupied voxel of a grid anchored at the map origin: the weighted
mean of everything that fell into that voxel, its mean colour, and its weight (how many points were
averaged). Merging two sets on the same grid is exact (weighted means of weighted means), so a map
object's centroid does not depend on the order of its observations. A set over its budget moves to
a coarser grid (its voxel size grows) and never goes back: once a place is covered, observing it
again adds no points.

The grid's voxel *centres* are the multiples of the voxel size (voxel ``i`` spans ``[(i - ½) size,
(i + ½) size)``), so the planes a map frame is usually built on (the floor at z = 0, walls at whole
coordinates) run through the middle of a voxel layer: observing them with a little noise fills one layer,
not two. Voxel keys pack ``round(p / size)`` (21 bits per axis, offset by 2^20) into one int64; points
farther than 2^20 voxels from the origin along any axis are rejected.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

_BITS = 21
_OFFSET = 1 << (_BITS - 1)


class VoxelSet(NamedTuple):
    """``V`` voxels: weighted mean ``points [V, 3]`` float64, ``colors [V, 3]`` float64 in [0, 1], ``weights [V]``."""

    points: np.ndarray
    colors: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:  # the number of voxels, not of tuple fields
        return int(self.points.shape[0])


def empty_voxels() -> VoxelSet:
    return VoxelSet(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))


def voxel_keys(points: np.ndarray, size: float) -> np.ndarray:
    """One int64 key ``[N]`` per point ``[N, 3]``: its voxel of edge ``size`` (centred on multiples of ``size``)."""
    ijk = np.floor(np.asarray(points, dtype=np.float64) / float(size) + 0.5).astype(np.int64)  # [N, 3]
    if ijk.size and (ijk.min() < -_OFFSET or ijk.max() >= _OFFSET):
        far = float(np.abs(np.asarray(points, np.float64)).max())
        raise ValueError(f"map points up to {far:.1f} m from the map origin do not fit the voxel grid "
                         f"(±{_OFFSET * size:.0f} m at voxel size {size} m): are the poses in metres?")
    u = ijk + _OFFSET
    return (u[:, 0] << (2 * _BITS)) | (u[:, 1] << _BITS) | u[:, 2]


def voxelize(points: np.ndarray, colors: np.ndarray, weights: np.ndarray | None, size: float) -> VoxelSet:
    """Weighted means per voxel of ``points [N, 3]``, ``colors [N, 3]`` with ``weights [N]`` (None = 1 each).

    Output voxels are in ascending key order (deterministic)."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if n == 0:
        return empty_voxels()
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    keys = voxel_keys(pts, size)
    _, inv = np.unique(keys, return_inverse=True)
    inv = inv.reshape(-1)  # numpy 2.0.0 returned the input's shape
    v = int(inv.max()) + 1
    wsum = np.bincount(inv, weights=w, minlength=v)
    safe = np.where(wsum > 0, wsum, 1.0)
    cols = np.asarray(colors, dtype=np.float64)
    mean_p = np.stack([np.bincount(inv, weights=w * pts[:, i], minlength=v) for i in range(3)], 1) / safe[:, None]
    mean_c = np.stack([np.bincount(inv, weights=w * cols[:, i], minlength=v) for i in range(3)], 1) / safe[:, None]
    return VoxelSet(mean_p, mean_c, wsum)


def merge_voxels(a: VoxelSet, b: VoxelSet, size: float) -> VoxelSet:
    """The union of two voxel sets on the grid of edge ``size`` (shared voxels: weighted means)."""
    return voxelize(np.concatenate([a.points, b.points]), np.concatenate([a.colors, b.colors]),
                    np.concatenate([a.weights, b.weights]), size)


def fit_budget(vs: VoxelSet, size: float, max_points: int) -> tuple[VoxelSet, float]:
    """``(set, size)`` with at most ``max_points`` voxels: the grid grows (surfaces: count ~ size^-2) until it fits."""
    while len(vs) > max_points:
        size *= max(1.2, 1.05 * math.sqrt(len(vs) / max_points))
        vs = voxelize(vs.points, vs.colors, vs.weights, size)
    return vs, size


def unique_keys(points: np.ndarray, size: float) -> np.ndarray:
    """Sorted distinct voxel keys of ``points`` at ``size`` (for overlap counts)."""
    if len(points) == 0:
        return np.zeros(0, np.int64)
    return np.unique(voxel_keys(points, size))


def overlap_coefficient(a: np.ndarray, b: np.ndarray) -> float:
    """``|A ∩ B| / min(|A|, |B|)`` of two sorted distinct key arrays: 1 when one set lies inside the other
    (a partial view of an object inside the object's map points), 0 when disjoint or either is empty."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    pos = np.searchsorted(big, small)
    pos[pos == len(big)] = 0
    return float(np.count_nonzero(big[pos] == small)) / len(small)
