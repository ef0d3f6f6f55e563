"""Map files: an exact round trip of the map's state, readable as a scene file, continuing as the original."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from eps3d_ros.io.scene_file import SceneFileError, load_scene, read_scene_header, save_scene
from eps3d_ros.io.map_file import load_map, save_map
from eps3d_ros.mapping import MapConfig, ObjectMap
from helpers.mapping_world import TEXT, Thing, map_config, ring, table_world, window


def around(world, start: float, stamp: float, **kw):
    return window(world, *ring((0.1, 0.0, 0.0), 1.5, 1.0, 3, start_deg=start), stamp=stamp, seed=int(stamp), **kw)


def history(m: ObjectMap) -> None:
    """Three windows, the last without the mug at the origin: one thing carries a miss."""
    w = table_world()
    m.integrate(around(w, 0, 1.0))
    m.integrate(around(w, 120, 2.5))
    m.integrate(around(w.without(0), 240, 4.0))


def test_round_trip_is_exact(tmp_path) -> None:
    cfg = map_config(max_points_per_object=150, remove_after_misses=3)
    m = ObjectMap(cfg)
    history(m)
    assert any(o.misses == 1 for o in m.objects)
    path = save_map(tmp_path / "room.eps3d", m)
    back = load_map(path, text_encoder=TEXT)
    assert [o.id for o in back.objects] == [o.id for o in m.objects] and back.next_id == m.next_id
    for a, b in zip(m.objects, back.objects):
        assert (a.label, a.is_thing, a.observations, a.first_seen, a.last_seen, a.misses, a.point_count) == \
               (b.label, b.is_thing, b.observations, b.first_seen, b.last_seen, b.misses, b.point_count)
        assert a.score == b.score and a.voxel_size == b.voxel_size and a.evidence_weight == b.evidence_weight
        assert a.class_evidence == b.class_evidence
        np.testing.assert_array_equal(a.centroid, b.centroid)  # exact, within 1e-6 a fortiori
        for f in ("points", "colors", "point_weights", "embedding", "aabb_min", "aabb_max"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
        np.testing.assert_array_equal(a.obb.rotation, b.obb.rotation)
    sa, sb = m.stats(), back.stats()
    assert {k: sa[k] for k in ("objects", "things", "points", "windows", "next_id", "frame_id", "fused")} == \
           {k: sb[k] for k in ("objects", "things", "points", "windows", "next_id", "frame_id", "fused")}
    assert back.config == cfg and back.stamp == m.stamp and back.vocabulary == m.vocabulary
    smaller = load_map(path, config=MapConfig(max_points_per_object=20))
    assert all(o.point_count <= 20 for o in smaller.objects if o.is_thing)
    assert [o.id for o in smaller.objects] == [o.id for o in m.objects]
    # both continue identically: the same ids, misses and removals
    w = table_world().without(0)
    for k in range(3):
        ua, ub = m.integrate(around(w, 60 * k, 10.0 + k)), back.integrate(around(w, 60 * k, 10.0 + k))
        assert (ua.added, ua.updated, ua.removed, ua.missed) == (ub.added, ub.updated, ub.removed, ub.missed)
    assert [(o.id, o.misses) for o in m.objects] == [(o.id, o.misses) for o in back.objects]
    assert [r.object.id for r in m.query("mug")] == [r.object.id for r in back.query("mug")]


def test_a_map_file_is_a_scene_file(tmp_path) -> None:
    m = ObjectMap(map_config())
    history(m)
    path = save_map(tmp_path / "room.eps3d", m)
    sf = load_scene(path)
    assert [o.id for o in sf.scene.objects] == [o.id for o in m.objects]
    assert sf.frame_id == "map" and sf.scale_known and sf.cameras.num_views == 3 and sf.cameras.depth is None
    assert sf.info["map"]["next_id"] == m.next_id and sf.extra["map_point_weights"].shape == (sf.scene.num_gaussians,)
    h = read_scene_header(path)
    assert [o["id"] for o in h["objects"]] == [o.id for o in m.objects]
    # ids are never reused across save/load: the loaded map continues the counter
    back = load_map(path)
    missed = next(o.id for o in back.objects if o.misses == 1)
    w = table_world()
    w.things.append(Thing("box", (-0.6, 0.6, 0.05), 0.05))
    up = back.integrate(around(w, 0, 20.0))
    assert up.added == (m.next_id,)  # the new box
    assert missed in up.updated and back.object_by_id(missed).misses == 0  # the mug at the origin is back
    assert back.text_encoder is TEXT  # the window's encoder is adopted


def test_plain_scene_files_are_not_map_files(tmp_path) -> None:
    snap = around(table_world(), 0, 1.0)
    from eps3d_ros.io.scene_file import scene_file_from_snapshot

    path = save_scene(tmp_path / "scene.eps3d", scene_file_from_snapshot(snap))
    assert load_scene(path).extra == {}  # a scene file without extras loads as before
    with pytest.raises(SceneFileError, match="not a map file"):
        load_map(path)
    with pytest.raises(FileNotFoundError):
        load_map(tmp_path / "missing.eps3d")


def test_empty_and_cleared_maps_round_trip(tmp_path) -> None:
    m = ObjectMap()
    history(m)
    m.clear()
    back = load_map(save_map(tmp_path / "empty.eps3d", m))
    assert back.objects == [] and back.next_id == m.next_id and back.vocabulary == m.vocabulary
    up = back.integrate(around(table_world(), 0, 30.0))
    assert min(up.added) == m.next_id


def test_extra_tensors_need_plain_names(tmp_path) -> None:
    snap = around(table_world(), 0, 1.0)
    from eps3d_ros.io.scene_file import scene_file_from_snapshot

    sf = dataclasses.replace(scene_file_from_snapshot(snap), extra={"a/b": np.zeros(2)})
    with pytest.raises(ValueError, match="extra tensor names"):
        save_scene(tmp_path / "x.eps3d", sf)
    sf = dataclasses.replace(sf, extra={"weights": np.arange(3, dtype=np.int16)})
    back = load_scene(save_scene(tmp_path / "x.eps3d", sf))
    assert back.extra["weights"].dtype == np.int16 and back.extra["weights"].tolist() == [0, 1, 2]
