"""A window's objects as detections for the map: each scene object's points voxelised on the map's grid.

Things are voxelised at ``voxel_size``, stuff at ``stuff_voxel_size`` (one detection per stuff class,
as the panoptic scene already has). The detection's area weight is its number of occupied voxels (its
visible surface in voxels): it weighs the detection's embedding and class score against what the map
already holds, as PE3R weighs masks by area.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import MapConfig
from .voxels import VoxelSet, unique_keys, voxelize


@dataclass(eq=False)
class Detection:
    index: int  # position in the window's scene.objects
    label: str
    is_thing: bool
    score: float  # the scene object's score (mean probability of its label)
    embedding: np.ndarray  # [D] float64 unit
    voxels: VoxelSet  # at voxel_size (things) or stuff_voxel_size (stuff), map frame
    voxel_size: float
    area: float  # occupied voxels: the fusion weight
    aabb_min: np.ndarray  # [3] of the voxel points
    aabb_max: np.ndarray  # [3]
    centroid: np.ndarray  # [3] mean of the voxel points (each voxel once, as a map object's)
    _keys: dict[float, np.ndarray] = field(default_factory=dict, repr=False)  # voxel size → sorted distinct keys

    def keys(self, size: float) -> np.ndarray:
        """Sorted distinct voxel keys of the detection at ``size`` (cached)."""
        k = self._keys.get(size)
        if k is None:
            k = self._keys[size] = unique_keys(self.voxels.points, size)
        return k


def window_detections(scene, config: MapConfig) -> list[Detection]:
    """Detections ``[M]`` of a panoptic :class:`~eps3d_ros.panoptic.Scene` (already in the map frame)."""
    out = []
    for i, o in enumerate(scene.objects):
        idx = np.asarray(o.indices, dtype=np.int64)
        if len(idx) == 0:
            continue
        pts = np.asarray(scene.means, dtype=np.float64)[idx]
        ok = np.isfinite(pts).all(1)
        if not ok.all():
            pts, idx = pts[ok], idx[ok]
            if len(idx) == 0:
                continue
        size = config.voxel_size if o.is_thing else config.stuff_voxel_size
        vs = voxelize(pts, np.asarray(scene.colors)[idx], None, size)
        emb = np.asarray(o.embedding, dtype=np.float64)
        n = float(np.linalg.norm(emb))
        if not np.isfinite(n) or n < 1e-12:
            continue  # no usable embedding: nothing to fuse it by
        out.append(Detection(index=i, label=str(o.label), is_thing=bool(o.is_thing), score=float(o.score),
                             embedding=emb / n, voxels=vs, voxel_size=size, area=float(len(vs)),
                             aabb_min=vs.points.min(0), aabb_max=vs.points.max(0), centroid=vs.points.mean(0)))
    return out
