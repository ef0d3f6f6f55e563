"""Benchmark the object map: fusion time per window against the panoptic stage, query latency, memory.

    python bench/bench_mapping.py [--sizes 112 224] [--things 10 50 200] [--out bench/results/mapping.json]

Windows come from the ray-cast test world (test/helpers/mapping_world.py): a floor, a wall and ``T`` spherical
things on a grid, 4 views of ``S x S`` pixels per window (every pixel hit is a Gaussian, so ~4 S^2 of them),
windows patrolling the grid (each sees a ~2 m patch of it), in a 512-d text space. The map is built from
every window with the true instances as clusters (``assemble_scene``: the panoptic stage's labelling and
pooling without HDBSCAN, so that 200-thing maps take minutes, not hours); the panoptic stage itself
(``build_scene``: HDBSCAN clustering, labelling, outlier removal, slerp pooling) is timed on the first
``--panoptic-windows`` windows of each world at each size, and fusion is compared with its median. Two
passes over the windows (the second revisits everything).

* ``fusion``: per (S, T): median/p95/max fusion seconds per window, the median panoptic seconds at that size,
  their ratio (target <= 0.10), map objects, stage breakdown per window;
* ``query``: ``ObjectMap.query`` on a map of 200 objects, by cached embedding and by text (p50/p95 ms,
  target p95 <= 5 ms);
* ``memory``: points and bytes after each of 3 passes over the same windows (exact repeats), and with 1 cm
  of pose noise per window.

State the machine load (/proc/loadavg, written into the JSON) with any number taken from here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))  # the ray-cast world shared with the tests

from eps3d_ros.conventions import covariance_from_scale_rotation  # noqa: E402
from eps3d_ros.mapping import MapConfig, ObjectMap  # noqa: E402
from eps3d_ros.model.outputs import Gaussians  # noqa: E402
from eps3d_ros.panoptic import PanopticConfig, build_scene  # noqa: E402
from eps3d_ros.panoptic.build import assemble_scene  # noqa: E402
from helpers.mapping_world import (  # noqa: E402
    STUFF,
    VOCAB,
    FakeText,
    Thing,
    World,
    cast_window,
    class_features,
    prototype_space,
    snapshot_of,
)

TEXT = FakeText(512)  # CLIP ViT-B-32's text dimension
LABELS = ["mug", "ball", "box", "bowl", "lamp"]


def grid_world(things: int, spacing: float = 0.5, seed: int = 0) -> World:
    """``things`` spheres (radius 8-16 cm) on a square grid on the floor, a wall beyond it."""
    rng = np.random.default_rng(seed)
    side = math.ceil(math.sqrt(things))
    out = []
    for i in range(things):
        r = float(rng.uniform(0.08, 0.16))
        x, y = (i % side - (side - 1) / 2) * spacing, (i // side - (side - 1) / 2) * spacing
        out.append(Thing(LABELS[i % len(LABELS)], (x, y, r), r))
    return World(out, floor_half=side * spacing / 2 + 1.5)


def windows_around(world: World, views: int = 4, reach: float = 1.2):
    """(eyes, targets) of windows patrolling the grid: window k looks at a point c_k from ``views`` directions
    (1.3 m away, 1 m up); the points c_k are a serpentine over the grid, ``reach`` metres apart."""
    half = world.floor_half - 1.5
    n = max(2, math.ceil(2 * half / reach) + 1)
    xs = np.linspace(-half, half, n)
    centres = [(x, y) for j, y in enumerate(xs) for x in (xs if j % 2 == 0 else xs[::-1])]
    out = []
    for k, (cx, cy) in enumerate(centres):
        eyes, targets = [], []
        for v in range(views):
            a = 2 * math.pi * v / views + 0.3 * k
            eyes.append((cx + 1.3 * math.cos(a), cy + 1.3 * math.sin(a), 1.0))
            targets.append((cx, cy, 0.0))
        out.append((eyes, targets))
    return out


def panoptic_snapshot(world: World, eyes, targets, stamp: float, size: int, offset=(0.0, 0.0, 0.0),
                      seed: int = 0, real: bool = False):
    """``(snapshot, panoptic seconds)`` of a window. ``real``: its Gaussians go through the real ``build_scene``
    (HDBSCAN instance clustering, labelling, outlier removal, slerp pooling); else through ``assemble_scene``
    with the true instances as clusters (the same labelling and pooling; what the map gets is alike, faster)."""
    raw = cast_window(world, eyes, targets, stamp, size, size, offset)
    n = len(raw.means)
    sem = class_features(raw.classes, raw.things, np.random.default_rng(seed))
    cfg = PanopticConfig(vocabulary=list(VOCAB), stuff=list(STUFF))
    t0 = time.perf_counter()
    if not real:
        scene = assemble_scene(
            means=raw.means, opacities=np.full(n, 0.9, np.float32), colors=raw.colors, weights=np.ones(n, np.float32),
            semantic_features=sem, instance_features=np.zeros((n, 1), np.float32), cluster_ids=raw.things,
            space=prototype_space(TEXT), text_encoder=TEXT,
            config=PanopticConfig(vocabulary=list(VOCAB), stuff=list(STUFF), outlier_removal=False),
            metadata={"frame_id": "map", "stamp": stamp})
        return snapshot_of(scene, raw.cameras, stamp), time.perf_counter() - t0
    codes = torch.nn.functional.normalize(torch.randn(len(world.things) + len(VOCAB) + 1, 32,
                                                      generator=torch.Generator().manual_seed(7)), dim=-1)
    owner = np.where(raw.things > 0, raw.things, len(world.things) + 1 + raw.classes)  # stuff: a code per class
    ins = codes[torch.from_numpy(owner)] + 0.05 * torch.randn(n, 32, generator=torch.Generator().manual_seed(seed))
    scales = torch.full((n, 3), 0.005)
    rot = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(n, 4)
    harm = ((torch.from_numpy(raw.colors) - 0.5) / 0.28209479177387814)[:, :, None]
    g = Gaussians(means=torch.from_numpy(raw.means)[None], opacities=torch.full((1, n), 0.9), scales=scales[None],
                  rotations=rot[None], covariances=covariance_from_scale_rotation(scales, rot)[None],
                  harmonics=harm[None], semantics=torch.from_numpy(sem)[None], instances=ins[None])
    t0 = time.perf_counter()
    scene = build_scene(g, prototype_space(TEXT), TEXT, cfg, metadata={"frame_id": "map", "stamp": stamp})
    return snapshot_of(scene, raw.cameras, stamp), time.perf_counter() - t0


def bench_fusion(sizes: list[int], thing_counts: list[int], panoptic_windows: int, passes: int = 2) -> dict:
    out = {}
    for size in sizes:
        panoptic = []  # the real panoptic stage on the first windows of each world at this size
        for things in thing_counts:
            world = grid_world(things)
            wins = windows_around(world)
            for k, (eyes, targets) in enumerate(wins[:panoptic_windows]):
                panoptic.append(panoptic_snapshot(world, eyes, targets, float(k), size, seed=k, real=True)[1])
                print(f"  panoptic size={size} things={things} window {k}: {panoptic[-1]:.2f} s", flush=True)
        pan = statistics.median(panoptic)
        for things in thing_counts:
            world = grid_world(things)
            snaps = [panoptic_snapshot(world, e, t, float(k), size, seed=k)[0]
                     for k, (e, t) in enumerate(windows_around(world))]
            m = ObjectMap(MapConfig())
            fusion, rows = [], []
            for p in range(passes):
                for k, snap in enumerate(snaps):
                    up = m.integrate(snap)
                    fusion.append(up.timing["total"])
                    rows.append({"pass": p, "window": k, "gaussians": snap.scene.num_gaussians,
                                 "window_objects": len(snap.scene.objects), "map_objects": len(m.objects),
                                 "fusion_s": round(up.timing["total"], 4),
                                 "stages_ms": {s: round(v * 1000, 2) for s, v in up.timing.items()}})
            key = f"size={size},things={things}"
            out[key] = {"windows_per_pass": len(snaps), "gaussians_per_window": int(statistics.median(
                r["gaussians"] for r in rows)), "map_objects": len(m.objects), "map_things": m.stats()["things"],
                "fusion_median_s": statistics.median(fusion),
                "fusion_p95_s": sorted(fusion)[int(0.95 * (len(fusion) - 1))],
                "fusion_max_s": max(fusion), "panoptic_median_s": pan, "panoptic_runs": len(panoptic),
                "fusion_over_panoptic_median": statistics.median(fusion) / pan,
                "fusion_over_panoptic_max": max(fusion) / pan, "target_ratio": 0.10, "windows": rows}
            r = out[key]
            print(f"{key}: {r['gaussians_per_window']} Gaussians/window, {r['windows_per_pass']} windows x {passes}, "
                  f"{r['map_objects']} map objects, fusion median {r['fusion_median_s'] * 1000:.1f} ms "
                  f"(p95 {r['fusion_p95_s'] * 1000:.1f}, max {r['fusion_max_s'] * 1000:.1f}), panoptic {pan:.2f} s, "
                  f"ratio {r['fusion_over_panoptic_median']:.3f} (max {r['fusion_over_panoptic_max']:.3f})", flush=True)
    return out


def bench_query(repeats: int) -> dict:
    world = grid_world(200, spacing=0.45)
    m = ObjectMap(MapConfig())
    for k, (eyes, targets) in enumerate(windows_around(world)):
        m.integrate(panoptic_snapshot(world, eyes, targets, float(k), 112, seed=k)[0])
    emb = TEXT.encode(["red mug"])[0]
    res = {"map_objects": len(m.objects), "map_things": m.stats()["things"], "repeats": repeats, "target_p95_ms": 5.0}
    for name, q in (("by_embedding", emb), ("by_text", "red mug")):
        m.query(q, max_results=5)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            m.query(q, max_results=5)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        res[name] = {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
                     "max_ms": times[-1]}
    print(f"query on {len(m.objects)} map objects: {json.dumps({k: res[k] for k in ('by_embedding', 'by_text')})}",
          flush=True)
    return res


def bench_memory(size: int, things: int, loops: int = 3) -> dict:
    world = grid_world(things)
    wins = windows_around(world)
    snaps = [panoptic_snapshot(world, e, t, float(k), size, seed=k)[0] for k, (e, t) in enumerate(wins)]
    res = {}
    exact = ObjectMap(MapConfig())
    rows = []
    for loop in range(loops):
        for s in snaps:
            exact.integrate(s)
        st = exact.stats()
        rows.append({"pass": loop + 1, "objects": st["objects"], "points": st["points"], "bytes": st["bytes"]})
    res["exact_repeats"] = rows
    rng = np.random.default_rng(0)
    noisy = ObjectMap(MapConfig())
    rows = []
    for loop in range(loops):
        for k, (e, t) in enumerate(wins):
            snap = panoptic_snapshot(world, e, t, 100.0 * loop + k, size, offset=tuple(rng.normal(0, 0.01, 3)),
                                     seed=k)[0]
            noisy.integrate(snap)
        st = noisy.stats()
        rows.append({"pass": loop + 1, "objects": st["objects"], "points": st["points"], "bytes": st["bytes"]})
    res["pose_noise_1cm"] = rows
    for k, r in res.items():
        print(f"memory ({k}): " + ", ".join(f"pass {x['pass']}: {x['objects']} objects, {x['points']} points, "
                                            f"{x['bytes'] / 1e6:.2f} MB" for x in r), flush=True)
    return {"size": size, "things": things, **res}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[112, 224], help="pixels per side of each view")
    p.add_argument("--things", type=int, nargs="+", default=[10, 50, 200])
    p.add_argument("--query-repeats", type=int, default=2000)
    p.add_argument("--panoptic-windows", type=int, default=2, help="windows per world timed through build_scene")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared 2-core machine waiting OpenMP threads distort timings)")
    p.add_argument("--out", type=Path, default=ROOT / "bench/results/mapping.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    result = {
        "machine": {"cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "loadavg_before": load_before},
        "fusion": bench_fusion(args.sizes, args.things, args.panoptic_windows),
        "query": bench_query(args.query_repeats),
        "memory": bench_memory(args.sizes[0], args.things[min(1, len(args.things) - 1)]),
    }
    result["machine"]["loadavg_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} (load average before {load_before}, after {result['machine']['loadavg_after']})")


if __name__ == "__main__":
    main()
