"""What commands print: stage timings, a reconstruction's notes, tables of objects and query answers."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Timer", "print_notes", "units", "objects_table", "map_table", "matches_table", "match_dict", "file_size"]


class Timer:
    """Stage timings in seconds, in the order measured."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._t0 = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t0

    def add(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + float(seconds)

    def total(self) -> float:
        return time.perf_counter() - self._t0

    def report(self) -> str:
        rows = [f"  {k:<18} {v:8.2f} s" for k, v in self.stages.items()]
        rows.append(f"  {'total (wall)':<18} {self.total():8.2f} s")
        return "\n".join(rows)


def print_notes(snapshot: Any) -> None:
    """A reconstruction's notes; an alignment that fell back (TF or depth disagreeing with the images) first, as
    a warning."""
    warning = snapshot.alignment.warning
    if warning:
        print(f"  WARNING: {warning}")
    for note in snapshot.notes:
        if note != warning:
            print(f"  note: {note}")


def units(scale_known: bool) -> str:
    return "m" if scale_known else "scene units, scale unknown"


def objects_table(scene: Any, scale_known: bool, limit: int | None = None,
                  seen: dict[int, int] | None = None) -> str:
    """A scene's objects: id, label, kind, score, (windows seen, for a map file's ``seen``), points, centroid, box."""
    objs = list(scene.objects)[:limit] if limit else list(scene.objects)
    if not objs:
        return "  (no objects)"
    head_seen = f" {'seen':>4}" if seen is not None else ""
    lines = [f"  {'id':>3}  {'label':<14} {'kind':<5} {'score':>5}{head_seen} {'points':>7}  {'centroid (x, y, z)':<26} "
             f"size [{units(scale_known).split(',')[0]}]"]
    for o in objs:
        c = ", ".join(f"{v:+.2f}" for v in o.centroid)
        e = " x ".join(f"{v:.2f}" for v in sorted(o.obb.extent, reverse=True))
        n_seen = f" {seen.get(o.id, 0):>4}" if seen is not None else ""
        lines.append(f"  {o.id:>3}  {o.label[:14]:<14} {'thing' if o.is_thing else 'stuff':<5} {o.score:>5.2f}{n_seen} "
                     f"{o.num_points:>7}  ({c}){'':<{max(0, 24 - len(c))}} {e}")
    if limit and len(scene.objects) > limit:
        lines.append(f"  ... {len(scene.objects) - limit} more")
    return "\n".join(lines)


def map_table(objects: Sequence[Any], scale_known: bool, limit: int | None = None) -> str:
    """The objects of a map: id, label, kind, score, windows seen, points, centroid, box size."""
    objs = list(objects)[:limit] if limit else list(objects)
    if not objs:
        return "  (no objects)"
    lines = [f"  {'id':>3}  {'label':<14} {'kind':<5} {'score':>5} {'seen':>4} {'points':>7}  "
             f"{'centroid (x, y, z)':<26} size [{units(scale_known).split(',')[0]}]"]
    for o in objs:
        c = ", ".join(f"{v:+.2f}" for v in o.centroid)
        e = " x ".join(f"{v:.2f}" for v in sorted(o.obb.extent, reverse=True))
        lines.append(f"  {o.id:>3}  {o.label[:14]:<14} {'thing' if o.is_thing else 'stuff':<5} {o.score:>5.2f} "
                     f"{o.observations:>4} {o.point_count:>7}  ({c}){'':<{max(0, 24 - len(c))}} {e}")
    if limit and len(objects) > limit:
        lines.append(f"  ... {len(objects) - limit} more")
    return "\n".join(lines)


def matches_table(matches: Sequence[Any]) -> str:
    if not matches:
        return "  (no match)"
    lines = [f"  {'rank':>4} {'score':>6} {'relev.':>6} {'cosine':>7}  {'id':>3}  {'label':<14} centroid (x, y, z)"]
    for i, m in enumerate(matches, 1):
        c = ", ".join(f"{v:+.3f}" for v in m.object.centroid)
        lines.append(f"  {i:>4} {m.score:>6.3f} {m.relevance:>6.3f} {m.similarity:>7.3f}  {m.object.id:>3}  "
                     f"{m.object.label[:14]:<14} ({c})")
    return "\n".join(lines)


def match_dict(m: Any) -> dict[str, Any]:
    o = m.object
    return {"id": int(o.id), "label": o.label, "is_thing": bool(o.is_thing), "score": round(float(m.score), 6),
            "relevance": round(float(m.relevance), 6), "cosine": round(float(m.similarity), 6),
            "class_score": round(float(o.score), 6),
            "centroid": [round(float(v), 6) for v in o.centroid],
            "obb_center": [round(float(v), 6) for v in o.obb.center],
            "obb_extent": [round(float(v), 6) for v in o.obb.extent],
            "aabb_min": [round(float(v), 6) for v in o.aabb_min], "aabb_max": [round(float(v), 6) for v in o.aabb_max],
            "num_points": int(o.num_points)}


def file_size(path: str | Path) -> str:
    n = Path(path).stat().st_size
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
