"""Benchmark panoptic inference: instance clustering vs N, query latency, scene construction.

    python bench/bench_panoptic.py [--sizes 10000 100000 1000000] [--out bench/results/panoptic.json]

* clustering: HDBSCAN on a seeded subsample (the default 10 000, and 50 000) + nearest-centroid
  assignment, for N Gaussians with 32-d instance features drawn around 20 object codes;
* query: ``Scene.query`` on a scene of 200 objects with the text embedding already cached (p50/p95);
* scene construction: ``build_scene`` on the ``tiny`` preset's output for 4 views of 224x224, with
  the ViT-B-32 text encoder (random weights: the architecture, not the weights, sets the cost).
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

from eps3d_ros.model import EPS3D, EPS3DConfig
from eps3d_ros.panoptic import ClusteringConfig, PanopticConfig, SemanticSpace, build_scene, cluster_instances
from eps3d_ros.panoptic.build import assemble_scene
from eps3d_ros.text import TextEncoder, create_text_encoder


def instance_features(n: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    codes = torch.nn.functional.normalize(torch.randn(k, 32, generator=g), dim=-1)
    gt = torch.randint(0, k, (n,), generator=g)
    return codes[gt] + 0.05 * torch.randn(n, 32, generator=g), gt


def bench_clustering(sizes: list[int], samples: list[int]) -> dict:
    out = {}
    for n in sizes:
        x, gt = instance_features(n, 20)
        for m in samples:
            t0 = time.perf_counter()
            r = cluster_instances(x, torch.ones(n), ClusteringConfig(max_samples=m))
            dt = time.perf_counter() - t0
            out[f"N={n},max_samples={m}"] = {
                "seconds": dt, "hdbscan_samples": r.sample_size, "instances": r.num_instances, "true_instances": 20,
                "purity": purity(r.ids.numpy(), gt.numpy()), "unassigned_fraction": float((r.ids == 0).float().mean()),
            }
            print(f"clustering N={n} samples={r.sample_size}: {dt:.2f} s, {r.num_instances} instances", flush=True)
    return out


def purity(ids: np.ndarray, gt: np.ndarray) -> float:
    """Fraction of assigned points whose cluster's majority true instance is their own."""
    ok = sum(np.bincount(gt[ids == k]).max() for k in np.unique(ids[ids > 0]))
    return float(ok / max(1, int((ids > 0).sum())))


def bench_query(encoder: TextEncoder, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    n_obj, per = 200, 50
    n = n_obj * per
    space = SemanticSpace(torch.randn(512, 32, generator=torch.Generator().manual_seed(1)), torch.zeros(512))
    sem = np.repeat(rng.normal(size=(n_obj, 32)), per, axis=0).astype(np.float32)
    sem += 0.05 * rng.normal(size=sem.shape).astype(np.float32)
    means = (np.repeat(rng.uniform(-3, 3, (n_obj, 3)), per, axis=0) + 0.02 * rng.normal(size=(n, 3))).astype(np.float32)
    cfg = PanopticConfig(vocabulary=["thing"], stuff=[], min_object_points=10, outlier_removal=False)
    scene = assemble_scene(
        means=means, opacities=np.ones(n, np.float32), colors=np.zeros((n, 3), np.float32),
        weights=np.ones(n, np.float32), semantic_features=sem, instance_features=np.zeros((n, 32), np.float32),
        cluster_ids=np.repeat(np.arange(1, n_obj + 1), per), space=space, text_encoder=encoder, config=cfg,
    )
    assert len(scene.objects) == n_obj
    scene.query("red mug")  # fills the text cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        scene.query("red mug", max_results=5)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"objects": n_obj, "repeats": repeats, "p50_ms": statistics.median(times),
            "p95_ms": times[int(0.95 * (len(times) - 1))], "max_ms": times[-1], "target_p95_ms": 5.0}


def bench_scene_construction(encoder: TextEncoder, repeats: int) -> dict:
    torch.manual_seed(0)
    model = EPS3D(EPS3DConfig.from_preset("tiny")).eval()
    with torch.inference_mode():
        pred = model(torch.rand(1, 4, 3, 224, 224))
    cfg = PanopticConfig()
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        scene = build_scene(pred, model, encoder, cfg)
        dt = time.perf_counter() - t0
        if i == 0:
            cold = dt  # includes encoding the vocabulary
        else:
            times.append(dt)
    return {"gaussians": scene.num_gaussians, "objects": len(scene.objects), "cold_seconds": cold,
            "median_seconds": statistics.median(times), "runs": repeats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--samples", type=int, nargs="+", default=[10_000, 50_000], help="HDBSCAN subsample sizes")
    p.add_argument("--query-repeats", type=int, default=2000)
    p.add_argument("--scene-repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("bench/results/panoptic.json"))
    args = p.parse_args()
    encoder = create_text_encoder(model="ViT-B-32", pretrained="")
    result = {
        "machine": {"cpu_threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__},
        "query": bench_query(encoder, args.query_repeats),
        "scene_construction_tiny_4x224": bench_scene_construction(encoder, args.scene_repeats),
        "clustering": bench_clustering(args.sizes, args.samples),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
