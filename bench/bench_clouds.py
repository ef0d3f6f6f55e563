"""Benchmark point-cloud output: ``cloud_points`` (filter, voxel search, colours) and structured array → bytes.

    python bench/bench_clouds.py [--gaussians 200000] [--max-points 200000 100000 50000 10000] [--out bench/results/clouds.json]

The scene: ``--gaussians`` centres on a room-like set of surfaces (floor, two walls, 40 box-shaped
objects), 30 classes, 40 instances, uniform opacities, built with ``assemble_scene`` (no network,
no HDBSCAN: only the cloud code is timed). Each case reports the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from eps3d_ros.panoptic import PanopticConfig, SemanticSpace
from eps3d_ros.text import create_text_encoder
from eps3d_ros.panoptic.build import assemble_scene
from eps3d_ros.text.clip import register_tiny_test_model
from eps3d_ros.panoptic.clouds import cloud_points, cloud_to_bytes, object_cloud


def make_scene(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_obj, k = 40, 30
    part = n // 4
    floor = np.c_[rng.uniform(-3, 3, (part, 2)), np.zeros(part)]
    wall_x = np.c_[np.full(part // 2, -3.0), rng.uniform(-3, 3, part // 2), rng.uniform(0, 2.5, part // 2)]
    wall_y = np.c_[rng.uniform(-3, 3, part - part // 2), np.full(part - part // 2, 3.0), rng.uniform(0, 2.5, part - part // 2)]
    m = n - 2 * part
    obj = rng.integers(0, n_obj, m)
    centres = np.c_[rng.uniform(-2.5, 2.5, (n_obj, 2)), rng.uniform(0.1, 1.0, n_obj)]
    things = centres[obj] + rng.uniform(-0.1, 0.1, (m, 3))
    means = np.concatenate([floor, wall_x, wall_y, things]).astype(np.float32)
    cls = np.r_[np.zeros(part, int), np.ones(part, int), 2 + obj % (k - 2)]
    space = SemanticSpace(torch.nn.functional.normalize(torch.randn(512, 32, generator=torch.Generator().manual_seed(1)), dim=0),
                          torch.zeros(512))
    codes = rng.normal(size=(k, 32)).astype(np.float32)
    sem = codes[cls] + 0.05 * rng.normal(size=(n, 32)).astype(np.float32)
    vocab = [f"class{i}" for i in range(k)]
    cfg = PanopticConfig(vocabulary=vocab, stuff=vocab[:2], min_object_points=10, outlier_removal=False)
    encoder = create_text_encoder(model=register_tiny_test_model(), pretrained="")
    return assemble_scene(
        means=means, opacities=rng.uniform(0.05, 1.0, n).astype(np.float32), colors=rng.random((n, 3)).astype(np.float32),
        weights=np.ones(n, np.float32), semantic_features=sem, instance_features=np.zeros((n, 4), np.float32),
        cluster_ids=np.r_[np.zeros(2 * part, np.int64), 1 + obj], space=space, text_encoder=encoder, config=cfg,
    )


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gaussians", type=int, default=200_000)
    p.add_argument("--max-points", type=int, nargs="+", default=[200_000, 100_000, 50_000, 10_000])
    p.add_argument("--min-opacity", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("bench/results/clouds.json"))
    args = p.parse_args()

    t0 = time.perf_counter()
    scene = make_scene(args.gaussians)
    print(f"scene: {scene.num_gaussians} Gaussians, {len(scene.objects)} objects ({time.perf_counter() - t0:.1f} s)", flush=True)
    cases = {}
    for kind in ("semantic", "instance"):
        for m in args.max_points:
            dt, cloud = timed(lambda: cloud_points(scene, kind, m, args.min_opacity), args.repeats)
            db, data = timed(lambda: cloud_to_bytes(cloud), args.repeats)
            cases[f"{kind},max_points={m}"] = {
                "cloud_points_ms": dt * 1000, "points": int(len(cloud)), "to_bytes_ms": db * 1000, "bytes": len(data)}
            print(f"{kind:8s} max_points={m:7d}: {len(cloud):7d} points, cloud_points {dt * 1000:7.1f} ms, "
                  f"to bytes {db * 1000:5.2f} ms", flush=True)
    biggest = max(scene.objects, key=lambda o: o.num_points)
    do, obj = timed(lambda: object_cloud(scene, biggest), args.repeats)
    result = {
        "machine": {"cpu_threads": torch.get_num_threads(), "python": platform.python_version(), "numpy": np.__version__},
        "gaussians": scene.num_gaussians, "min_opacity": args.min_opacity, "repeats": args.repeats, "cases": cases,
        "object_cloud": {"points": int(len(obj)), "ms": do * 1000},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
