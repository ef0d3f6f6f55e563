"""Association and fusion across windows: stable ids, fused geometry/embeddings/labels, stuff per class, merging."""

from __future__ import annotations

import numpy as np
import pytest

from eps3d_ros.mapping import MapConfig, MapObject, ObjectMap
from eps3d_ros.mapping.association import KeyCache, associate
from eps3d_ros.mapping.detections import window_detections
from helpers.mapping_world import TEXT, Thing, World, map_config, ring, table_world, window

CENTRE = (0.1, 0.0, 0.0)


def around(world: World, start: float, stamp: float, **kw):
    """A window of 3 cameras on a 90° arc starting at ``start`` degrees, 1.5 m from the table, 1 m up."""
    return window(world, *ring(CENTRE, 1.5, 1.0, 3, start_deg=start), stamp=stamp, seed=int(stamp), **kw)


def things(m: ObjectMap) -> list[MapObject]:
    return [o for o in m.objects if o.is_thing]


def nearest(m: ObjectMap, centre, label: str | None = None) -> MapObject:
    cands = [o for o in things(m) if label is None or o.label == label]
    return min(cands, key=lambda o: np.linalg.norm(o.centroid[:2] - np.asarray(centre)[:2]))


def test_two_windows_with_small_offsets_keep_the_ids() -> None:
    w = table_world()
    m = ObjectMap(MapConfig())
    a = m.integrate(around(w, 0, 1.0))
    first = {o.id: o for o in m.objects}
    assert len(a.added) == 8 and a.metric and a.fused  # 6 things, floor and wall
    b = m.integrate(around(w, 60, 2.0, offset=(0.015, -0.01, 0.005)))
    assert b.added == () and b.removed == () and dict(b.merged) == {}
    assert set(b.updated) == set(first)
    for o in m.objects:
        assert o.observations == 2 and o.first_seen == 1.0 and o.last_seen == 2.0 and o.misses == 0
        assert o.label == first[o.id].label
    # each true thing is one map thing, at most a radius from its centre (surface points of a visible cap)
    for t in w.things:
        o = nearest(m, t.centre)
        assert o.label == t.label and np.linalg.norm(o.centroid[:2] - np.asarray(t.centre)[:2]) < t.radius
    assert len(things(m)) == len(w.things)


def test_fusion_of_views_from_around_recovers_the_centre() -> None:
    """Each window sees one side; the fused voxel union is centred on the object."""
    w = table_world()
    m = ObjectMap(MapConfig())
    single = []
    for k, start in enumerate((0, 90, 180, 270)):
        snap = around(w, start, float(k + 1))
        mug = min((o for o in snap.scene.objects if o.label == "mug"), key=lambda o: np.linalg.norm(o.centroid[:2]))
        single.append(float(np.linalg.norm(mug.centroid[:2])))
        m.integrate(snap)
    fused = nearest(m, (0.0, 0.0, 0.08), "mug")
    fused_err = float(np.linalg.norm(fused.centroid[:2]))
    assert min(single) > 0.015  # one side only: the centroid leans towards the cameras
    assert fused_err < 0.006 and fused.observations == 4
    # its points are the union of the sides, at most one per 2 cm voxel
    assert fused.point_count > 2 * len(window_detections(around(w, 0, 9.0).scene, MapConfig())[0].voxels) / 4
    keys = np.floor(fused.points / fused.voxel_size + 0.5).astype(np.int64)  # voxels centred on multiples
    assert len(np.unique(keys, axis=0)) == fused.point_count


def test_point_budgets_bound_every_object() -> None:
    w = table_world()
    cfg = MapConfig(max_points_per_object=40, max_stuff_points=300)
    m = ObjectMap(cfg)
    for k, start in enumerate((0, 90, 180, 270)):
        m.integrate(around(w, start, float(k + 1)))
    for o in m.objects:
        assert o.point_count <= (40 if o.is_thing else 300)
        assert o.points.shape == (o.point_count, 3) and o.points.dtype == np.float32
        assert o.colors.shape == (o.point_count, 3) and o.point_weights.shape == (o.point_count,)
    lamp = nearest(m, (0.6, 0.6, 0.12))
    assert lamp.voxel_size > cfg.voxel_size  # the grid grew to fit the budget
    floor = next(o for o in m.objects if o.label == "floor")
    assert floor.voxel_size > cfg.stuff_voxel_size


def test_new_object_gets_a_new_id_and_ids_are_never_reused() -> None:
    w = table_world()
    m = ObjectMap(map_config(remove_after_misses=1))
    m.integrate(around(w, 0, 1.0))
    ids = {o.id for o in m.objects}
    w2 = World(w.things + [Thing("ball", (0.2, 0.3, 0.06), 0.06)])
    up = m.integrate(around(w2, 0, 2.0))
    assert up.added == (max(ids) + 1,) and set(up.updated) == ids
    assert nearest(m, (0.2, 0.3)).id == max(ids) + 1
    # the new ball is taken away again: forgotten at once (K = 1); a later new object does not reuse its id
    up = m.integrate(around(w, 0, 3.0))
    assert up.removed == (max(ids) + 1,)
    up = m.integrate(around(World(w.things + [Thing("box", (0.2, 0.3, 0.06), 0.06)]), 0, 4.0))
    assert up.added == (max(ids) + 2,)
    cleared = m.clear()
    assert set(cleared.removed) == ids | {max(ids) + 2} and m.objects == []
    up = m.integrate(around(w, 0, 5.0))
    assert min(up.added) == max(ids) + 3  # after clear() too


def test_stuff_is_one_object_per_class() -> None:
    w = table_world()
    m = ObjectMap(MapConfig())
    m.integrate(around(w, 0, 1.0))
    stuff = {o.label: o for o in m.objects if not o.is_thing}
    assert "floor" in stuff
    # a window facing the wall: the wall and floor regions are fused into their class objects
    facing_wall = window(w, [(1.0, -0.5, 1.2), (1.0, 0.5, 1.2)], [(3.0, -0.5, 0.8), (3.0, 0.5, 0.8)], stamp=2.0)
    up = m.integrate(facing_wall)
    stuff2 = {o.label: o for o in m.objects if not o.is_thing}
    assert set(stuff2) == {"floor", "wall"} and stuff2["floor"].id == stuff["floor"].id
    if "wall" in stuff:
        assert stuff2["wall"].id == stuff["wall"].id
    else:
        assert up.added == (stuff2["wall"].id,)
    assert stuff2["floor"].observations == 2 and stuff2["floor"].point_count > stuff["floor"].point_count
    # the wall's points lie on the wall plane, the floor's on the floor
    assert np.abs(stuff2["wall"].points[:, 0] - 3.0).max() < 1e-4
    assert np.abs(stuff2["floor"].points[:, 2]).max() < 1e-4


def test_embeddings_are_fused_by_area_weighted_slerp() -> None:
    """A second detection with another embedding moves the map embedding by its share of the area."""
    w = World([Thing("mug", (0.0, 0.0, 0.08))])
    m = ObjectMap(MapConfig())
    m.integrate(around(w, 0, 1.0))
    before = nearest(m, (0, 0))
    snap = around(w, 0, 2.0, features={0: {"mug": 0.8, "bowl": 0.6}})
    det = next(d for d in window_detections(snap.scene, m.config) if d.is_thing)
    m.integrate(snap)
    after = nearest(m, (0, 0))
    assert after.id == before.id
    a, b = before.embedding.astype(np.float64), det.embedding
    theta = np.arccos(np.clip(a @ b, -1, 1))
    t = det.area / (before.evidence_weight + det.area)
    expected = (np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / np.sin(theta)
    np.testing.assert_allclose(after.embedding, expected, atol=1e-5)
    assert abs(np.linalg.norm(after.embedding) - 1) < 1e-6
    assert after.evidence_weight == pytest.approx(before.evidence_weight + det.area)


def test_a_flipping_label_keeps_the_id_and_the_evidence_decides() -> None:
    w = World([Thing("mug", (0.0, 0.0, 0.08))])
    m = ObjectMap(MapConfig())
    m.integrate(around(w, 0, 1.0))
    m.integrate(around(w, 60, 2.0))
    mug = things(m)[0]
    # the panoptic stage calls it a bowl in the third window (its embedding still close to the mug's)
    up = m.integrate(around(w, 30, 3.0, features={0: {"mug": 0.7, "bowl": 0.72}}))
    assert up.added == () and up.updated == (mug.id,) or mug.id in up.updated
    o = things(m)[0]
    assert o.id == mug.id and o.label == "mug" and set(o.class_evidence) == {"mug", "bowl"}
    assert o.class_evidence["bowl"] < o.class_evidence["mug"]
    assert o.score == pytest.approx(o.class_evidence["mug"] / o.evidence_weight)
    # an unrelated embedding at the same place is not the same object
    cfg = m.config
    snap = around(w, 30, 4.0, features={0: {"lamp": 1.0}})
    dets = window_detections(snap.scene, cfg)
    assert associate(dets, things(m), cfg, KeyCache()) == []


def test_association_is_optimal_and_one_to_one() -> None:
    """Two mugs side by side, seen with an offset towards each other: each keeps its own id."""
    w = World([Thing("mug", (0.0, 0.0, 0.06), 0.06), Thing("mug", (0.14, 0.0, 0.06), 0.06)])
    m = ObjectMap(MapConfig())
    m.integrate(around(w, 0, 1.0))
    ids = {round(float(o.centroid[0]), 1): o.id for o in things(m)}
    assert len(ids) == 2
    up = m.integrate(around(w, 45, 2.0, offset=(0.04, 0.0, 0.0)))  # shifted by 4 cm: part-way to the neighbour
    assert up.added == () and len(things(m)) == 2
    for x, i in ids.items():
        assert nearest(m, (x + 0.02, 0.0)).id == i


def test_merging_keeps_the_older_id() -> None:
    """A thing seen as its low half, then over-segmented into two halves (the high half becomes a second
    object: the low one is taken), then whole: one object, the older id."""
    w = World([Thing("ball", (0.0, 0.0, 0.15), 0.15)])
    m = ObjectMap(MapConfig())
    m.integrate(around(w, 0, 1.0, split={0: (0.0, "low")}))
    older = things(m)[0]
    up = m.integrate(around(w, 0, 2.0, split={0: (0.0, "both")}))
    assert len(up.added) == 1 and len(things(m)) == 2  # the halves barely overlap: two objects
    newer = next(o for o in things(m) if o.id != older.id)
    assert newer.id > older.id
    up = m.integrate(around(w, 0, 3.0))
    assert dict(up.merged) == {newer.id: older.id} and newer.id not in up.removed
    (o,) = things(m)
    assert o.id == older.id and o.first_seen == 1.0 and o.last_seen == 3.0
    assert o.points[:, 0].min() < -0.05 and o.points[:, 0].max() > 0.05  # both halves
    # one window over-segmenting it into two: fused back at once, no new id shows up
    up = m.integrate(around(w, 0, 4.0, split={0: (0.0, "both")}))
    assert up.added == () and dict(up.merged) == {} and [x.id for x in things(m)] == [older.id]
    assert m.next_id == newer.id + 2  # the short-lived id was still used up


def test_detections_follow_the_scene() -> None:
    snap = around(table_world(), 0, 1.0)
    cfg = MapConfig()
    dets = window_detections(snap.scene, cfg)
    assert [d.label for d in dets] == [o.label for o in snap.scene.objects]
    for d, o in zip(dets, snap.scene.objects):
        assert d.voxel_size == (cfg.voxel_size if o.is_thing else cfg.stuff_voxel_size)
        assert d.area == len(d.voxels) and d.voxels.weights.sum() == o.num_points
        np.testing.assert_allclose(d.embedding, o.embedding, atol=1e-6)
    assert TEXT.encode("mug").shape == (1, 16)


def test_pca_box_is_the_panoptic_box() -> None:
    from eps3d_ros.mapping.map_object import pca_box
    from eps3d_ros.panoptic.geometry import oriented_box

    rng = np.random.default_rng(3)
    for pts in (rng.normal(size=(500, 3)) * [0.3, 0.1, 0.02] + [1.0, 2.0, 0.5], rng.normal(size=(2, 3)),
                rng.uniform(size=(40, 3))):
        a, b = pca_box(pts), oriented_box(pts)
        np.testing.assert_allclose(a.center, b.center, atol=1e-9)
        np.testing.assert_allclose(a.extent, b.extent, atol=1e-9)
        np.testing.assert_allclose(np.abs(a.rotation), np.abs(b.rotation), atol=1e-7)  # axes up to sign
        assert np.linalg.det(a.rotation) == pytest.approx(1.0)


@pytest.mark.parametrize("r", [0.03, 0.1, 0.3])
def test_opposite_views_of_a_thing_are_one_object(r: float) -> None:
    """Front and back share no surface; the same label close enough (proximity) still makes them one object,
    while a same-label neighbour 1 cm away stays another; the fused centroid is the true centre."""
    w = World([Thing("mug", (0.0, 0.0, r), r), Thing("mug", (0.0, 2 * r + 0.01, r), r)], wall=False)
    m = ObjectMap(MapConfig())
    a = m.integrate(window(w, [(1.2, 0.0, r)], [(0.0, 0.0, r)], stamp=1.0, height=96, width=128))
    b = m.integrate(window(w, [(-1.2, 0.0, r)], [(0.0, 0.0, r)], stamp=2.0, height=96, width=128))
    assert len(a.added) == 3 and b.added == () and len(things(m)) == 2
    first = nearest(m, (0.0, 0.0))
    assert first.observations == 2 and np.linalg.norm(first.centroid - [0.0, 0.0, r]) < 0.1 * r
