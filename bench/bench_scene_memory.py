"""Scene memory over synthetic sequences: recall, duplicates, id switches, centroid error, memory, fusion time.

    .venv/bin/python bench/bench_scene_memory.py [--seeds 0 1 2] [--frames 60] [--loops 3] [--demo] [--moved]
        [--cameras] [--out bench/results/scene_memory.json]

For each seed a robot-like sequence (``generate_sequence``) is fed frame by frame to a ``Session`` (windows of 4
frames, every 4 frames) and the map is scored after every window (``eps3d_ros.eval.scene_memory``):

* ``oracle``: the ground-truth reconstructor (``OracleReconstructor``: true depth, poses, labels, instances
  through the real ``build_scene``) — the memory measured apart from the model;
* ``demo`` (``--demo``): the shipped demo model with measured depth and poses (``pipeline.use_measured_depth``);
* ``moved`` (``--moved``): a thing is taken away between two passes; the windows until it leaves the map are
  counted from the first window that sees its place again, and a thing a partial second pass does not look at
  must still be there.
* ``cameras`` (``--cameras``): a robot with a head camera (112x112, 1.2-2 m from the tables) and a wrist camera
  (84x112, 0.3-0.6 m from the things it looks at; ``eps3d_ros.data.camera_rig``), the oracle with the head alone
  and with both cameras in one stream (windows of 4 views: 2 + 2): recall, id switches, duplicates and the median
  centroid error, each against its own targets (the surface its frames saw) and, on the head's targets, against
  the objects' true centres (box centres).

Also: query latency on the final map (p50 / p95 over 200 queries of new texts). The machine's load is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eps3d_ros.data.camera_rig import generate_rig_sequence  # noqa: E402
from eps3d_ros.data.synthetic import generate_sequence, with_objects_removed  # noqa: E402
from eps3d_ros.eval.scene_memory import MemoryEvalConfig, evaluate_sequence, match_map, targets  # noqa: E402
from eps3d_ros.eval.oracle import OracleReconstructor  # noqa: E402
from eps3d_ros.pipeline.session import Session  # noqa: E402


def window_config(cfg):
    p = cfg.pipeline
    p.window_size = p.every_n_frames = 4
    p.keyframe_min_interval = p.keyframe_min_translation = p.keyframe_min_rotation = 0.0
    return cfg


def oracle_session(seq, stride: int, size: tuple[int, int] | None = None) -> Session:
    cfg = window_config(OracleReconstructor.default_config())
    cfg.pipeline.image_height, cfg.pipeline.image_width = size or (seq.height, seq.width)
    if hasattr(seq, "cameras"):
        cfg.input.cameras = list(seq.cameras)
    return Session(cfg, OracleReconstructor(seq, cfg, pixel_stride=stride))


def two_cameras(seed: int, frames: int, stride: int, min_pixels: int) -> dict:
    """The head alone, then head + wrist, through the oracle: each map scored on its own targets, and both on the
    head's targets against the objects' true centres."""
    rig = generate_rig_sequence(seed, num_frames=frames)
    head = rig.cameras["head"]
    truth = {i: (cls, head.object(i).centroid) for i, (cls, _) in targets(head, head.num_frames, min_pixels).items()}
    out = {"seed": seed}
    for name, seq, fed in (("head", head, list(rig.camera_frames("head"))), ("head+wrist", rig, list(rig.frames()))):
        s = oracle_session(seq, stride, size=(112, 112))
        try:
            r = evaluate_sequence(s, seq, MemoryEvalConfig(min_pixels=min_pixels), frames=fed)
            found, _ = match_map(s.map.objects, truth, 0.25)
            true_err = [float(np.linalg.norm(o.centroid - truth[i][1])) for i, o in found.items()]
        finally:
            s.close()
        out[name] = {k: r[k] for k in ("frames", "windows", "targets", "recall", "duplicates_per_object",
                                       "id_switches", "centroid_error_median_m", "missed")}
        out[name].update(head_targets_found=len(found), head_targets=len(truth),
                         head_targets_true_centre_error_median_m=statistics.median(true_err) if true_err else None,
                         wall_s=round(r["wall_s"], 1))
    return out


def demo_session() -> Session:
    return Session.from_model_dir(ROOT / "models" / "demo_tiny", pipeline={
        "window_size": 4, "every_n_frames": 4, "keyframe_min_interval": 0.0, "keyframe_min_translation": 0.0,
        "keyframe_min_rotation": 0.0, "use_measured_depth": True})


def query_latency(session: Session, n: int = 200) -> dict:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        session.query(f"object number {i}", max_results=5)
        times.append(time.perf_counter() - t0)
    return {"objects": len(session.map.objects), "p50_ms": 1e3 * statistics.median(times),
            "p95_ms": 1e3 * float(np.percentile(times, 95)), "max_ms": 1e3 * max(times)}


def _map_id(s: Session, seq, inst: int) -> int | None:
    """The map thing of ``inst``'s class nearest its seen-surface centroid (within 0.25 m), if any."""
    o, target = seq.object(inst), seq.seen_surface_centroid(inst)
    near = [m for m in s.map.objects if m.is_thing and m.label == o.class_name
            and np.linalg.norm(m.centroid - target) <= 0.25]
    return min(near, key=lambda m: np.linalg.norm(m.centroid - target)).id if near else None


def _second_pass(s: Session, seq, frames: list, min_pixels: int, watch: int | None, watch_id: int | None) -> dict:
    """Feed ``frames`` (a later pass); count the windows that see ``watch``'s place until its map id is gone."""
    place_windows, gone_after = 0, None
    for n, f in enumerate(frames, start=1):
        s.offer(f)
        s.wait_idle(600)
        if n % 4 == 0 and watch is not None:
            window = [seq.frame_index(x.stamp) for x in frames[n - 4:n]]
            if any(seq.place_pixels[t, watch] >= min_pixels for t in window):
                place_windows += 1
            if watch_id is not None and gone_after is None and watch_id not in {m.id for m in s.map.objects}:
                gone_after = place_windows
    return {"windows_seeing_its_place": place_windows, "removed_after_windows_seeing_its_place": gone_after}


def moved_object(seed: int, frames: int, stride: int, min_pixels: int) -> dict:
    """Pass 1: the room as it is. Pass 2: the same path with one thing taken away — it must leave the map within
    ``remove_after_misses`` windows that see its place. Pass 2' (nothing moved, only the first third of the
    path): the things the first third does not see are not looked at again and must all stay."""
    seq = generate_sequence(seed, num_frames=frames, height=112, width=112)
    T, part = seq.num_frames, seq.num_frames // 3
    counts = seq.pixel_counts
    gone = int(np.argmax(counts.max(0)[1:] * (counts[:, 1:] >= min_pixels).sum(0))) + 1  # a well seen thing
    moved = with_objects_removed(seq, {gone: 0})
    out = {"seed": seed, "removed": f"{seq.object(gone).class_name}#{gone}"}
    s = oracle_session(seq, stride)
    try:
        evaluate_sequence(s, seq, MemoryEvalConfig(min_pixels=min_pixels))
        gone_id = _map_id(s, seq, gone)
        s.buffer.reset()
        s.reconstructor = OracleReconstructor(moved, s.config, pixel_stride=stride)
        out.update(found_in_pass_1=gone_id is not None, remove_after_misses=s.config.map.remove_after_misses,
                   **_second_pass(s, moved, list(moved.frames(loops=2))[T:], min_pixels, gone, gone_id))
    finally:
        s.close()
    later = [o.instance_id for o in seq.objects if counts[:part, o.instance_id].max() == 0
             and counts[part:, o.instance_id].max() >= min_pixels]
    s = oracle_session(seq, stride)
    try:
        evaluate_sequence(s, seq, MemoryEvalConfig(min_pixels=min_pixels))
        ids = {i: _map_id(s, seq, i) for i in later}
        s.buffer.reset()
        _second_pass(s, seq, list(seq.frames(loops=2))[T:T + part], min_pixels, None, None)
        present = {m.id for m in s.map.objects}
        out.update(not_looked_at_again=sum(v is not None for v in ids.values()),
                   not_looked_at_again_still_there=sum(v in present for v in ids.values() if v is not None))
    finally:
        s.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--loops", type=int, default=3)
    ap.add_argument("--stride", type=int, default=2, help="oracle pixel stride")
    ap.add_argument("--min-pixels", type=int, default=100)
    ap.add_argument("--demo", action="store_true", help="also the demo model with measured depth")
    ap.add_argument("--moved", action="store_true", help="also the moved-object scenario")
    ap.add_argument("--cameras", action="store_true", help="also a head + wrist camera rig (oracle), vs the head alone")
    ap.add_argument("--rig-frames", type=int, default=40, help="frames per camera of the rig sequences")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scene_memory.json"))
    args = ap.parse_args()
    res = {"load_before": os.getloadavg(), "config": vars(args), "oracle": [], "demo": [], "moved": [],
           "cameras": []}
    for seed in args.seeds:
        seq = generate_sequence(seed, num_frames=args.frames, height=112, width=112)
        s = oracle_session(seq, args.stride)
        try:
            r = evaluate_sequence(s, seq, MemoryEvalConfig(loops=args.loops, min_pixels=args.min_pixels))
            r["query"] = query_latency(s)
        finally:
            s.close()
        r.pop("per_window")
        r["seed"] = seed
        res["oracle"].append(r)
        print(json.dumps({k: r[k] for k in ("seed", "targets", "recall", "duplicates_per_object", "id_switches",
                                             "centroid_error_median_m", "memory_growth_last_vs_first",
                                             "fusion_over_panoptic_median", "query")}, default=str), flush=True)
        if args.demo:
            s = demo_session()
            try:
                d = evaluate_sequence(s, seq, MemoryEvalConfig(loops=1, min_pixels=args.min_pixels))
            finally:
                s.close()
            d.pop("per_window")
            d["seed"] = seed
            res["demo"].append(d)
            print("demo", json.dumps({k: d[k] for k in ("seed", "targets", "recall", "duplicates_per_object",
                                                         "id_switches", "centroid_error_median_m")}), flush=True)
        if args.moved:
            m = moved_object(seed, args.frames, args.stride, args.min_pixels)
            res["moved"].append(m)
            print("moved", json.dumps(m), flush=True)
        if args.cameras:
            c = two_cameras(seed, args.rig_frames, args.stride, args.min_pixels)
            res["cameras"].append(c)
            print("cameras", json.dumps(c), flush=True)
    res["load_after"] = os.getloadavg()
    summary = {}
    for key in ("oracle", "demo"):
        rows = res[key]
        if rows:
            summary[key] = {
                "recall_min": min(r["recall"] for r in rows),
                "duplicates_per_object_max": max(r["duplicates_per_object"] for r in rows),
                "id_switches_total": sum(r["id_switches"] for r in rows),
                "centroid_error_median_m_max": max(r["centroid_error_median_m"] for r in rows),
                "memory_growth_max": max(r["memory_growth_last_vs_first"] for r in rows),
                "fusion_over_panoptic_median_max": max(r["fusion_over_panoptic_median"] for r in rows),
            }
    res["summary"] = summary
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
