"""Forgetting with evidence: a thing whose place is seen K times without a detection goes; one out of view,
out of range or occluded stays."""

from __future__ import annotations

import dataclasses

import numpy as np

from eps3d_ros.mapping import MapConfig, ObjectMap
from eps3d_ros.mapping.visibility import points_seen, seen_places, silhouette_pixels, zbuffer
from helpers.mapping_world import Thing, World, map_config, ring, table_world, window

MUG = 0  # index of the mug at the origin in table_world()
MUG_AT = np.array([0.0, 0.0, 0.08])


def around(world: World, start: float, stamp: float, **kw):
    return window(world, *ring((0.1, 0.0, 0.0), 1.5, 1.0, 3, start_deg=start), stamp=stamp, seed=int(stamp), **kw)


def mapped(config: MapConfig | None = None) -> tuple[ObjectMap, int]:
    """A map of the table world seen from two sides, and the id of the mug at the origin."""
    m = ObjectMap(config or map_config())
    w = table_world()
    m.integrate(around(w, 0, 1.0))
    m.integrate(around(w, 180, 2.0))
    mug = min((o for o in m.objects if o.label == "mug"), key=lambda o: np.linalg.norm(o.centroid[:2]))
    return m, mug.id


def test_a_moved_object_is_forgotten_after_k_windows_that_see_its_place() -> None:
    m, mug = mapped(map_config(remove_after_misses=3))
    others = {o.id for o in m.objects} - {mug}
    gone = table_world().without(MUG)
    for k, start in enumerate((0, 90, 200)):
        up = m.integrate(around(gone, start, 3.0 + k))
        assert up.added == () and set(up.updated) == others  # everything else is detected again
        if k < 2:
            assert up.missed == (mug,) and m.object_by_id(mug).misses == k + 1 and up.removed == ()
        else:
            assert up.removed == (mug,) and up.missed == ()
    assert mug not in {o.id for o in m.objects} and {o.id for o in m.objects} == others


def test_a_detection_resets_the_misses() -> None:
    m, mug = mapped(map_config(remove_after_misses=2))
    w, gone = table_world(), table_world().without(MUG)
    for k in range(4):  # gone, back, gone, back: never two misses in a row
        up = m.integrate(around(gone if k % 2 == 0 else w, 30 * k, 3.0 + k))
        assert m.object_by_id(mug).misses == (1 if k % 2 == 0 else 0) and up.removed == ()


def test_an_object_out_of_view_stays_forever() -> None:
    m, mug = mapped(map_config(remove_after_misses=1))
    before = {o.id for o in m.objects}
    gone = World([])  # everything was taken away, but the cameras look at the wall, away from the table
    for k in range(5):
        up = m.integrate(window(gone, [(1.0, -0.5 + 0.2 * k, 1.2)], [(3.0, 0.0, 1.0)], stamp=3.0 + k))
        assert up.removed == () and up.missed == ()
    assert before <= {o.id for o in m.objects}
    assert all(o.misses == 0 for o in m.objects)


def test_an_occluded_object_stays() -> None:
    m, mug = mapped(map_config(remove_after_misses=1))
    # the mug is gone, but a big ball between the camera and its place hides where it was
    rest = table_world().without(MUG).things
    hidden = World([Thing("ball", (0.5, 0.0, 0.24), 0.15)] + rest)
    eye = (1.0, 0.0, 0.4)
    for k in range(3):
        up = m.integrate(window(hidden, [eye], [tuple(MUG_AT)], stamp=3.0 + k))
        assert up.removed == () and mug not in up.missed
    assert m.object_by_id(mug).misses == 0
    ball = max(o.id for o in m.objects)  # the occluder, mapped in the first of those windows
    # the same view without the occluder sees both empty places: both forgotten at once (K = 1)
    up = m.integrate(window(World(rest), [eye], [tuple(MUG_AT)], stamp=9.0))
    assert set(up.removed) == {mug, ball}


def test_an_object_beyond_range_is_not_missed() -> None:
    m, mug = mapped(map_config(remove_after_misses=1, visibility_max_range=1.0))
    gone = table_world().without(MUG)
    up = m.integrate(window(gone, [(2.5, 0.0, 1.0)], [tuple(MUG_AT)], stamp=3.0))  # 2.7 m away
    assert mug not in up.removed and m.object_by_id(mug).misses == 0
    up = m.integrate(window(gone, [(0.7, 0.0, 0.5)], [tuple(MUG_AT)], stamp=4.0))  # 0.8 m away
    assert up.removed == (mug,)


def test_without_camera_depth_the_window_gaussians_are_the_evidence() -> None:
    m, mug = mapped(map_config(remove_after_misses=2))
    gone = table_world().without(MUG)
    for k in range(2):
        up = m.integrate(around(gone, 30 + 90 * k, 3.0 + k, with_depth=False))
    assert up.removed == (mug,)
    # the z-buffer of the window's Gaussians: the ray-cast depth where the view's own Gaussians fall, and never
    # farther (other views' Gaussians can only land in front at depth edges: more occlusion, never a false miss)
    snap = around(gone, 0, 9.0)
    zb = zbuffer(snap.scene.means, snap.cameras)
    both = np.isfinite(zb) & np.isfinite(snap.cameras.depth)
    diff = zb[both] - snap.cameras.depth[both]
    assert both.mean() > 0.9 and np.median(np.abs(diff)) < 1e-3 and diff.max() < 1e-4


def test_without_cameras_nothing_is_forgotten_and_a_note_says_so() -> None:
    m, mug = mapped(map_config(remove_after_misses=1))
    gone = table_world().without(MUG)
    notes = []
    for k in range(3):
        snap = around(gone, 0, 3.0 + k)
        up = m.integrate(dataclasses.replace(snap, cameras=None))
        assert up.removed == ()
        notes += up.notes
    assert len(notes) == 1 and "cannot be forgotten" in notes[0]


def test_seen_places_fraction_rule() -> None:
    """A present object hides its own far side: about half its points are seen, above the default 0.3."""
    m, mug = mapped()
    snap = around(table_world(), 0, 3.0)
    obj = m.object_by_id(mug)
    cfg = m.config
    assert seen_places([obj], snap.cameras, cfg)[0]
    assert not seen_places([obj], snap.cameras, dataclasses.replace(cfg, min_visible_fraction=0.95))[0]
    assert not seen_places([obj], None, cfg)[0] and seen_places([], snap.cameras, cfg).shape == (0,)


def test_a_thing_too_small_in_the_images_is_not_missed() -> None:
    """Far away in small images a thing covers too few pixels for a detection to be expected: its empty place
    does not count as seen (default min_visible_pixels: 60); close up it does."""
    m, mug = mapped(MapConfig(remove_after_misses=1))
    gone = table_world().without(MUG)
    far = window(gone, [(1.8, 0.0, 1.0)], [tuple(MUG_AT)], stamp=3.0)
    obj = m.object_by_id(mug)
    assert seen_places([obj], far.cameras, map_config(min_visible_pixels=0.0))[0]  # in view, nothing in front
    assert not seen_places([obj], far.cameras, MapConfig())[0]  # but a few pixels of a 48 x 64 image
    up = m.integrate(far)
    assert up.removed == () and m.object_by_id(mug).misses == 0
    up = m.integrate(window(gone, [(0.6, 0.0, 0.5)], [tuple(MUG_AT)], stamp=4.0))
    assert up.removed == (mug,)


def test_silhouette_pixels_count_the_covered_area() -> None:
    """A square patch facing the camera covers its projected area in pixels, whether its points are sparser than
    the pixels (near) or denser (far), and a second layer behind it (a surface thickened by noise) adds nothing."""
    from eps3d_ros.geometry.cameras import Cameras

    K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
    E = np.eye(4)[:3][None]
    xs = np.arange(-0.1, 0.1, 0.02) + 0.01  # a 20 cm square of 2 cm voxels, 10 x 10 points
    patch = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    cfg = map_config(visibility_max_range=10.0)
    for z in (0.5, 2.0, 8.0):
        depth = np.full((1, 96, 128), z + 1.0, np.float32)  # a wall behind it
        cams = Cameras(E, K[None], 96, 128, depth=depth)
        one = np.c_[patch, np.full(len(patch), z)]
        two = np.concatenate([one, one + [0.004, 0.004, 0.01]])  # thickened: a shifted copy 1 cm behind
        true_area = (100 * 0.2 / z) ** 2
        for pts in (one, two):
            px = silhouette_pixels(pts, np.zeros(len(pts), np.int64), np.array([0.02]), cams, depth, cfg)[0]
            # within the pixels a 20 cm square can touch (straddling pixel borders: one more per side)
            assert 0.8 * true_area <= px <= (np.sqrt(true_area) + 2) ** 2, (z, px, true_area)
        assert points_seen(one, cams, depth, cfg).all()
        assert not points_seen(one + [0, 0, 2.0], cams, depth, cfg).any()  # behind the wall: occluded
