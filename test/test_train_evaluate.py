"""Held-out evaluation pieces: the measured-geometry queries judge labels and instances, not the geometry."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from helpers.synthetic import oracle_gaussians

from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.model import Gaussians
from eps3d_ros.panoptic import SemanticSpace
from eps3d_ros.text import create_text_encoder
from eps3d_ros.text.clip import register_tiny_test_model
from eps3d_ros.eval.model_eval import EvalConfig, _measured_queries, _summarize, panoptic_config


def pixel_aligned_oracle(scene) -> Gaussians:
    """Oracle features at every pixel (view, row, col order); pixels that hit nothing are transparent and sit
    somewhere wrong, as a network's would."""
    hit_g, _, _ = oracle_gaussians(scene)
    hit = (scene.depth > 0).reshape(-1)
    n = hit.size
    rng = np.random.default_rng(1)

    def spread(t: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        out = fill.expand(n, *t.shape[2:]).clone()
        out[torch.from_numpy(hit)] = t[0]
        return out[None]

    # wrong geometry (a scaled, shifted copy of the truth, each view displaced differently, as a poor camera
    # head fuses views): measured queries must not depend on it
    means = spread(hit_g.means, torch.zeros(3)) * 0.3 + torch.tensor([1.0, -2.0, 0.5])
    view = torch.arange(n) // (n // scene.num_views)
    means[0] += torch.stack([0.4 * view, -0.3 * view, 0.2 * view], 1).float()
    means[0, torch.from_numpy(~hit)] = torch.from_numpy(rng.normal(size=(int((~hit).sum()), 3))).float()
    return Gaussians(
        means=means, opacities=spread(hit_g.opacities, torch.tensor(0.0)), scales=spread(hit_g.scales, torch.full((3,), 0.005)),
        rotations=spread(hit_g.rotations, torch.tensor([0.0, 0.0, 0.0, 1.0])),
        covariances=spread(hit_g.covariances, 1e-5 * torch.eye(3)), harmonics=spread(hit_g.harmonics, torch.zeros(3, 25)),
        semantics=spread(hit_g.semantics, torch.zeros(32)), instances=spread(hit_g.instances, torch.zeros(32)),
    )


def test_measured_queries_with_oracle_features_find_the_nearest_object() -> None:
    encoder = create_text_encoder(model=register_tiny_test_model(), pretrained="")
    scene = generate_scene(seed=3, num_views=3, height=96, width=128)
    vocab = scene.class_names[1:]
    protos = encoder.prototypes(vocab)
    pad = torch.nn.functional.normalize(torch.randn(512, 32 - len(vocab), generator=torch.Generator().manual_seed(0)), dim=0)
    space = SemanticSpace(torch.cat([protos.T, 0.01 * pad], dim=1), torch.zeros(512))
    cfg = EvalConfig(settings={"panoptic.clustering.hdbscan.min_cluster_size": 100, "panoptic.min_object_points": 20})
    pcfg = panoptic_config(list(scene.class_names), list(scene.stuff), cfg)
    world = np.stack([scene.world_points(v) for v in range(scene.num_views)])
    rows = _measured_queries(SimpleNamespace(gaussians=pixel_aligned_oracle(scene)), space, encoder, pcfg, world,
                             scene.visible_centroids(cfg.min_query_pixels))
    visible = {o.class_name for o in scene.objects if (scene.instance == o.instance_id).sum() >= cfg.min_query_pixels}
    assert sorted(r["query"] for r in rows) == sorted(visible) and len(rows) >= 3
    assert all(r["found"] and r["nearest"] for r in rows), rows
    assert max(r["error"] for r in rows) < 0.05, rows  # metres, on the true surface
    s = _summarize([{"abs_rel": 0.0, "delta1": 1.0, "forward_s": 0.0, "measured_queries": rows}],
                   list(scene.class_names), list(scene.things), list(scene.stuff), cfg)
    assert s["measured_query_nearest_rate"] == 1.0 and s["measured_centroid_within_25cm"] == 1.0
