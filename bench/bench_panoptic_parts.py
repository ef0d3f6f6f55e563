"""Profile the panoptic stage by part, and compare its objects with the code it replaced (JSON).

    python bench/bench_panoptic_parts.py [--views 4 8 16] [--repeats 3] [--out bench/results/panoptic_parts.json]

Inputs (fixed: synthetic scene seed 100000, never trained on):

* ``demo_V``: the demo model (``models/demo_tiny``, 112x112) on V views;
* ``oracle_V``: ideal features from the ground truth of the same V views (semantic feature = the class's
  text embedding through the expansion, instance feature = one code per object plus noise), 112x112;
* ``tiny224_4``: the ``tiny`` preset with seeded random weights on 4 views of 224x224, the default
  ``PanopticConfig`` (the window of issue 13's figures).

Per input: seconds per part (medians of ``--repeats`` after a warm-up; parts: gather, labels, sample,
spanning_tree, condensed_tree, assign, votes, outliers, pooling, objects, and the PointCloud2 payload),
the reference clustering backend (``hdbscan``) for comparison, the longest wait of a 1 ms ticker thread
(GIL) during the clustering and the whole stage, and the objects compared with the panoptic code of the
branch point (``--reference``, default: the merge base with main): identical clusters / objects, or the
adjusted Rand index of the instance ids. The process starts as the node does (``prepare_process``:
``model.threads``, warm-up, ``gc.freeze``). Load average and threads are recorded with the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gil_ticker import GilTicker, baseline  # noqa: E402
from reference_panoptic import load_reference_panoptic  # noqa: E402

from eps3d_ros.data.scene_layout import CLASS_NAMES, STUFF_CLASSES  # noqa: E402
from eps3d_ros.data.synthetic import generate_scene  # noqa: E402
from eps3d_ros.model import EPS3D, EPS3DConfig, Gaussians  # noqa: E402
from eps3d_ros.panoptic import ClusteringConfig, PanopticConfig, SemanticSpace, build_scene, cluster_instances  # noqa: E402
from eps3d_ros.panoptic.hdbscan_clusterer import HdbscanSettings
from eps3d_ros.panoptic.clouds import cloud_points, cloud_to_bytes  # noqa: E402
from eps3d_ros.settings.tree import Eps3dConfig  # noqa: E402
from eps3d_ros.process.threads import prepare_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEED = 100_000


def demo_config(**clustering) -> PanopticConfig:
    return PanopticConfig(vocabulary=list(CLASS_NAMES[1:]), stuff=[CLASS_NAMES[i] for i in STUFF_CLASSES],
                          clustering=ClusteringConfig(**clustering, hdbscan=HdbscanSettings(min_cluster_size=100)))


def oracle_input(scene, text) -> tuple[Gaussians, SemanticSpace]:
    """Pixel-aligned Gaussians of every hit pixel with ideal features, and the space that maps them."""
    rng = np.random.default_rng(0)
    pts, sem_id, ins_id = [], [], []
    for v in range(scene.num_views):
        hit = scene.depth[v] > 0
        pts.append(scene.world_points(v)[hit])
        sem_id.append(scene.semantic[v][hit])
        ins_id.append(scene.instance[v][hit])
    pts, sem_id, ins_id = np.concatenate(pts), np.concatenate(sem_id), np.concatenate(ins_id)
    n = len(pts)
    vocab = list(CLASS_NAMES[1:])
    protos = text.prototypes(vocab).float()
    pad = torch.nn.functional.normalize(torch.randn(512, 32 - len(vocab), generator=torch.Generator().manual_seed(0)), dim=0)
    space = SemanticSpace(torch.cat([protos.T, 0.01 * pad], dim=1), torch.zeros(512))
    sem = np.zeros((n, 32), np.float32)
    sem[np.arange(n), sem_id - 1] = 1.0
    sem += 0.05 * rng.normal(size=sem.shape).astype(np.float32)
    key = np.where(ins_id > 0, ins_id, 1000 + sem_id)
    codes = {k: rng.normal(size=32) for k in np.unique(key)}
    ins = np.stack([codes[k] for k in key]).astype(np.float32)
    ins /= np.linalg.norm(ins, axis=1, keepdims=True)
    ins += 0.05 * rng.normal(size=ins.shape).astype(np.float32)
    scales = torch.full((n, 3), 0.005)
    rot = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(n, 4).contiguous()
    from eps3d_ros.conventions import covariance_from_scale_rotation

    g = Gaussians(means=torch.from_numpy(pts).float()[None], opacities=torch.full((1, n), 0.9), scales=scales[None],
                  rotations=rot[None], covariances=covariance_from_scale_rotation(scales, rot)[None],
                  harmonics=torch.zeros(1, n, 3, 25), semantics=torch.from_numpy(sem)[None],
                  instances=torch.from_numpy(ins)[None])
    return g, space


def network_input(model, views: int, size: int) -> tuple[Gaussians, float]:
    scene = generate_scene(seed=SEED, num_views=views, height=size, width=size)
    images = torch.from_numpy(scene.rgb).permute(0, 3, 1, 2).float().div(255.0)[None]
    with torch.inference_mode():
        model(images)  # warm-up
        t0 = time.perf_counter()
        pred = model(images)
        dt = time.perf_counter() - t0
    return pred.gaussians, dt


def median_parts(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = dict.fromkeys(k for r in runs for k in r)
    return {k: round(statistics.median(r.get(k, 0.0) for r in runs), 4) for k in keys}


def ari(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


def compare(new, old) -> dict:
    """Objects of the new and the reference scene."""
    same_clusters = bool(np.array_equal(new.cluster_ids, old.cluster_ids))
    same_objects = len(new.objects) == len(old.objects) and all(
        (a.label_id, a.is_thing) == (b.label_id, b.is_thing) and np.array_equal(a.indices, b.indices)
        for a, b in zip(new.objects, old.objects))
    out = {"identical_cluster_ids": same_clusters, "identical_objects": bool(same_objects),
           "objects": [len(new.objects), len(old.objects)],
           "ari_cluster_ids": round(ari(new.cluster_ids, old.cluster_ids), 6),
           "ari_instance_ids": round(ari(new.instance_ids, old.instance_ids), 6)}
    if same_objects and new.objects:
        out["max_embedding_diff"] = float(max(np.abs(a.embedding - b.embedding).max() for a, b in zip(new.objects, old.objects)))
        out["max_centroid_diff"] = float(max(np.abs(a.centroid - b.centroid).max() for a, b in zip(new.objects, old.objects)))
    return out


def profile(name: str, g: Gaussians, space: SemanticSpace, text, cfg: PanopticConfig, repeats: int, ref,
            device: str = "cpu") -> dict:
    g = dataclasses.replace(g, **{f.name: getattr(g, f.name).to(device) for f in dataclasses.fields(g)
                                  if isinstance(getattr(g, f.name), torch.Tensor)})
    n = int(g.means.shape[1])
    print(f"{name}: {n} Gaussians", flush=True)
    build_scene(g, space, text, cfg)  # warm-up (prototypes, first kernels)
    runs, totals = [], []
    for _ in range(repeats):
        t = {}
        t0 = time.perf_counter()
        scene = build_scene(g, space, text, cfg, timings=t)
        totals.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        cloud_to_bytes(cloud_points(scene, "semantic", 200_000, 0.1))
        t["pointcloud2"] = time.perf_counter() - t1
        runs.append(t)
    ins, opac = g.instances[0].float(), g.opacities[0].float()
    with GilTicker() as tick_cluster:
        cluster_instances(ins, opac, cfg.clustering)
    with GilTicker() as tick_stage:
        build_scene(g, space, text, cfg)
    out = {"gaussians": n, "objects": len(scene.objects), "instances": int(scene.cluster_ids.max()),
           "stage_s": round(statistics.median(totals), 4), "parts_s": median_parts(runs),
           "gil_clustering": tick_cluster.stats(), "gil_stage": tick_stage.stats()}
    ref_cfg = PanopticConfig(**{**cfg.__dict__, "clustering": ClusteringConfig(**{**cfg.clustering.__dict__,
                                                                                   "backend": "hdbscan"})})
    t = {}
    with GilTicker() as tick_ref:
        cluster_instances(ins, opac, ref_cfg.clustering, t)
    out["reference_backend"] = {"clustering_s": round(sum(t.values()), 4), "parts_s": {k: round(v, 4) for k, v in t.items()},
                                "gil_clustering": tick_ref.stats()}
    if ref is not None:
        old_cfg = ref.PanopticConfig(vocabulary=cfg.vocabulary, stuff=cfg.stuff,
                                     clustering=ref.ClusteringConfig(**{k: v for k, v in cfg.clustering.__dict__.items()
                                                                        if k != "backend"}))
        t0 = time.perf_counter()
        old = ref.build_scene(g, ref.SemanticSpace(space.weight, space.bias), text, old_cfg)
        out["reference_code"] = {"commit": ref.COMMIT[:10], "stage_s": round(time.perf_counter() - t0, 4),
                                 **compare(scene, old)}
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--views", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=-1, help="model.threads (-1: all cores but one)")
    p.add_argument("--reference", default="", help="commit of the reference panoptic code (default: merge base)")
    p.add_argument("--no-reference", action="store_true", help="skip the comparison with the reference code")
    p.add_argument("--no-tiny224", action="store_true", help="skip the tiny preset at 4x224")
    p.add_argument("--device", default="cpu", help="device of the Gaussians (the stage runs where they are)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "panoptic_parts.json")
    args = p.parse_args()
    start = Eps3dConfig()  # start the process as the node does: threads, panoptic warm-up, gc.freeze
    start.model.threads, start.model.device = args.threads, args.device
    threads = prepare_process(start)
    from eps3d_ros.eval.model_eval import load_model_dir

    model, text = load_model_dir(ROOT / "models" / "demo_tiny")
    space = SemanticSpace.from_model(model)
    ref = None if args.no_reference else load_reference_panoptic(args.reference or None)
    import gc

    gc.freeze()  # what the models and the reference code added, as prepare_process did for the rest
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                                "threads": threads, "load_avg_start": os.getloadavg()},
                    "gil_baseline": baseline(1.0), "inputs": {}}
    for v in args.views:
        g, net_s = network_input(model, v, 112)
        result["inputs"][f"demo_{v}"] = {"network_s": round(net_s, 4), **profile(f"demo_{v}", g, space, text, demo_config(),
                                                                                args.repeats, ref, args.device)}
        scene = generate_scene(seed=SEED, num_views=v, height=112, width=112)
        g, oracle_space = oracle_input(scene, text)
        result["inputs"][f"oracle_{v}"] = profile(f"oracle_{v}", g, oracle_space, text, demo_config(), args.repeats, ref,
                                                  args.device)
    if not args.no_tiny224:
        torch.manual_seed(0)
        tiny = EPS3D(EPS3DConfig.from_preset("tiny")).eval()
        g, net_s = network_input(tiny, 4, 224)
        result["inputs"]["tiny224_4"] = {"network_s": round(net_s, 4),
                                         **profile("tiny224_4", g, SemanticSpace.from_model(tiny), text, PanopticConfig(),
                                                   args.repeats, ref, args.device)}
    result["machine"]["load_avg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
