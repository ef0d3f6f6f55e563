"""Which found object is which true object: one line per true thing, for the demo and for judging a scene.

A true thing is matched to the nearest found thing *of the same class* whose centroid lies within
``max_distance`` of the true object's visible-surface centroid; pairs are taken nearest first and each found
object serves one true object at most (greedy, so two true chairs never share one found chair). A true
thing with no such partner is "missed"; found things left over are extras (duplicates or false finds).

``box_ratio``: the found object's axis-aligned box extents over those of the true visible surface, the
largest of the three ratios (1.0: no wider than the truth along any axis).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["TrueObject", "ObjectMatch", "true_objects", "match_objects"]


@dataclass(frozen=True)
class TrueObject:
    name: str  # e.g. "orange chair"
    label: str  # class name, as in the found objects' labels
    centroid: np.ndarray  # [3] of its visible surface, in the frame of the found objects
    extent: np.ndarray  # [3] axis-aligned size of its visible surface, same frame


@dataclass(frozen=True)
class ObjectMatch:
    truth: TrueObject
    found_id: int | None  # None: missed
    error: float  # centroid distance (frame units); NaN when missed
    box_ratio: float  # see the module; NaN when missed


def true_objects(scene, to_frame: np.ndarray | None = None, min_pixels: int = 30) -> list[TrueObject]:
    """The things of a synthetic ``scene`` (:class:`eps3d_ros.data.synthetic.SyntheticScene`) seen in at
    least ``min_pixels`` pixels over its views, in the frame given by ``to_frame`` ``[4, 4]`` (world → that
    frame; default the world frame)."""
    world = np.stack([scene.world_points(v) for v in range(scene.num_views)])
    T = np.eye(4) if to_frame is None else np.asarray(to_frame, dtype=np.float64)
    out = []
    for o in scene.objects:
        m = scene.instance == o.instance_id
        if int(m.sum()) < min_pixels:
            continue
        pts = world[m] @ T[:3, :3].T + T[:3, 3]
        name = f"{o.colour} {o.class_name}" if getattr(o, "colour", "") else o.class_name
        out.append(TrueObject(name, o.class_name, pts.mean(0), pts.max(0) - pts.min(0)))
    return out


def match_objects(found: Sequence, truth: Sequence[TrueObject], max_distance: float = 0.5) -> tuple[list[ObjectMatch], list[int]]:
    """``found``: scene objects (``id``, ``label``, ``is_thing``, ``centroid``, ``aabb_min/max``). Returns one
    :class:`ObjectMatch` per true object (in ``truth`` order) and the ids of found things matched to none."""
    if max_distance <= 0:
        raise ValueError(f"max_distance must be positive, got {max_distance}")
    things = [o for o in found if o.is_thing]
    pairs = []
    for i, t in enumerate(truth):
        for j, o in enumerate(things):
            if o.label == t.label:
                d = float(np.linalg.norm(np.asarray(o.centroid, dtype=np.float64) - t.centroid))
                if d <= max_distance:
                    pairs.append((d, i, j))
    taken_t: dict[int, tuple[int, float]] = {}
    taken_f: set[int] = set()
    for d, i, j in sorted(pairs):
        if i not in taken_t and j not in taken_f:
            taken_t[i] = (j, d)
            taken_f.add(j)
    matches = []
    for i, t in enumerate(truth):
        if i not in taken_t:
            matches.append(ObjectMatch(t, None, float("nan"), float("nan")))
            continue
        j, d = taken_t[i]
        o = things[j]
        size = np.asarray(o.aabb_max, dtype=np.float64) - np.asarray(o.aabb_min, dtype=np.float64)
        ratio = float(np.max(size / np.maximum(t.extent, 1e-3)))
        matches.append(ObjectMatch(t, int(o.id), d, ratio))
    extras = [int(o.id) for j, o in enumerate(things) if j not in taken_f]
    return matches, extras
