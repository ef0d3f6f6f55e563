"""Matching found objects to true ones (eval.object_match): same class, nearest first, one partner each."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.eval.object_match import TrueObject, match_objects, true_objects


def found(id_, label, centroid, size=(0.2, 0.2, 0.2), thing=True):
    c = np.asarray(centroid, dtype=np.float64)
    half = np.asarray(size) / 2
    return SimpleNamespace(id=id_, label=label, is_thing=thing, centroid=c, aabb_min=c - half, aabb_max=c + half)


def truth(name, label, centroid, extent=(0.2, 0.2, 0.2)):
    return TrueObject(name, label, np.asarray(centroid, dtype=np.float64), np.asarray(extent, dtype=np.float64))


def test_two_true_chairs_never_share_one_found_chair_and_nearest_pairs_go_first() -> None:
    t = [truth("orange chair", "chair", [0, 0, 0]), truth("white chair", "chair", [1, 0, 0])]
    # found #1 is nearest to both; the orange chair is nearer (0.1 m) so it takes #1, the white chair gets #2
    f = [found(1, "chair", [0.1, 0, 0]), found(2, "chair", [1.3, 0, 0])]
    matches, extras = match_objects(f, t)
    assert [(m.truth.name, m.found_id) for m in matches] == [("orange chair", 1), ("white chair", 2)]
    assert matches[0].error == pytest.approx(0.1) and matches[1].error == pytest.approx(0.3)
    assert extras == []


def test_other_classes_stuff_and_far_objects_do_not_match_and_extras_are_listed() -> None:
    t = [truth("red mug", "mug", [0, 0, 0]), truth("blue book", "book", [2, 0, 0])]
    f = [found(1, "bowl", [0, 0, 0]), found(2, "mug", [0.6, 0, 0]), found(3, "mug", [0, 0, 0], thing=False),
         found(4, "book", [2, 0.1, 0], size=(0.6, 0.2, 0.1))]
    matches, extras = match_objects(f, t, max_distance=0.5)
    assert matches[0].found_id is None and np.isnan(matches[0].error) and np.isnan(matches[0].box_ratio)
    assert matches[1].found_id == 4 and matches[1].box_ratio == pytest.approx(3.0)  # 0.6 m vs 0.2 m wide
    assert extras == [1, 2]  # the stuff segment is never an extra
    with pytest.raises(ValueError, match="max_distance"):
        match_objects(f, t, max_distance=0)


def test_true_objects_follow_the_given_world_to_frame_transform() -> None:
    scene = generate_scene(seed=100_000, num_views=2, height=56, width=56)
    world = true_objects(scene)
    assert world and all(o.label in scene.class_names for o in world)
    names = {f"{o.colour} {o.class_name}" for o in scene.objects}
    assert {o.name for o in world} <= names
    a = np.deg2rad(30.0)
    T = np.eye(4)
    T[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    T[:3, 3] = [1.0, -2.0, 0.5]
    moved = true_objects(scene, T)
    for w, m in zip(world, moved):
        np.testing.assert_allclose(m.centroid, T[:3, :3] @ w.centroid + T[:3, 3], atol=1e-9)
    # the oracle: objects at the true centroids match every true object with zero error
    f = [found(i + 1, o.label, o.centroid, o.extent) for i, o in enumerate(world)]
    matches, extras = match_objects(f, world)
    assert all(m.found_id == i + 1 and m.error == 0.0 and m.box_ratio == pytest.approx(1.0)
               for i, m in enumerate(matches)) and extras == []
