"""``~/query_objects``: rank the object map's objects for a text, optionally in another frame.

The answer comes from the map's published state (immutable objects, no lock shared with inference), so it
never waits for a window to finish; :mod:`.map_services` serves it from a thread of its own
(:mod:`.service_thread`), so it never waits for the node's executor either. Every refusal is
``success=false`` with a message that names the problem.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..panoptic.geometry import OrientedBox
from ..panoptic.clouds import map_object_cloud
from .messages import object_message, point_cloud, printable, seconds_to_stamp

MAX_QUERY_CHARS = 1000  # CLIP reads 77 tokens; anything this long is a client bug, not a description


def answer(session, request, response, object_type, frame_lookup, stamp_header):
    """Fill ``response`` (a ``QueryObjects.Response``) from ``session``'s map and return it.

    ``frame_lookup(target, source, stamp) -> [4, 4] | None`` maps points from ``source`` to ``target``.
    """
    text = request.text.strip()
    m = session.map
    if not m.objects:
        return _fail(response, "no scene yet: the map is empty (send frames or call ~/reconstruct; after ~/reset "
                               "the map starts again)")
    if not text:
        return _fail(response, "empty query text: give an object description such as 'red mug'")
    if len(text) > MAX_QUERY_CHARS:
        return _fail(response, f"query text too long ({len(text)} characters, at most {MAX_QUERY_CHARS})")
    if not 0.0 <= request.min_score <= 1.0:
        return _fail(response, f"min_score must be in [0, 1], got {float(request.min_score):g}")
    frame_id, stamp = m.frame_id, m.stamp
    target = request.target_frame.strip().lstrip("/") or frame_id
    transform = np.eye(4)
    if target != frame_id:
        transform = frame_lookup(target, frame_id, stamp)
        if transform is None:
            return _fail(response, f"no transform from '{frame_id}' to '{printable(target)}' at the map stamp")
    limit = int(request.max_results) or max(1, len(m.objects))  # 0 = no limit (QueryObjects.srv)
    try:
        matches = session.query(text, max_results=limit, min_score=float(request.min_score))
    except ValueError as e:
        return _fail(response, str(e))
    scale_known = session.scale_known
    response.success = True
    response.scale_known = bool(scale_known)
    response.scene_stamp = seconds_to_stamp(stamp)
    response.header = stamp_header(target, stamp)
    response.objects = [object_message(_moved(mt.object, transform), object_type) for mt in matches]
    response.scores = [float(mt.score) for mt in matches]
    if request.return_clouds:
        vocabulary = m.vocabulary
        response.clouds = [point_cloud(_moved_cloud(map_object_cloud(mt.object, vocabulary), transform),
                                       response.header) for mt in matches]
    note = "" if scale_known else " (scale unknown: camera optical frame, arbitrary units)"
    response.message = f"{len(matches)} object(s) for '{printable(text)}'{note}"
    return response


def _fail(response, message: str):
    response.success = False
    response.message = message
    return response


def _moved(obj, T: np.ndarray):
    """The object with its geometry mapped by the rigid (or similarity) transform ``T``."""
    if np.allclose(T, np.eye(4)):
        return obj
    A, t = T[:3, :3], T[:3, 3]
    s = float(np.cbrt(np.linalg.det(A)))
    R = A / s
    box = OrientedBox(center=A @ obj.obb.center + t, rotation=R @ obj.obb.rotation, extent=s * obj.obb.extent)
    corners = box.corners()
    return dataclasses.replace(obj, centroid=A @ obj.centroid + t, obb=box,
                               aabb_min=corners.min(0), aabb_max=corners.max(0))


def _moved_cloud(points: np.ndarray, T: np.ndarray) -> np.ndarray:
    if np.allclose(T, np.eye(4)):
        return points
    out = points.copy()
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    out["x"], out["y"], out["z"] = (xyz[:, i].astype(np.float32) for i in range(3))
    return out
