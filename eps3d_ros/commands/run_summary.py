"""What ``eps3d run`` says it kept: every window's outcome with its reason, and the file's objects as written.

A window is *fused* (metric, in the map frame, merged into the map), *left in the camera frame* (its alignment
was not trusted or impossible while the map is in the map frame: it is not in the file), or *the latest only*
(nothing could be fused: without poses the file holds the last window). The counts, the reasons and the
object table come from the session's updates and from the file read back, so the summary and ``--json`` say
exactly what ``eps3d query`` will read.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = ["WindowOutcome", "WindowLog", "outcome_counts", "file_objects", "reasons_text"]

FUSED, CAMERA_FRAME, LATEST_ONLY = "fused", "camera_frame", "latest_only"


@dataclass(frozen=True)
class WindowOutcome:
    index: int  # 1-based, in the order the windows ran
    stamps: tuple[float, ...]  # the frames' stamps (s)
    outcome: str  # FUSED | CAMERA_FRAME | LATEST_ONLY
    frame_id: str  # the frame the window was reconstructed in
    alignment: str  # tf | depth | tf+depth | none
    reason: str  # why it was not fused ("" when it was)


class WindowLog:
    """The session listener of a run: one :class:`WindowOutcome` per reconstructed window."""

    def __init__(self) -> None:
        self.outcomes: list[WindowOutcome] = []
        self.snapshots: list[Any] = []

    def __call__(self, update: Any) -> None:
        if update.kind != "window" or update.snapshot is None or update.map_update is None:
            return
        snap, mu = update.snapshot, update.map_update
        self.snapshots.append(snap)
        if mu.metric and mu.fused:
            outcome, reason = FUSED, ""
        else:
            why = snap.alignment.warning or next((n for n in reversed(snap.alignment.notes)), "") or \
                f"the window is in '{snap.frame_id}', not the map frame"
            outcome, reason = (CAMERA_FRAME, why) if mu.fused else (LATEST_ONLY, why)
        self.outcomes.append(WindowOutcome(len(self.outcomes) + 1, tuple(snap.window_stamps), outcome,
                                           snap.frame_id, snap.alignment.method, reason))


def outcome_counts(outcomes: list[WindowOutcome], file_is_map: bool) -> dict[str, int]:
    """Windows reconstructed / fused / left in the camera frame / latest-only, and how many the file holds."""
    c = Counter(o.outcome for o in outcomes)
    in_file = c[FUSED] if file_is_map and c[FUSED] else min(1, len(outcomes))
    return {"reconstructed": len(outcomes), "fused": c[FUSED], "camera_frame": c[CAMERA_FRAME],
            "latest_only": c[LATEST_ONLY], "in_file": in_file}


def reasons_text(outcomes: list[WindowOutcome]) -> list[str]:
    """One line per kind of reason a window was not fused: how many windows, which, and why (reasons that differ
    only in their figures are one kind; the first window's figures are shown)."""
    by_reason: dict[tuple[str, str], list[int]] = {}
    first: dict[tuple[str, str], str] = {}
    for o in outcomes:
        if o.outcome != FUSED:
            key = (o.outcome, re.sub(r"\d+(\.\d+)?", "#", o.reason))
            by_reason.setdefault(key, []).append(o.index)
            first.setdefault(key, o.reason)
    lines = []
    for (outcome, kind), idx in by_reason.items():
        reason = first[(outcome, kind)]
        what = "left in the camera frame (not in the file)" if outcome == CAMERA_FRAME else "not fused"
        which = ", ".join(map(str, idx[:12])) + (" ..." if len(idx) > 12 else "")
        lines.append(f"{len(idx)} window(s) {what} (#{which}): {reason}")
    return lines


def file_objects(scene_file: Any) -> list[dict[str, Any]]:
    """The objects of a written scene or map file, as ``eps3d query`` reads them (ids, labels, points, centroid,
    box; ``observations`` for a map file)."""
    state = scene_file.info.get("map") if isinstance(scene_file.info, dict) else None
    seen = {int(e["id"]): int(e["observations"]) for e in (state or {}).get("objects", [])}
    out = []
    for o in scene_file.scene.objects:
        row = {"id": int(o.id), "label": o.label, "is_thing": bool(o.is_thing), "score": round(float(o.score), 6),
               "num_points": int(o.num_points), "centroid": [round(float(v), 6) for v in o.centroid],
               "obb_extent": [round(float(v), 6) for v in o.obb.extent]}
        if o.id in seen:
            row["observations"] = seen[o.id]
        out.append(row)
    return out
