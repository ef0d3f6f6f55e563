"""How good is the object map over a sequence? Recall, duplicates, id switches, centroid error, memory, time.

A sequence (:func:`eps3d_ros.data.synthetic.generate_sequence`) is fed frame by frame to a
:class:`~eps3d_ros.pipeline.session.Session`; after every fused window the map is compared with the ground
truth. Definitions (all distances in metres, map frame = world frame):

* **targets**: the things that some frame fed so far shows over at least ``min_pixels`` pixels (a size a
  window can detect; tiny glimpses are not targets) and that are still in the world, each at the centroid
  of its surface seen so far
  (:meth:`~eps3d_ros.data.sequence.SyntheticSequence.seen_surface_centroid`) — what a map of those
  frames can know;
* **recall**: a target is found when a map thing of its class lies within ``match_radius`` of it;
* **duplicates**: map things of the target's class within ``match_radius`` of it, and nearer to it than to
  any other target, beyond the first; averaged per target;
* **id switches** (as in tracking metrics): after each window every found target is matched to its
  nearest same-class map thing; a target matched to another id than the last time it was matched counts
  one switch;
* **centroid error**: distance from each found target to its matched map thing (final map);
* **memory**: the map's points and bytes (``ObjectMap.stats``) after each pass over the sequence;
* **time**: per window, the panoptic stage and the fusion (seconds), and their ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MemoryEvalConfig", "WindowRecord", "evaluate_sequence", "targets", "match_map"]


@dataclass
class MemoryEvalConfig:
    loops: int = 1  # passes over the sequence (memory must stop growing after the first)
    match_radius: float = 0.25
    min_pixels: int = 100  # a thing counts once one frame shows it over this many pixels
    wait_s: float = 600.0  # per window, at most


@dataclass
class WindowRecord:
    frame: int  # frames fed when the window was fused (over all loops)
    stamp: float
    objects: int
    points: int
    bytes: int
    panoptic_s: float
    fusion_s: float
    recall: float
    duplicates: float


@dataclass
class _Tracker:
    last_id: dict[int, int] = field(default_factory=dict)  # target instance id -> map id last matched
    switches: int = 0
    switched: list[tuple[int, int, int]] = field(default_factory=list)  # (instance id, old map id, new map id)


def targets(sequence: Any, frames_fed: int, min_pixels: int) -> dict[int, tuple[str, np.ndarray]]:
    """``{instance id: (class name, seen-surface centroid)}`` of the things seen so far and still in the world."""
    T = sequence.num_frames
    upto = min(frames_fed, T)  # after the first pass every frame has been seen
    last = (frames_fed - 1) % T
    seen = sequence.pixel_counts[:upto].max(0)
    out = {}
    for o in sequence.objects:
        i = o.instance_id
        if seen[i] >= min_pixels and sequence.exists(i, last if frames_fed <= T else T - 1):
            frames = np.arange(upto)[sequence.pixel_counts[:upto, i] > 0]
            out[i] = (o.class_name, sequence.seen_surface_centroid(i, frames))
    return out


def match_map(objects: list[Any], truth: dict[int, tuple[str, np.ndarray]], radius: float
              ) -> tuple[dict[int, Any], dict[int, int]]:
    """``(nearest same-class map thing within radius per target, duplicates per target)``."""
    things = [o for o in objects if o.is_thing]
    if not things or not truth:
        return {}, {i: 0 for i in truth}
    centres = np.stack([o.centroid for o in things])
    ids = list(truth)
    target_xyz = np.stack([truth[i][1] for i in ids])
    d = np.linalg.norm(centres[:, None] - target_xyz[None], axis=-1)  # [things, targets]
    nearest_target = d.argmin(1)
    found, dupes = {}, {}
    for j, i in enumerate(ids):
        cls = truth[i][0]
        same = [k for k, o in enumerate(things) if o.label == cls and d[k, j] <= radius]
        if same:
            found[i] = things[min(same, key=lambda k: d[k, j])]
        own = [k for k in same if nearest_target[k] == j]
        dupes[i] = max(0, len(own) - 1)
    return found, dupes


def evaluate_sequence(session: Any, sequence: Any, config: MemoryEvalConfig | None = None,
                      frames: Any = None, on_window: Callable[[WindowRecord], None] | None = None) -> dict[str, Any]:
    """Feed ``sequence`` (``config.loops`` times; or the given ``frames``) to ``session`` and measure its map.

    The session must be fresh (empty map) and configured for the sequence (windows every N frames)."""
    cfg = config or MemoryEvalConfig()
    frames = list(frames if frames is not None else sequence.frames(loops=cfg.loops))
    tracker = _Tracker()
    records: list[WindowRecord] = []
    pass_memory: list[dict[str, int]] = []
    T = sequence.num_frames
    windows_done = 0
    t_start = time.perf_counter()
    for n, frame in enumerate(frames, start=1):
        session.offer(frame)
        if not session.wait_idle(cfg.wait_s):
            raise TimeoutError(f"a window did not finish in {cfg.wait_s} s")
        runs = session.stats()["windows"]
        if runs > windows_done:
            windows_done = runs
            records.append(_record(session, sequence, n, cfg, tracker))
            if on_window is not None:
                on_window(records[-1])
        if n % T == 0:
            st = session.map.stats()
            pass_memory.append({"points": int(st["points"]), "bytes": int(st["bytes"]), "objects": int(st["objects"])})
    final = targets(sequence, len(frames), cfg.min_pixels)
    found, dupes = match_map(session.map.objects, final, cfg.match_radius)
    errors = [float(np.linalg.norm(found[i].centroid - final[i][1])) for i in found]
    fusion = [r.fusion_s for r in records]
    panoptic = [r.panoptic_s for r in records]
    first = pass_memory[0] if pass_memory else None
    return {
        "frames": len(frames), "windows": len(records), "targets": len(final), "found": len(found),
        "recall": len(found) / max(len(final), 1),
        "duplicates_per_object": float(np.mean(list(dupes.values()))) if dupes else 0.0,
        "id_switches": tracker.switches, "switched": tracker.switched,
        "centroid_error_median_m": statistics.median(errors) if errors else float("nan"),
        "centroid_error_p90_m": float(np.percentile(errors, 90)) if errors else float("nan"),
        "missed": sorted(f"{final[i][0]}#{i}" for i in final if i not in found),
        "memory_per_pass": pass_memory,
        "memory_growth_last_vs_first": (pass_memory[-1]["bytes"] / first["bytes"] - 1.0) if first and first["bytes"]
        else 0.0,
        "fusion_s_median": statistics.median(fusion) if fusion else float("nan"),
        "panoptic_s_median": statistics.median(panoptic) if panoptic else float("nan"),
        "fusion_over_panoptic_median": statistics.median([f / p for f, p in zip(fusion, panoptic) if p > 0])
        if fusion else float("nan"),
        "map_objects": len(session.map.objects), "wall_s": time.perf_counter() - t_start,
        "per_window": [r.__dict__ for r in records],
    }


def _record(session: Any, sequence: Any, frames_fed: int, cfg: MemoryEvalConfig, tracker: _Tracker) -> WindowRecord:
    snap = session.snapshot
    truth = targets(sequence, frames_fed, cfg.min_pixels)
    objects = session.map.objects
    found, dupes = match_map(objects, truth, cfg.match_radius)
    for i, o in found.items():
        old = tracker.last_id.get(i)
        if old is not None and old != o.id:
            tracker.switches += 1
            tracker.switched.append((i, old, o.id))
        tracker.last_id[i] = o.id
    st = session.map.stats()
    stats = session.stats()
    return WindowRecord(frame=frames_fed, stamp=float(snap.stamp) if snap is not None else float("nan"),
                        objects=len(objects), points=int(st["points"]), bytes=int(st["bytes"]),
                        panoptic_s=float(snap.timings.get("panoptic", float("nan"))) if snap is not None else 0.0,
                        fusion_s=float(stats["last_fusion_s"]), recall=len(found) / max(len(truth), 1),
                        duplicates=float(np.mean(list(dupes.values()))) if dupes else 0.0)
