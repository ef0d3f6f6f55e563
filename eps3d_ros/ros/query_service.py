"""``~/query_objects``: a :class:`~eps3d_ros.pipeline.map_query.QueryAnswer` as a ``QueryObjects.Response``.

The rules (refusals, the target frame, the ranking) are the core's, :func:`~eps3d_ros.pipeline.map_query.answer_query`;
:mod:`.map_services` serves this from a thread of its own (:mod:`.service_thread`), so a query never waits for
the node's executor.
"""

from __future__ import annotations

from ..panoptic.clouds import map_object_cloud
from ..pipeline.map_query import answer_query
from .messages import object_message, point_cloud, seconds_to_stamp


def answer(session, request, response, object_type, frame_lookup, stamp_header):
    """Fill ``response`` from ``session``'s map and return it. ``frame_lookup(target, source, stamp) -> [4, 4] |
    None``; ``stamp_header(frame_id, stamp) -> Header``."""
    a = answer_query(session, request.text, int(request.max_results), float(request.min_score), request.target_frame,
                     frame_lookup, float(request.min_relevance))
    response.success, response.message = a.success, a.message
    if not a.success:
        return response
    response.no_match = a.no_match
    response.min_relevance = float(a.min_relevance)
    response.scale_known = a.scale_known
    response.scene_stamp = seconds_to_stamp(a.stamp)
    response.header = stamp_header(a.frame_id, a.stamp)
    response.objects = [object_message(mt.object, object_type) for mt in a.matches]
    response.scores = [float(mt.score) for mt in a.matches]
    response.relevances = [float(mt.relevance) for mt in a.matches]
    if request.return_clouds:
        vocabulary = session.map.vocabulary
        response.clouds = [point_cloud(map_object_cloud(mt.object, vocabulary), response.header) for mt in a.matches]
    return response
