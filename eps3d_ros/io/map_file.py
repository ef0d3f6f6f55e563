"""The map file: a scene file (:mod:`eps3d_ros.io.scene_file`) of ``map.to_scene()`` plus the map's own state.

So ``load_scene`` (and ``eps3d query/export/render``) read a map file as a scene. The map's state:

* ``info["map"]`` (JSON): ``format`` "eps3d_map", ``version`` 1, ``map_frame``, ``frame_id``, ``fused``,
  ``next_id``, ``windows``, ``stamp``, ``logit_scale``, ``config`` (the MapConfig), and per object (in
  the scene's object order) ``id``, ``observations``, ``misses``, ``first_seen``, ``last_seen``,
  ``voxel_size``, ``evidence_weight``, ``class_evidence``;
* ``extra/map_point_weights`` ``[N]`` float32: the observed points averaged into each map point.

Points, colours, embeddings, labels and ids are the scene's own (``means``, ``colors``, object
embeddings, object labels and ids), so they round-trip bit for bit; numbers in JSON round-trip exactly.
The cameras are the latest window's. Loading a scene file that is not a map file is an error that says so.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from .scene_file import SceneFile, SceneFileError, load_scene, save_scene
from ..mapping.config import MapConfig
from ..mapping.map_object import make_map_object
from ..mapping.object_map import ObjectMap
from ..mapping.voxels import VoxelSet

log = logging.getLogger(__name__)

MAP_FORMAT = "eps3d_map"
MAP_VERSION = 1


def is_map_header(header: dict[str, Any]) -> bool:
    """Is this scene file header (:func:`~eps3d_ros.io.scene_file.read_scene_header`) a map file's?"""
    state = (header.get("info") or {}).get("map")
    return isinstance(state, dict) and state.get("format") == MAP_FORMAT


def save_map(path: str | Path, m: ObjectMap, info: dict[str, Any] | None = None, replace: str = "map") -> Path:
    """Write ``m`` to ``path`` (atomically, as every scene file); ``info``: more JSON for the file's ``info``
    (what the map was built from: source, topics, model ...). An existing file is replaced only when it is a
    map file (``replace="map"``, the node's services) or any eps3d scene file (``"scene"``, ``eps3d run``)."""
    if replace not in ("map", "scene"):
        raise ValueError(f"replace must be 'map' or 'scene', got {replace!r}")
    with m._lock:  # one consistent state: no window is fused while it is written
        scene = m.to_scene()
        objs = m.objects
        state = {
            "format": MAP_FORMAT, "version": MAP_VERSION, "map_frame": m.map_frame, "frame_id": m.frame_id,
            "fused": m.fused, "next_id": m.next_id, "windows": m.stats()["windows"],
            "stamp": None if math.isnan(m.stamp) else m.stamp, "logit_scale": m.logit_scale,
            # the map's own rules only (a node's settings may add more fields, e.g. the map directory)
            "config": {f.name: getattr(m.config, f.name) for f in dataclasses.fields(MapConfig)},
            "objects": [{"id": o.id, "observations": o.observations, "misses": o.misses, "first_seen": o.first_seen,
                         "last_seen": o.last_seen, "voxel_size": o.voxel_size, "evidence_weight": o.evidence_weight,
                         "class_evidence": dict(o.class_evidence)} for o in objs],
        }
        weights = np.concatenate([o.point_weights for o in objs]).astype(np.float32) if objs \
            else np.zeros(0, np.float32)
        encoder_config = getattr(m.text_encoder, "config", None)
        sf = SceneFile(scene=scene, cameras=m.cameras, frame_id=m.frame_id, scale_known=m.fused,
                       stamp=m.stamp, text_encoder=encoder_config,
                       info={"source": "object map", **(info or {}), "map": state},
                       extra={"map_point_weights": weights})
    return save_scene(path, sf, is_map_header if replace == "map" else None)


def load_map(path: str | Path, config: MapConfig | None = None, text_encoder: Any = None) -> ObjectMap:
    """Read a map file. ``config``: the configuration to continue with (default: the one saved; a given one's
    point budgets and voxel sizes apply to the loaded objects at once, as :meth:`ObjectMap.set_config`);
    ``text_encoder``: as :func:`~eps3d_ros.io.scene_file.load_scene` (None: queries need one passed)."""
    sf = load_scene(path, text_encoder=text_encoder)
    state = sf.info.get("map")
    if not isinstance(state, dict) or state.get("format") != MAP_FORMAT:
        raise SceneFileError(f"{path} is a scene file but not a map file (no object-map state): read it with "
                             "load_scene, or write a map with save_map / ~/save_map")
    if int(state.get("version", -1)) != MAP_VERSION:
        raise SceneFileError(f"{path}: map state of version {state.get('version')}; this eps3d_ros reads "
                             f"version {MAP_VERSION}")
    scene = sf.scene
    entries = state.get("objects") or []
    if len(entries) != len(scene.objects):
        raise SceneFileError(f"{path}: corrupt map file: {len(entries)} map entries for {len(scene.objects)} objects")
    weights = sf.extra.get("map_point_weights")
    if weights is None or weights.shape != (scene.num_gaussians,):
        raise SceneFileError(f"{path}: corrupt map file: extra/map_point_weights missing or not one per point")
    given = config
    if config is None:
        names = {f.name for f in dataclasses.fields(MapConfig)}
        saved = state.get("config") or {}
        unknown = sorted(set(saved) - names)
        if unknown:
            log.warning("map file: ignoring unknown map config fields %s", unknown)
        config = MapConfig(**{k: v for k, v in saved.items() if k in names})
    objects = []
    for so, e in zip(scene.objects, entries):
        if int(e["id"]) != so.id:
            raise SceneFileError(f"{path}: corrupt map file: map entry {e['id']} does not match scene object {so.id}")
        idx = so.indices
        vs = VoxelSet(scene.means[idx], scene.colors[idx], weights[idx])
        o = make_map_object(
            id=so.id, is_thing=so.is_thing, voxels=vs, voxel_size=float(e["voxel_size"]), embedding=so.embedding,
            class_evidence=e["class_evidence"], evidence_weight=float(e["evidence_weight"]),
            observations=int(e["observations"]), first_seen=float(e["first_seen"]), last_seen=float(e["last_seen"]),
            misses=int(e["misses"]), label=so.label)
        if o.label != so.label:
            raise SceneFileError(f"{path}: corrupt map file: object {so.id}'s label {so.label!r} is not the argmax "
                                 "of its class evidence")
        objects.append(o)
    m = ObjectMap(config, map_frame=str(state.get("map_frame") or "map"))
    stamp = state.get("stamp")
    m._restore(objects, next_id=int(state["next_id"]), windows=int(state.get("windows", 0)),
               frame_id=str(state.get("frame_id") or m.map_frame), fused=bool(state.get("fused", True)),
               stamp=math.nan if stamp is None else float(stamp), vocabulary=scene.vocabulary, stuff=scene.stuff,
               prototypes=scene.prototypes, text_encoder=scene.text_encoder, cameras=sf.cameras,
               logit_scale=float(state.get("logit_scale", 1 / 0.07)))
    if given is not None:
        m.set_config(given)  # its point budgets and voxel sizes apply to the loaded objects at once
    return m
