"""Which window detection is which map thing, and which map things are one.

Overlap of two point sets ``A``, ``B`` (a detection and a map thing, or two map things)::

    overlap = max(|keys(A) ∩ keys(B)| / min(|keys(A)|, |keys(B)|),  IoU(aabb(A), aabb(B)))

with ``keys`` the occupied voxels on the grid of edge ``max(association_voxel_size, voxel sizes of A
and B)``. The first term is 1 when a partial view of an object lies inside the object's map points.

Views from opposite sides of an object share no surface (its front and its back), so a detection with
the *same label* as a map thing may also match by proximity::

    proximity = max(0, 1 - |centroid(A) - centroid(B)| / reach),  reach = (size(A) + size(B)) / 2

(``size`` = the largest side of the axis-aligned box of the voxels, i.e. of the points plus one voxel): the
two halves of a 10 cm ball seen from opposite sides are 7 cm apart for a reach of 10 cm (0.3), two whole
10 cm balls side by side are 10 cm or more apart (0). Proximity only adds candidates with the same label;
merging uses the overlap alone.

A detection ``d`` and a map thing ``t`` are a *candidate* pair when (all of)

* ``overlap >= min_overlap`` (for the same label: ``max(overlap, proximity) >= min_overlap``),
* ``cos(embedding d, embedding t) >= min_embedding_similarity``,
* the labels are equal, or ``overlap >= label_mismatch_overlap`` (a label that flips between windows
  does not split an object that is clearly the same one);

pairs score ``overlap + embedding_weight * cos + label_weight * [same label]`` and the assignment
maximising the total score over candidate pairs is taken (``scipy.optimize.linear_sum_assignment``): each
detection matches at most one thing and each thing at most one detection.

Two map things are *merged* when they have the same label and ``overlap >= merge_overlap``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .config import MapConfig
from .detections import Detection
from .map_object import MapObject
from .voxels import overlap_coefficient, unique_keys

_FORBIDDEN = 1e9  # cost of a pair that is not a candidate


@dataclass(frozen=True)
class Match:
    detection: int  # index into the detections given to associate()
    object_id: int
    overlap: float
    similarity: float  # cosine of the embeddings


class KeyCache:
    """Sorted voxel keys of map objects per grid size, kept while the object (by identity) is unchanged."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, float], tuple[MapObject, np.ndarray]] = {}

    def keys(self, obj: MapObject, size: float) -> np.ndarray:
        hit = self._cache.get((obj.id, size))
        if hit is not None and hit[0] is obj:
            return hit[1]
        k = unique_keys(obj.points, size)
        self._cache[(obj.id, size)] = (obj, k)
        return k

    def prune(self, live: Iterable[MapObject]) -> None:
        """Forget every entry whose object is not one of ``live`` (replaced or removed objects)."""
        alive = {id(o) for o in live}
        self._cache = {k: v for k, v in self._cache.items() if id(v[0]) in alive}

    @property
    def nbytes(self) -> int:
        return int(sum(v[1].nbytes for v in self._cache.values()))


def box_iou(amin: np.ndarray, amax: np.ndarray, bmin: np.ndarray, bmax: np.ndarray) -> np.ndarray:
    """IoU ``[P]`` of pairs of axis-aligned boxes given by corners ``[P, 3]`` each (degenerate boxes: 0)."""
    inter = np.prod(np.clip(np.minimum(amax, bmax) - np.maximum(amin, bmin), 0.0, None), axis=-1)
    union = np.prod(amax - amin, axis=-1) + np.prod(bmax - bmin, axis=-1) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def boxes_touch(amin: np.ndarray, amax: np.ndarray, bmin: np.ndarray, bmax: np.ndarray, margin: float) -> np.ndarray:
    """``[A, B]`` True where the boxes, grown by ``margin``, intersect (a cheap filter before voxel overlaps)."""
    return np.all((amin[:, None] - margin <= bmax[None]) & (bmin[None] - margin <= amax[:, None]), axis=-1)


def proximity(ca: np.ndarray, sa: np.ndarray, cb: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """``[A, B]`` ``max(0, 1 - distance / reach)`` of centroids ``ca [A, 3]``, ``cb [B, 3]`` with sizes ``sa [A]``,
    ``sb [B]`` (reach = the mean of the two sizes)."""
    d = np.sqrt(((ca[:, None] - cb[None]) ** 2).sum(-1))
    reach = (sa[:, None] + sb[None]) / 2
    return np.clip(1.0 - d / np.maximum(reach, 1e-9), 0.0, 1.0)


def associate(detections: Sequence[Detection], things: Sequence[MapObject], config: MapConfig,
              cache: KeyCache) -> list[Match]:
    """The optimal one-to-one matches between thing detections and map things (see the module docstring)."""
    dets = [d for d in detections if d.is_thing]
    if not dets or not things:
        return []
    dmin, dmax = np.stack([d.aabb_min for d in dets]), np.stack([d.aabb_max for d in dets])
    tmin, tmax = np.stack([t.aabb_min for t in things]), np.stack([t.aabb_max for t in things])
    prox = proximity(np.stack([d.centroid for d in dets]), (dmax - dmin).max(1) + [d.voxel_size for d in dets],
                     np.stack([t.centroid for t in things]), (tmax - tmin).max(1) + [t.voxel_size for t in things])
    prox *= np.array([d.label for d in dets])[:, None] == np.array([t.label for t in things])[None]
    near = boxes_touch(dmin, dmax, tmin, tmax, config.association_voxel_size) | (prox > 0)
    ii, jj = np.nonzero(near)
    if not len(ii):
        return []
    iou = box_iou(dmin[ii], dmax[ii], tmin[jj], tmax[jj])  # [P] per nearby pair
    # cosines of the nearby pairs only, without BLAS (its threads cost more than they give on such small
    # products, and many times more on a busy CPU)
    cos = np.einsum("pd,pd->p", np.stack([dets[i].embedding for i in ii]).reshape(len(ii), -1),
                    np.stack([things[j].embedding for j in jj]).reshape(len(jj), -1).astype(np.float64))
    score = np.full(near.shape, -np.inf)
    overlap = np.zeros(near.shape)
    similarity = np.zeros(near.shape)
    for i, j, c, box in zip(ii, jj, cos, iou):
        if c < config.min_embedding_similarity:
            continue
        d, t = dets[i], things[j]
        size = max(config.association_voxel_size, d.voxel_size, t.voxel_size)
        ov = max(overlap_coefficient(d.keys(size), cache.keys(t, size)), float(box), float(prox[i, j]))
        same = d.label == t.label
        if ov >= config.min_overlap and (same or ov >= config.label_mismatch_overlap):
            overlap[i, j], similarity[i, j] = ov, c
            score[i, j] = ov + config.embedding_weight * c + config.label_weight * same
    ok = np.isfinite(score)
    rows, cols = np.nonzero(ok.any(1))[0], np.nonzero(ok.any(0))[0]
    if not len(rows):
        return []
    sub = score[np.ix_(rows, cols)]
    r, c = linear_sum_assignment(np.where(np.isfinite(sub), -sub, _FORBIDDEN))
    index = {id(d): k for k, d in enumerate(detections)}
    out = []
    for a, b in zip(r, c):
        i, j = rows[a], cols[b]
        if np.isfinite(score[i, j]):
            out.append(Match(index[id(dets[i])], things[j].id, float(overlap[i, j]), float(similarity[i, j])))
    return sorted(out, key=lambda m: m.detection)


def merge_pairs(things: Sequence[MapObject], touched: set[int], config: MapConfig,
                cache: KeyCache) -> list[tuple[int, int, float]]:
    """Pairs ``(a id, b id, overlap)`` of map things with the same label and ``overlap >= merge_overlap``,
    at least one of them in ``touched`` (the only ones whose overlap can have changed), best overlap first."""
    if len(things) < 2 or not touched:
        return []
    tmin, tmax = np.stack([t.aabb_min for t in things]), np.stack([t.aabb_max for t in things])
    rows = np.array([k for k, t in enumerate(things) if t.id in touched], dtype=np.int64)
    if not len(rows):
        return []
    labels = np.array([t.label for t in things])
    near = boxes_touch(tmin[rows], tmax[rows], tmin, tmax, config.association_voxel_size)  # [R, T]
    near &= labels[rows][:, None] == labels[None]
    near[np.arange(len(rows)), rows] = False
    ri, jj = np.nonzero(near)
    ii = rows[ri]
    pairs = {(min(i, j), max(i, j)) for i, j in zip(ii.tolist(), jj.tolist())}  # each pair once
    if not pairs:
        return []
    ii, jj = (np.array(x, dtype=np.int64) for x in zip(*sorted(pairs)))
    iou = box_iou(tmin[ii], tmax[ii], tmin[jj], tmax[jj])
    out = []
    for i, j, box in zip(ii, jj, iou):
        a, b = things[i], things[j]
        size = max(config.association_voxel_size, a.voxel_size, b.voxel_size)
        ov = max(overlap_coefficient(cache.keys(a, size), cache.keys(b, size)), float(box))
        if ov >= config.merge_overlap:
            out.append((a.id, b.id, ov))
    return sorted(out, key=lambda p: (-p[2], p[0], p[1]))
