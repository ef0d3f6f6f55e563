"""Synthetic scene → panoptic Gaussians with oracle features → Scene → metrics and queries.

The features are what a perfectly trained EPS3D would output (semantic feature = its class in the
text space, instance feature = a code per object), so everything downstream of the network is
checked end to end against ground truth: clustering, things/stuff, labels, objects, 3D metrics.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.eval import evaluate_panoptic_3d, panoptic_quality, semantic_miou
from eps3d_ros.panoptic import ClusteringConfig, PanopticConfig, SemanticSpace, build_scene
from eps3d_ros.panoptic.hdbscan_clusterer import HdbscanSettings
from eps3d_ros.text import TextEncoder, create_text_encoder
from eps3d_ros.text.clip import register_tiny_test_model
from helpers.synthetic import oracle_gaussians


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return create_text_encoder(model=register_tiny_test_model(), pretrained="")


def test_oracle_features_give_near_perfect_panoptic_scene(encoder) -> None:
    scene = generate_scene(seed=3, num_views=3, height=96, width=128)
    vocab = scene.class_names[1:]
    protos = encoder.prototypes(vocab)
    pad = torch.nn.functional.normalize(torch.randn(512, 32 - len(vocab), generator=torch.Generator().manual_seed(0)), dim=0)
    space = SemanticSpace(torch.cat([protos.T, 0.01 * pad], dim=1), torch.zeros(512))
    gauss, gt_sem, gt_ins = oracle_gaussians(scene)
    cfg = PanopticConfig(vocabulary=vocab, stuff=[scene.class_names[i] for i in scene.stuff],
                         clustering=ClusteringConfig(hdbscan=HdbscanSettings(min_cluster_size=100)), min_object_points=20)
    built = build_scene(gauss, space, encoder, cfg)
    sem, ins = built.panoptic_labels()
    pred_sem = sem + 1  # vocabulary index → class id
    assert semantic_miou(pred_sem, gt_sem, num_classes=len(scene.class_names)) > 0.99
    pq = panoptic_quality(pred_sem, ins, gt_sem, gt_ins, things=scene.things, stuff=scene.stuff)
    assert pq["pq"] > 0.9 and pq["rq"] > 0.9, pq
    full = evaluate_panoptic_3d(pred_sem, ins, gt_sem, gt_ins, things=scene.things, stuff=scene.stuff)
    assert full["pq"] == pytest.approx(pq["pq"])
    # Every visible object is found, with the right class and centroid.
    visible = [o for o in scene.objects if (gt_ins == o.instance_id).sum() >= 20]
    found = [o for o in built.objects if o.is_thing]
    assert len(found) == len(visible)
    for o in visible:
        match = min(found, key=lambda f: np.linalg.norm(f.centroid - o.centroid))
        assert match.label == o.class_name
        pts = gauss.means[0].numpy()[gt_ins == o.instance_id]
        assert np.linalg.norm(match.centroid - pts.mean(0)) < 0.02
        assert np.all(match.aabb_min <= pts.max(0)) and np.all(match.aabb_max >= pts.min(0))
    # A query by class name finds that object first.
    target = visible[0]
    top = built.query(target.class_name, max_results=1)[0]
    assert top.object.label == target.class_name and top.score == 1.0
