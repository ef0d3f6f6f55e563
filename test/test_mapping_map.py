"""The object map as a whole: non-metric fallback, queries, relabelling, the map as a scene, bounds, config."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from eps3d_ros.io.scene_file import SceneFile, load_scene, save_scene
from eps3d_ros.mapping import MapConfig, ObjectMap
from eps3d_ros.text import TextEncoderConfig
from eps3d_ros.panoptic.clouds import cloud_points, object_cloud
from helpers.mapping_world import STUFF, TEXT, VOCAB, ring, table_world, window


def around(world, start: float, stamp: float, **kw):
    return window(world, *ring((0.1, 0.0, 0.0), 1.5, 1.0, 3, start_deg=start), stamp=stamp, seed=int(stamp), **kw)


def built(config: MapConfig | None = None, windows=(0, 90, 180, 270)) -> ObjectMap:
    m = ObjectMap(config or MapConfig())
    for k, start in enumerate(windows):
        m.integrate(around(table_world(), start, float(k + 1)))
    return m


def test_without_metric_poses_the_map_holds_the_latest_window_only() -> None:
    m = ObjectMap(MapConfig())
    notes, prev = [], set()
    for k, kw in enumerate([dict(scale_known=False), dict(frame_id="camera_optical"), dict(scale_known=False)]):
        up = m.integrate(around(table_world(), 40 * k, 10.0 + k, **kw))
        assert not up.fused and (up.metric is False)
        assert set(up.removed) == prev and (not prev or min(up.added) > max(prev))
        prev = {o.id for o in m.objects}
        assert prev == set(up.added) and all(o.observations == 1 for o in m.objects)  # only this window
        assert m.frame_id == kw.get("frame_id", "map")  # the objects are in the window's frame
        notes += up.notes
    assert len(notes) == 1 and "latest window only" in notes[0]  # said once
    assert not m.fused and m.stats()["fused"] is False
    # metric: the unfused window is replaced, fusion starts (and says so once)
    up = m.integrate(around(table_world(), 0, 20.0))
    assert up.fused and set(up.removed) == prev and m.frame_id == "map" and len(up.notes) == 1
    up = m.integrate(around(table_world(), 90, 21.0))
    assert up.added == () and up.notes == ()


def test_a_fused_map_is_not_replaced_by_a_window_without_a_metric_pose() -> None:
    """TF missing for a moment (or a window whose scale is unknown) is no evidence about the room: skipped."""
    m = built(windows=(0, 90))
    before = {o.id: o.observations for o in m.objects}
    notes = []
    for k, kw in enumerate([dict(scale_known=False), dict(frame_id="camera_optical")]):
        up = m.integrate(around(table_world(), 40 * k, 30.0 + k, **kw))
        assert up.fused and up.metric is False and up.added == up.removed == up.updated == ()
        notes += up.notes
    assert len(notes) == 1 and "not fused, the map keeps its" in notes[0]
    assert {o.id: o.observations for o in m.objects} == before and m.fused and m.frame_id == "map"
    up = m.integrate(around(table_world(), 180, 40.0))  # metric again: fused as before
    assert up.fused and up.added == () and set(up.updated) <= set(before)


def test_disabled_map_holds_the_latest_window() -> None:
    m = ObjectMap(MapConfig(enabled=False))
    a = m.integrate(around(table_world(), 0, 1.0))
    b = m.integrate(around(table_world(), 0, 2.0))
    assert a.metric and not a.fused and "map.enabled is false" in a.notes[0]
    assert set(b.removed) == set(a.added) and min(b.added) > max(a.added) and b.notes == ()


def test_query_ranks_by_pe3r_min_max() -> None:
    m = built()
    res = m.query("mug", max_results=10)
    assert [r.object.label for r in res[:2]] == ["mug", "mug"] and res[0].score == 1.0
    assert len(res) == len(m.objects) and res[-1].score == 0.0
    assert all(a.score >= b.score for a, b in zip(res, res[1:]))
    t = TEXT.encode(["mug"])[0].numpy()
    for r in res:
        assert r.similarity == pytest.approx(float(r.object.embedding @ t), abs=1e-5)
    assert [r.object.label for r in m.query("lamp", max_results=1)] == ["lamp"]
    assert all(r.score >= 0.5 for r in m.query("ball", max_results=10, min_score=0.5))
    by_emb = m.query(torch.from_numpy(t), max_results=3)
    assert [r.object.id for r in by_emb] == [r.object.id for r in res[:3]]
    # the map as a scene answers the same
    scene_res = m.to_scene().query("mug", max_results=10, min_relevance=0.0)
    assert [r.object.id for r in scene_res] == [r.object.id for r in res]
    np.testing.assert_allclose([r.score for r in scene_res], [r.score for r in res], atol=1e-5)
    with pytest.raises(ValueError, match="empty query"):
        m.query("  ")
    with pytest.raises(ValueError, match="map's text space"):
        m.query(np.ones(7))
    assert ObjectMap().query(np.ones(3)) == []
    with pytest.raises(RuntimeError, match="no text encoder"):
        ObjectMap().query("mug")


def test_relabel_uses_the_fused_embeddings() -> None:
    m = built()
    before = {o.id: o for o in m.objects}
    # "cup" is what the map called "mug"; "lamp" is now stuff; "wall" is no longer in the vocabulary
    vocab = ["floor", "table", "cup", "ball", "box", "bowl", "lamp"]
    protos = TEXT.prototypes(["floor", "table", "mug", "ball", "box", "bowl", "lamp"])
    up = m.relabel(vocab, ["floor", "table", "lamp"], protos)
    after = {o.id: o for o in m.objects}
    for i, o in before.items():
        if o.label == "mug":
            assert after[i].label == "cup" and after[i].is_thing and after[i].observations == o.observations
            np.testing.assert_array_equal(after[i].points, o.points)
        if o.label == "lamp":
            assert not after[i].is_thing and after[i].label == "lamp"
    assert set(after[i].label for i in after) <= set(vocab)
    assert len([o for o in m.objects if not o.is_thing and o.label == "floor"]) == 1
    assert {i for i in before if before[i].label in ("mug", "lamp")} <= set(up.updated)
    assert sum(after[i].class_evidence.values()) == pytest.approx(after[i].evidence_weight)
    assert m.vocabulary == tuple(vocab)
    # a window in the old vocabulary relabels the map back first (and says so), then fuses: the same ids
    up = m.integrate(around(table_world(), 0, 9.0))
    assert up.added == () and any("vocabulary" in n for n in up.notes)
    assert {o.id: o.label for o in m.objects if o.is_thing} == {i: o.label for i, o in before.items() if o.is_thing}
    with pytest.raises(ValueError, match="prototypes must be"):
        m.relabel(vocab, [], protos[:3])


def test_to_scene_works_with_clouds_and_scene_files(tmp_path) -> None:
    m = built()
    scene = m.to_scene()
    objs = {o.id: o for o in m.objects}
    assert [o.id for o in scene.objects] == sorted(objs)
    assert scene.num_gaussians == sum(o.point_count for o in objs.values())
    for so in scene.objects:
        o = objs[so.id]
        assert so.label == o.label and so.is_thing == o.is_thing and scene.vocabulary[so.label_id] == o.label
        np.testing.assert_array_equal(scene.means[so.indices], o.points)
        np.testing.assert_array_equal(so.centroid, o.centroid)
    cloud = cloud_points(scene, "instance")
    assert set(np.unique(cloud["instance"])) == {0} | {o.id for o in objs.values() if o.is_thing}
    sem = cloud_points(scene, "semantic")
    floor = next(o for o in objs.values() if o.label == "floor")
    assert np.all(sem["label"][scene.objects[[s.id for s in scene.objects].index(floor.id)].indices]
                  == VOCAB.index("floor"))
    assert len(object_cloud(scene, scene.objects[0])) == scene.objects[0].num_points
    path = save_scene(tmp_path / "map_scene.eps3d", SceneFile(
        scene=scene, cameras=m.cameras, frame_id="map", scale_known=True, stamp=m.stamp,
        text_encoder=TextEncoderConfig(model="fake", pretrained="")))
    back = load_scene(path)
    assert [o.id for o in back.scene.objects] == [o.id for o in scene.objects]
    np.testing.assert_array_equal(back.scene.means, scene.means)
    # per-point relevance through the class-prototype space: mug points are the most relevant to "mug"
    rel = dataclasses.replace(scene, text_encoder=TEXT).relevance("mug")
    mugs = np.concatenate([s.indices for s in scene.objects if s.label == "mug"])
    assert rel[mugs].min() > np.delete(rel, mugs).max()
    with pytest.raises(ValueError, match="not integrated any window"):
        ObjectMap().to_scene()


def test_memory_stops_growing_when_the_same_windows_come_again() -> None:
    m = ObjectMap(MapConfig())
    snaps = [around(table_world(), s, float(k + 1)) for k, s in enumerate((0, 90, 180, 270))]
    per_pass = []
    for loop in range(3):
        for k, s in enumerate(snaps):
            m.integrate(dataclasses.replace(s, stamp=100.0 * loop + k))
        st = m.stats()
        per_pass.append((st["objects"], st["points"], st["bytes"]))
    assert per_pass[1] == per_pass[2] and per_pass[0][:2] == per_pass[1][:2]
    assert per_pass[2][2] <= per_pass[0][2] * 1.05


def test_with_pose_noise_memory_is_held_by_the_budgets() -> None:
    """Windows with 1 cm pose noise spread surfaces over more voxels each pass (the voxel union of noisy
    surfaces and of sparsely sampled far floor only saturates slowly); the point budgets cap it, and no
    object is duplicated."""
    cfg = MapConfig(max_points_per_object=100, max_stuff_points=1000)
    m = ObjectMap(cfg)
    rng = np.random.default_rng(0)
    held = []
    for loop in range(4):
        for k, s in enumerate((0, 90, 180, 270)):
            m.integrate(around(table_world(), s, 100.0 * loop + k, offset=tuple(rng.normal(0, 0.01, 3))))
        st = m.stats()
        assert st["objects"] == 8 and all(o.observations == 4 * (loop + 1) for o in m.objects)
        held.append(st["points"])
    assert max(held) <= 6 * 100 + 2 * 1000
    assert held[3] <= 1.05 * held[1]  # at the caps from the second pass on


def test_max_objects_drops_the_least_observed_then_the_longest_unseen() -> None:
    m = ObjectMap(MapConfig())
    w = table_world()
    m.integrate(around(w, 0, 1.0))
    # close-up windows of the lamp and the ball only: they get more observations
    for k in range(2):
        m.integrate(window(w, [(0.6, 0.6, 0.5), (-0.4, 0.3, 0.5)], [(0.6, 0.6, 0.1), (-0.4, 0.3, 0.1)], stamp=2.0 + k))
    obs = {o.id: o.observations for o in m.objects if o.is_thing}
    assert sorted(obs.values()) == [1, 1, 1, 1, 3, 3]
    up = m.set_config(MapConfig(max_objects=3))
    things = [o for o in m.objects if o.is_thing]
    assert len(things) == 3 and len(up.removed) == 3
    kept = {o.id for o in things}
    assert {i for i, n in obs.items() if n == 3} <= kept  # the observed ones stay
    ones = sorted(i for i, n in obs.items() if n == 1)
    assert kept - {i for i, n in obs.items() if n == 3} == {ones[0]}  # ties: the newest go first
    assert len([o for o in m.objects if not o.is_thing]) >= 1  # stuff does not count


def test_set_config_applies_budgets_now_and_validates() -> None:
    m = built()
    up = m.set_config(MapConfig(max_points_per_object=30, max_stuff_points=200))
    assert all(o.point_count <= (30 if o.is_thing else 200) for o in m.objects) and up.updated
    with pytest.raises(ValueError, match="map.voxel_size"):
        m.set_config(MapConfig(voxel_size=0.0))
    for bad, field in ((dict(max_objects=0), "max_objects"), (dict(min_overlap=1.5), "min_overlap"),
                       (dict(remove_after_misses=2.5), "remove_after_misses"),
                       (dict(visibility_min_range=5.0), "visibility_min_range"),
                       (dict(label_mismatch_overlap=0.1), "label_mismatch_overlap"),
                       (dict(enabled="yes"), "enabled"), (dict(min_visible_pixels=-1), "min_visible_pixels")):
        with pytest.raises(ValueError, match=field):
            MapConfig(**bad).validate()
    for f in dataclasses.fields(MapConfig):  # every field is a ROS-parameter type
        assert isinstance(getattr(MapConfig(), f.name), (bool, int, float, str))


def test_published_objects_never_change_under_a_reader() -> None:
    m = built(windows=(0,))
    held = m.objects
    snapshot = [(o.id, o.observations, o.points.copy()) for o in held]
    m.integrate(around(table_world(), 90, 5.0))
    assert [(o.id, o.observations) for o in held] == [(i, n) for i, n, _ in snapshot]
    for o, (_, _, p) in zip(held, snapshot):
        np.testing.assert_array_equal(o.points, p)
        assert not o.points.flags.writeable and not o.embedding.flags.writeable
    assert m.objects is not m.objects and m.version == 2
    st = m.stats()
    assert st["windows"] == 2 and st["things"] == 6 and st["stuff_classes"] == st["objects"] - 6
    assert st["bytes"] >= sum(o.points.nbytes + o.colors.nbytes for o in m.objects)


def test_bad_input_is_named() -> None:
    m = ObjectMap()
    with pytest.raises(TypeError, match="SceneSnapshot"):
        m.integrate(object())
    snap = around(table_world(), 0, 1.0)
    with pytest.raises(ValueError, match="stamp"):
        m.integrate(dataclasses.replace(snap, stamp=float("nan")))
    with pytest.raises(ValueError, match="map_frame"):
        ObjectMap(map_frame="")
    m.integrate(snap)
    other_space = dataclasses.replace(snap, scene=dataclasses.replace(snap.scene, prototypes=torch.ones(len(VOCAB), 5)))
    with pytest.raises(ValueError, match="text space has 5 dimensions but the map's has 16"):
        m.integrate(other_space)
    m.clear()  # as the message says: an empty map takes any text space
    assert m.integrate(around(table_world(), 0, 2.0)).added
    assert sorted(m.stuff) == sorted(STUFF)


def test_readers_never_wait_for_or_see_half_an_update() -> None:
    """Queries, stats and scenes from another thread while windows are fused: always one consistent state."""
    import threading

    m = built(windows=(0,))
    snaps = [around(table_world(), s, 10.0 + k) for k, s in enumerate((45, 90, 135, 180, 225, 270))]
    errors, seen = [], set()
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                objs = m.objects
                assert [o.id for o in objs] == sorted(o.id for o in objs)
                res = m.query("mug", max_results=50)
                assert len(res) <= 8 and res[0].score == 1.0
                st = m.stats()
                assert st["objects"] == st["things"] + st["stuff_classes"]
                seen.add(st["version"])
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    t = threading.Thread(target=read)
    t.start()
    for s in snaps:
        m.integrate(s)
    stop.set()
    t.join(timeout=30)
    assert not errors and not t.is_alive() and len(seen) >= 1
