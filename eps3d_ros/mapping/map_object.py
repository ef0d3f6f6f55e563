"""One object of the map: a thing (one physical object) or a stuff class (all the floor, all the walls ...).

A :class:`MapObject` is immutable (frozen, read-only arrays): the map replaces it by a new one when a
window updates it, so lists of map objects handed to other threads never change under them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ..geometry.similarity import Sim3
from ..panoptic.geometry import OrientedBox
from .voxels import VoxelSet


@dataclass(frozen=True, eq=False)  # identity equality/hash: numpy fields have no truth value
class MapObject:
    id: int  # stable: never changes while the object is in the map, never reused after it leaves
    label: str  # argmax of class_evidence
    is_thing: bool  # False: a stuff class (one object per class)
    centroid: np.ndarray  # [3] float64, map frame: mean of ``points`` (each voxel counts once)
    point_count: int  # len(points)
    observations: int  # windows whose detections were fused into it
    first_seen: float  # stamp (s) of the first such window
    last_seen: float  # stamp (s) of the latest such window
    aabb_min: np.ndarray  # [3] float64
    aabb_max: np.ndarray  # [3] float64
    obb: OrientedBox  # PCA box of ``points``
    score: float  # class_evidence[label] / evidence_weight: the area-weighted mean detection score of the label
    embedding: np.ndarray  # [D] float32 unit, text space: PE3R area-weighted slerp of its detections' embeddings
    class_evidence: dict[str, float]  # class → sum over detections of score x area weight (read-only by convention)
    points: np.ndarray  # [P, 3] float32, map frame: one weighted mean per voxel of ``voxel_size``
    colors: np.ndarray  # [P, 3] float32 RGB in [0, 1]
    misses: int  # windows in a row that saw its place without detecting it (0 after each detection)
    point_weights: np.ndarray  # [P] float32: observed points averaged into each map point
    voxel_size: float  # m: the grid of ``points`` (the configured size, grown when over the point budget)
    evidence_weight: float  # sum of the area weights fused (voxels at the configured size per detection)

    @property
    def nbytes(self) -> int:
        """Bytes of numpy data held (points, colours, weights, embedding, geometry)."""
        arrays = (self.centroid, self.aabb_min, self.aabb_max, self.embedding, self.points, self.colors,
                  self.point_weights, self.obb.center, self.obb.rotation, self.obb.extent)
        return int(sum(a.nbytes for a in arrays))


def moved_object(obj: MapObject, sim3: Sim3) -> MapObject:
    """``obj`` with its geometry (centroid, boxes, points) mapped by ``sim3`` into another frame, e.g. a query's
    target frame; the map's own object is not changed."""
    if sim3.is_identity:
        return obj
    obb = obj.obb.moved(sim3)
    corners = obb.corners()
    points = sim3.apply(obj.points).astype(np.float32)
    points.setflags(write=False)
    return replace(obj, centroid=sim3.apply(obj.centroid), obb=obb, aabb_min=corners.min(0), aabb_max=corners.max(0),
                   points=points, voxel_size=obj.voxel_size * sim3.scale)


def label_from_evidence(evidence: Mapping[str, float], current: str | None = None) -> str:
    """The class with the most evidence; ties keep ``current`` (a stable label), else the first name in order."""
    if not evidence:
        raise ValueError("an object needs class evidence to have a label")
    best = max(evidence.values())
    if current is not None and evidence.get(current, -np.inf) >= best:
        return current
    return min(k for k, v in evidence.items() if v >= best)


def pca_box(points: np.ndarray) -> OrientedBox:
    """The PCA box of :func:`eps3d_ros.panoptic.geometry.oriented_box` (axes = principal directions, largest
    first, right-handed; tight extents), a few times faster on large point sets (no ``np.cov`` copies)."""
    pts = np.asarray(points, dtype=np.float64)
    mean = pts.mean(0)
    x = pts - mean
    if len(pts) < 3:
        rot = np.eye(3)
    else:
        _, vecs = np.linalg.eigh(x.T @ x)  # the scatter matrix: the covariance's eigenvectors
        rot = vecs[:, ::-1].copy()  # descending variance
        if np.linalg.det(rot) < 0:
            rot[:, 2] *= -1
    local = x @ rot
    lo, hi = local.min(0), local.max(0)
    return OrientedBox(center=mean + rot @ ((lo + hi) / 2), rotation=rot, extent=hi - lo)


def make_map_object(*, id: int, is_thing: bool, voxels: VoxelSet, voxel_size: float, embedding: np.ndarray,
                    class_evidence: Mapping[str, float], evidence_weight: float, observations: int,
                    first_seen: float, last_seen: float, misses: int, label: str | None = None) -> MapObject:
    """A map object with its geometry computed from ``voxels`` (which must not be empty).

    ``label``: the current label (kept on evidence ties); the label is always argmax of the evidence."""
    if len(voxels) == 0:
        raise ValueError(f"map object {id} would have no points")
    pts = np.ascontiguousarray(voxels.points, dtype=np.float32)
    pts64 = pts.astype(np.float64)  # geometry of the stored points: identical after a save/load round trip
    evidence = {str(k): float(v) for k, v in class_evidence.items()}
    name = label_from_evidence(evidence, label)
    emb = np.asarray(embedding)
    norm = float(np.linalg.norm(emb.astype(np.float64)))
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"map object {id}: its embedding is zero or not finite")
    if abs(norm - 1.0) > 1e-6:  # already unit (e.g. read from a file): kept bit for bit
        emb = emb.astype(np.float64) / norm
    obj = MapObject(
        id=int(id), label=name, is_thing=bool(is_thing), centroid=pts64.mean(0), point_count=int(len(pts)),
        observations=int(observations), first_seen=float(first_seen), last_seen=float(last_seen),
        aabb_min=pts64.min(0), aabb_max=pts64.max(0), obb=pca_box(pts64),
        score=float(evidence.get(name, 0.0) / evidence_weight) if evidence_weight > 0 else 0.0,
        embedding=np.array(emb, dtype=np.float32), class_evidence=evidence, points=pts,
        colors=np.ascontiguousarray(np.clip(voxels.colors, 0.0, 1.0), dtype=np.float32), misses=int(misses),
        point_weights=np.ascontiguousarray(voxels.weights, dtype=np.float32), voxel_size=float(voxel_size),
        evidence_weight=float(evidence_weight))
    for a in (obj.centroid, obj.aabb_min, obj.aabb_max, obj.embedding, obj.points, obj.colors, obj.point_weights,
              obj.obb.center, obj.obb.rotation, obj.obb.extent):
        a.setflags(write=False)
    return obj


def voxels_of(obj: MapObject) -> VoxelSet:
    """The object's points as a voxel set (float64 copies) for fusion."""
    return VoxelSet(obj.points.astype(np.float64), obj.colors.astype(np.float64), obj.point_weights.astype(np.float64))
