"""A text query on a session's object map, answered in the frame the client asks for: the rules of
``~/query_objects`` (and of anything else that asks the map), without ROS.

The answer comes from the map's published state (immutable objects, no lock shared with inference), so it
never waits for a window to finish. Every refusal is ``success=False`` with a message that names the problem;
the text is echoed with control characters escaped. A text that no object matches (no calibrated relevance
reaches ``min_relevance``, see :mod:`eps3d_ros.panoptic.relevance`) is a successful answer with ``no_match``
set and the message "no object matches '...'" naming the closest object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..geometry.similarity import Sim3
from ..mapping import MapMatch
from ..mapping.map_object import moved_object
from ..panoptic.relevance import no_match_message

__all__ = ["MAX_QUERY_CHARS", "QueryAnswer", "answer_query", "printable"]

MAX_QUERY_CHARS = 1000  # CLIP reads 77 tokens; anything this long is a client bug, not a description

# target frame, source frame, stamp -> [4, 4] mapping source points to the target, or None when unknown
FrameLookup = Callable[[str, str, float], np.ndarray | None]


@dataclass(frozen=True)
class QueryAnswer:
    success: bool
    message: str
    frame_id: str = ""  # the frame the objects are in: the target frame asked for, else the map's
    stamp: float = float("nan")  # the map's stamp (s)
    scale_known: bool = False
    matches: tuple[MapMatch, ...] = ()  # best first; objects moved into ``frame_id``
    no_match: bool = False  # answered, and no object matches the text
    min_relevance: float = float("nan")  # the relevance threshold applied
    closest: MapMatch | None = None  # the object of highest relevance, matched or not (in ``frame_id``)


def printable(text: str, limit: int = 200) -> str:
    """``text`` safe to echo in a log or a message: control characters escaped, cut to ``limit`` characters."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[:limit] + "..."


def answer_query(session: Any, text: str, max_results: int = 5, min_score: float = 0.0, target_frame: str = "",
                 frame_lookup: FrameLookup | None = None, min_relevance: float | None = None) -> QueryAnswer:
    """Rank ``session``'s map objects for ``text``; ``max_results`` 0 = every object. ``target_frame`` (empty: the
    map's frame) is reached through ``frame_lookup``. ``min_relevance`` None or negative: the session's
    ``panoptic.min_relevance``; 0 answers the ranking of every object."""
    text = text.strip()
    m = session.map
    if not m.objects:
        return QueryAnswer(False, "no scene yet: the map is empty (send frames or call ~/reconstruct; after ~/reset "
                                  "the map starts again)")
    if not text:
        return QueryAnswer(False, "empty query text: give an object description such as 'red mug'")
    if len(text) > MAX_QUERY_CHARS:
        return QueryAnswer(False, f"query text too long ({len(text)} characters, at most {MAX_QUERY_CHARS})")
    if not 0.0 <= min_score <= 1.0:
        return QueryAnswer(False, f"min_score must be in [0, 1], got {float(min_score):g}")
    if min_relevance is None or min_relevance < 0:
        min_relevance = session.config.panoptic.relevance_threshold
    if not min_relevance <= 1.0:
        return QueryAnswer(False, f"min_relevance must be in [0, 1] (or negative: the node's panoptic.min_relevance), "
                                  f"got {float(min_relevance):g}")
    frame_id, stamp = m.frame_id, m.stamp
    target = target_frame.strip().lstrip("/") or frame_id
    move = Sim3.identity()
    if target != frame_id:
        T = frame_lookup(target, frame_id, stamp) if frame_lookup is not None else None
        if T is None:
            return QueryAnswer(False, f"no transform from '{frame_id}' to '{printable(target)}' at the map stamp")
        try:
            move = Sim3.from_matrix(T)
        except ValueError as e:
            return QueryAnswer(False, f"the transform from '{frame_id}' to '{printable(target)}' is unusable: {e}")
    try:  # every object ranked, so that the closest one can be named when none matches
        ranked = session.query(text, max_results=max(1, len(m.objects)), min_score=float(min_score), min_relevance=0.0)
    except ValueError as e:
        return QueryAnswer(False, str(e))
    limit = int(max_results) or max(1, len(ranked))  # 0 = no limit (QueryObjects.srv)
    matches = [mt for mt in ranked if mt.relevance >= min_relevance][:limit]
    closest = max(ranked, key=lambda mt: mt.relevance, default=None)
    scale_known = bool(session.scale_known)
    note = "" if scale_known else " (scale unknown: camera optical frame, arbitrary units)"
    moved = tuple(replace(mt, object=moved_object(mt.object, move)) for mt in matches)
    closest = None if closest is None else replace(closest, object=moved_object(closest.object, move))
    if not matches:
        return QueryAnswer(True, no_match_message(printable(text), min_relevance, closest) + note, target, stamp,
                           scale_known, (), True, min_relevance, closest)
    return QueryAnswer(True, f"{len(matches)} object(s) for '{printable(text)}'{note}", target, stamp, scale_known,
                       moved, False, min_relevance, closest)
