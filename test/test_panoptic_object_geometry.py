"""Objects that are where they are: geometry from an object's densest cluster, over-split instances merged.

``GroupNeighbours.densest_component`` (geometry), ``merge_clusters`` (merging) and both inside
``assemble_scene``: a chair cut into two clusters with a detached piece comes out as one object whose box
is the chair's; a second chair of the same class elsewhere and a mug touching the chair stay apart.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eps3d_ros.panoptic import PanopticConfig, SemanticSpace
from eps3d_ros.panoptic.build import assemble_scene
from eps3d_ros.panoptic.geometry import grouped_neighbours
from eps3d_ros.panoptic.merging import merge_clusters
from helpers.scenes import FixedPrototypes


def box_points(rng, lo, hi, n) -> np.ndarray:
    return rng.uniform(lo, hi, size=(n, 3))


def test_densest_component_keeps_the_main_blob_not_a_detached_piece() -> None:
    rng = np.random.default_rng(0)
    blob = box_points(rng, [0, 0, 0], [0.5, 0.5, 0.5], 3000)
    piece = box_points(rng, [2.0, 0, 0], [2.15, 0.15, 0.15], 80)  # as dense, but 1.5 m away
    small = box_points(rng, [5, 5, 5], [5.1, 5.1, 5.1], 10)  # a group too small to search: kept whole
    pts = np.concatenate([blob, piece, small])
    groups = np.concatenate([np.zeros(len(blob) + len(piece), int), np.full(len(small), 7)])
    nb = grouped_neighbours(pts, groups, k=16)
    core = nb.densest_component(2.0)
    assert core[:len(blob)].all() and not core[len(blob):len(blob) + len(piece)].any()
    assert core[-len(small):].all()
    assert nb.spacing[0] > 0 and nb.spacing[1] == 0  # the small group has no statistics
    # link factor 0: everything kept; a mask of kept points is respected
    assert nb.densest_component(0.0).all()
    keep = np.ones(len(pts), bool)
    keep[:5] = False
    assert not nb.densest_component(2.0, keep=keep)[:5].any()


def test_merge_needs_one_class_close_features_and_contact() -> None:
    rng = np.random.default_rng(1)
    lower = box_points(rng, [0, 0, 0], [0.5, 0.5, 0.45], 1500)
    upper = box_points(rng, [0, 0, 0.45], [0.5, 0.5, 0.9], 1500)  # touches lower along z = 0.45
    far = box_points(rng, [3, 0, 0], [3.5, 0.5, 0.9], 1500)
    pts = np.concatenate([lower, upper, far])
    cluster = np.repeat([0, 1, 2], 1500)
    code = rng.normal(size=(3, 32))
    same = np.repeat(code[[0, 0, 0]], 1500, axis=0) + 0.3 * rng.normal(size=(4500, 32))
    spacing = grouped_neighbours(pts, cluster, k=16).spacing
    core = np.ones(len(pts), bool)
    kw = dict(min_similarity=0.6, contact_factor=1.0, min_contact=0.02)
    # same class, same features, touching: lower and upper merge; the far one (same class) does not
    assert merge_clusters(pts, same, cluster, core, np.array([1, 1, 1]), spacing, **kw).tolist() == [0, 0, 1]
    # different classes never merge
    assert merge_clusters(pts, same, cluster, core, np.array([1, 2, 1]), spacing, **kw).tolist() == [0, 1, 2]
    # unrelated instance features never merge
    other = np.repeat(code[[0, 1, 2]], 1500, axis=0) + 0.3 * rng.normal(size=(4500, 32))
    assert merge_clusters(pts, other, cluster, core, np.array([1, 1, 1]), spacing, **kw).tolist() == [0, 1, 2]
    # a negative label (not a thing) never merges
    assert merge_clusters(pts, same, cluster, core, np.array([-1, -1, 1]), spacing, **kw).tolist() == [0, 1, 2]


def split_chair_scene(merge: bool):
    rng = np.random.default_rng(2)
    vocab = ["floor", "chair", "mug"]
    parts = [  # (points, cluster id, label index, instance code index)
        (box_points(rng, [0, 0, 0], [0.5, 0.5, 0.45], 1500), 1, 1, 0),  # chair A, lower half
        (box_points(rng, [0, 0, 0.45], [0.5, 0.5, 0.9], 1500), 2, 1, 0),  # chair A, upper half
        (box_points(rng, [2.0, 0, 0], [2.12, 0.12, 0.12], 60), 1, 1, 0),  # detached piece in chair A's cluster
        (box_points(rng, [4, 0, 0], [4.5, 0.5, 0.9], 2000), 3, 1, 1),  # chair B
        (box_points(rng, [0.5, 0.2, 0.45], [0.6, 0.3, 0.55], 300), 4, 2, 2),  # a mug touching chair A
        (box_points(rng, [-1, -1, -0.05], [5, 2, 0], 4000), 0, 0, 3),  # floor
    ]
    code = rng.normal(size=(4, 32))
    means = np.concatenate([p for p, *_ in parts]).astype(np.float32)
    cids = np.concatenate([np.full(len(p), c) for p, c, _, _ in parts])
    labels = np.concatenate([np.full(len(p), lab) for p, _, lab, _ in parts])
    ins = np.concatenate([code[k] + 0.3 * rng.normal(size=(len(p), 32)) for p, _, _, k in parts]).astype(np.float32)
    n = len(means)
    cfg = PanopticConfig(vocabulary=vocab, stuff=["floor"], min_object_points=20, merge_instances=merge)
    g = torch.Generator().manual_seed(0)
    sp = SemanticSpace(torch.randn(512, 32, generator=g) / 32**0.5, torch.zeros(512))
    return assemble_scene(means=means, opacities=np.full(n, 0.9, np.float32), colors=np.zeros_like(means),
                          weights=np.ones(n, np.float32), semantic_features=rng.normal(size=(n, 32)).astype(np.float32),
                          instance_features=ins, cluster_ids=cids, space=sp, text_encoder=FixedPrototypes(vocab),
                          config=cfg, labelled=(labels, np.ones(n, np.float32)))


def test_a_split_chair_is_one_object_with_the_chairs_box() -> None:
    scene = split_chair_scene(merge=True)
    chairs = [o for o in scene.objects if o.label == "chair"]
    mugs = [o for o in scene.objects if o.label == "mug"]
    assert len(chairs) == 2 and len(mugs) == 1
    a = min(chairs, key=lambda o: o.centroid[0])
    size = a.aabb_max - a.aabb_min
    np.testing.assert_allclose(size, [0.5, 0.5, 0.9], atol=0.03)  # the detached piece 1.5 m away is left out
    np.testing.assert_allclose(a.centroid, [0.25, 0.25, 0.45], atol=0.03)
    assert a.num_points == 3060  # ... but its Gaussians still belong to the object (labels, queries)
    np.testing.assert_allclose(mugs[0].aabb_max - mugs[0].aabb_min, [0.1, 0.1, 0.1], atol=0.01)


def test_without_merging_the_halves_stay_two_objects() -> None:
    scene = split_chair_scene(merge=False)
    assert sum(o.label == "chair" for o in scene.objects) == 3


def test_config_rejects_bad_merge_settings() -> None:
    for bad in ({"merge_min_similarity": 1.5}, {"merge_min_contact": -0.1}, {"core_link_factor": -1.0}):
        with pytest.raises(ValueError):
            PanopticConfig(vocabulary=["a"], **bad).validate()
