"""Fusing detections into map objects, and map objects into each other.

A detection ``d`` (area weight ``w``: its occupied voxels) fused into a map object (accumulated weight
``W``):

* points: the union of voxel sets on the object's grid (shared voxels: weighted means), then the
  point budget (``max_points_per_object`` for things, ``max_stuff_points`` per stuff class) by growing
  the grid (:func:`~eps3d_ros.mapping.voxels.fit_budget`);
* embedding: PE3R area-weighted slerp, ``slerp(e_map, e_d, t = w / (W + w))``, so the result is the
  running area-weighted spherical mean of all fused detections (:func:`~eps3d_ros.geometry.slerp.slerp`);
* class evidence: ``evidence[d.label] += d.score * w``; ``W += w``; label = argmax evidence (ties keep
  the current label);
* ``observations += 1``, ``last_seen = stamp``, ``misses = 0``.

Two map objects merged: voxel union on the coarser grid, embeddings pooled by
:func:`~eps3d_ros.geometry.slerp.weighted_slerp_pool` with their weights, evidence and weights summed,
``observations`` = the larger (both were mostly seen by the same windows), first/last seen = the
earliest/latest, misses = the smaller.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..geometry.slerp import slerp, weighted_slerp_pool
from .association import KeyCache, merge_pairs
from .config import MapConfig
from .detections import Detection
from .map_object import MapObject, make_map_object, voxels_of
from .voxels import VoxelSet, fit_budget, merge_voxels, voxelize


def point_budget(is_thing: bool, config: MapConfig) -> int:
    return config.max_points_per_object if is_thing else config.max_stuff_points


def base_voxel_size(is_thing: bool, config: MapConfig) -> float:
    return config.voxel_size if is_thing else config.stuff_voxel_size


def new_object(det: Detection, object_id: int, stamp: float, config: MapConfig) -> MapObject:
    """A new map object of one detection."""
    size = max(det.voxel_size, base_voxel_size(det.is_thing, config))
    vs = det.voxels if size == det.voxel_size else _regrid(det.voxels, size)
    vs, size = fit_budget(vs, size, point_budget(det.is_thing, config))
    return make_map_object(id=object_id, is_thing=det.is_thing, voxels=vs, voxel_size=size, embedding=det.embedding,
                           class_evidence={det.label: det.score * det.area}, evidence_weight=det.area,
                           observations=1, first_seen=stamp, last_seen=stamp, misses=0, label=det.label)


def fuse_detections(pairs: Sequence[tuple[MapObject, Detection]], stamp: float, config: MapConfig) -> list[MapObject]:
    """Each ``(object, detection)`` fused (see the module docstring); embeddings slerped in one batch."""
    if not pairs:
        return []
    a = torch.from_numpy(np.stack([o.embedding for o, _ in pairs]).astype(np.float64))  # [M, D]
    b = torch.from_numpy(np.stack([d.embedding for _, d in pairs]))  # [M, D]
    t = torch.tensor([d.area / (o.evidence_weight + d.area) if o.evidence_weight + d.area > 0 else 0.5
                      for o, d in pairs], dtype=torch.float64)
    emb = slerp(a, b, t).numpy()  # [M, D]
    out = []
    for k, (o, d) in enumerate(pairs):
        size = max(o.voxel_size, d.voxel_size)
        vs = merge_voxels(voxels_of(o), d.voxels, size)  # re-grids both onto ``size``
        vs, size = fit_budget(vs, size, point_budget(o.is_thing, config))
        evidence = dict(o.class_evidence)
        evidence[d.label] = evidence.get(d.label, 0.0) + d.score * d.area
        out.append(make_map_object(
            id=o.id, is_thing=o.is_thing, voxels=vs, voxel_size=size, embedding=emb[k], class_evidence=evidence,
            evidence_weight=o.evidence_weight + d.area, observations=o.observations + 1,
            first_seen=min(o.first_seen, stamp), last_seen=max(o.last_seen, stamp), misses=0, label=o.label))
    return out


def merge_objects(survivor: MapObject, absorbed: MapObject, config: MapConfig) -> MapObject:
    """``absorbed`` folded into ``survivor`` (which keeps its id and, on evidence ties, its label)."""
    size = max(survivor.voxel_size, absorbed.voxel_size)
    vs = merge_voxels(voxels_of(survivor), voxels_of(absorbed), size)
    vs, size = fit_budget(vs, size, point_budget(survivor.is_thing, config))
    emb, _ = weighted_slerp_pool(
        torch.from_numpy(np.stack([survivor.embedding, absorbed.embedding]).astype(np.float64)),
        torch.tensor([survivor.evidence_weight, absorbed.evidence_weight], dtype=torch.float64))
    evidence = dict(survivor.class_evidence)
    for k, v in absorbed.class_evidence.items():
        evidence[k] = evidence.get(k, 0.0) + v
    return make_map_object(
        id=survivor.id, is_thing=survivor.is_thing, voxels=vs, voxel_size=size, embedding=emb.numpy(),
        class_evidence=evidence, evidence_weight=survivor.evidence_weight + absorbed.evidence_weight,
        observations=max(survivor.observations, absorbed.observations),
        first_seen=min(survivor.first_seen, absorbed.first_seen), last_seen=max(survivor.last_seen, absorbed.last_seen),
        misses=min(survivor.misses, absorbed.misses), label=survivor.label)


def merge_overlapping(objects: dict[int, MapObject], touched: set[int], config: MapConfig,
                      cache: KeyCache) -> dict[int, int]:
    """Merge same-label things of ``objects`` (changed in place) that overlap by ``merge_overlap`` or more, at
    least one of them in ``touched``, until no such pair is left. The older one survives (earlier
    ``first_seen``, then smaller id). Returns ``{absorbed id: surviving id}`` (chains resolved)."""
    merged: dict[int, int] = {}
    touched = set(touched)
    while touched:
        things = [o for o in objects.values() if o.is_thing]
        next_touched: set[int] = set()
        for a, b, _ in merge_pairs(things, touched, config, cache):
            if a not in objects or b not in objects or a in next_touched or b in next_touched:
                continue  # already merged this round: its overlaps are checked again in the next round
            oa, ob = objects[a], objects[b]
            survivor, absorbed = (oa, ob) if (oa.first_seen, oa.id) <= (ob.first_seen, ob.id) else (ob, oa)
            objects[survivor.id] = merge_objects(survivor, absorbed, config)
            del objects[absorbed.id]
            merged[absorbed.id] = survivor.id
            next_touched.add(survivor.id)
        touched = next_touched
    for k in merged:  # a → b → c: report the final survivor
        while merged[k] in merged:
            merged[k] = merged[merged[k]]
    return merged


def refit(obj: MapObject, config: MapConfig) -> MapObject:
    """``obj`` within the current budget and on a grid no finer than the configured one (after a config change)."""
    size = max(obj.voxel_size, base_voxel_size(obj.is_thing, config))
    budget = point_budget(obj.is_thing, config)
    if size == obj.voxel_size and obj.point_count <= budget:
        return obj
    vs, size = fit_budget(_regrid(voxels_of(obj), size), size, budget)
    return make_map_object(id=obj.id, is_thing=obj.is_thing, voxels=vs, voxel_size=size, embedding=obj.embedding,
                           class_evidence=obj.class_evidence, evidence_weight=obj.evidence_weight,
                           observations=obj.observations, first_seen=obj.first_seen, last_seen=obj.last_seen,
                           misses=obj.misses, label=obj.label)


def _regrid(vs: VoxelSet, size: float) -> VoxelSet:
    """``vs`` on the grid of edge ``size`` (weighted means of the voxels falling together)."""
    return voxelize(vs.points, vs.colors, vs.weights, size)
