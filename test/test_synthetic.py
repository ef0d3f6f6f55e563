"""Synthetic scenes: shapes, determinism, and that the ground truth is geometrically exact.

The geometry checks here re-derive everything independently of the renderer: pixels are
unprojected with ``K^-1`` and the inverse of the stored extrinsics, and tested against the
primitives' own analytic surface / inside functions (test/primitive_geometry.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from eps3d_ros.data import CLASS_NAMES, COLOURS, SyntheticScene, generate_scene
from helpers.primitive_geometry import inside, surface_distance

SEEDS = (0, 1, 2, 3, 4, 5)
H, W = 96, 128  # non-square on purpose: catches (u, v) / (H, W) mix-ups


@pytest.fixture(scope="module")
def scenes() -> dict[int, SyntheticScene]:
    return {s: generate_scene(s, num_views=4, height=H, width=W) for s in SEEDS}


# --------------------------------------------------------------------------- independent geometry


def cam_to_world(extrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    R = extrinsics[:3, :3].astype(np.float64)
    t = extrinsics[:3, 3].astype(np.float64)
    return R.T, -R.T @ t


def unproject(scene: SyntheticScene, view: int) -> tuple[np.ndarray, np.ndarray]:
    """World points [n, 3] of the valid pixels of ``view`` and their (row, col) indices [n, 2]."""
    rows, cols = np.nonzero(scene.depth[view] > 0)
    z = scene.depth[view][rows, cols].astype(np.float64)
    pix = np.stack([cols + 0.5, rows + 0.5, np.ones_like(z)], -1)  # pixel centres, (u, v) = (col, row)
    cam = (pix @ np.linalg.inv(scene.intrinsics[view].astype(np.float64)).T) * z[:, None]
    Rc, c = cam_to_world(scene.extrinsics[view])
    return cam @ Rc.T + c, np.stack([rows, cols], -1)


def primitives_of(scene: SyntheticScene, class_id: int, instance_id: int) -> list:
    return [p for p in scene.primitives if p.surface.class_id == class_id and p.surface.instance_id == instance_id]


# --------------------------------------------------------------------------- API, shapes, determinism


def test_shapes_and_dtypes(scenes) -> None:
    s = scenes[0]
    S = 4
    assert s.rgb.shape == (S, H, W, 3) and s.rgb.dtype == np.uint8
    assert s.depth.shape == (S, H, W) and s.depth.dtype == np.float32
    assert s.semantic.shape == (S, H, W) and s.semantic.dtype == np.int64
    assert s.instance.shape == (S, H, W) and s.instance.dtype == np.int64
    assert s.intrinsics.shape == (S, 3, 3) and s.intrinsics.dtype == np.float32
    assert s.extrinsics.shape == (S, 3, 4) and s.extrinsics.dtype == np.float32
    assert s.poses.shape == (S, 4, 4)
    assert (s.num_views, s.height, s.width) == (S, H, W)
    assert s.class_names == list(CLASS_NAMES) and s.class_names[0] == "background"
    for o in s.objects:
        for a in (o.centroid, o.box_min, o.box_max, o.size):
            assert np.asarray(a).shape == (3,)
        assert o.class_name == CLASS_NAMES[o.class_id] and o.colour in COLOURS
        assert len(o.pixels_per_view) == S


def test_vocabulary() -> None:
    s = generate_scene(0, num_views=1, height=8, width=8)
    assert sorted(s.things + s.stuff) == list(range(1, len(CLASS_NAMES)))
    assert [CLASS_NAMES[i] for i in s.stuff] == ["floor", "wall", "table"]
    assert len(s.things) >= 10
    assert all(n.isalpha() and n.islower() for n in CLASS_NAMES)  # bare nouns, usable as CLIP prompts


def test_deterministic_per_seed() -> None:
    a, b = generate_scene(7, 3, 40, 50), generate_scene(7, 3, 40, 50)
    for f in ("rgb", "depth", "semantic", "instance", "intrinsics", "extrinsics", "primitive_id"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert [(o.class_name, o.colour, o.pixels_per_view) for o in a.objects] == \
           [(o.class_name, o.colour, o.pixels_per_view) for o in b.objects]
    c = generate_scene(8, 3, 40, 50)
    assert not np.array_equal(a.extrinsics, c.extrinsics)
    assert not np.array_equal(a.rgb, c.rgb)


def test_views_are_prefix_consistent() -> None:
    # The layout is drawn before the cameras: more views extend the trajectory, same scene.
    a, b = generate_scene(3, 2, 32, 32), generate_scene(3, 5, 32, 32)
    assert [o.class_name for o in a.objects] == [o.class_name for o in b.objects]
    np.testing.assert_array_equal(a.objects[0].centroid, b.objects[0].centroid)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(num_views=0), "num_views"),
        (dict(num_views=2.5), "num_views"),
        (dict(height=0), "height"),
        (dict(width=-3), "width"),
        (dict(num_objects=13), "num_objects"),
        (dict(num_chairs=-1), "num_chairs"),
        (dict(hfov_deg=0.0), "hfov_deg"),
        (dict(distance=(1.5, 1.0)), "distance"),
        (dict(elevation=(0.1,)), "elevation"),
    ],
)
def test_bad_arguments(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        generate_scene(0, **kwargs)
    with pytest.raises(ValueError, match="seed"):
        generate_scene(-1)


def test_options() -> None:
    s = generate_scene(11, 1, 16, 16, num_objects=8, num_chairs=2, num_walls=4)
    assert sum(o.on == "table" for o in s.objects) == 8
    assert sum(o.class_name == "chair" for o in s.objects) == 2
    assert sum(p.surface.class_id == CLASS_NAMES.index("wall") for p in s.primitives) == 4
    assert [o.instance_id for o in s.objects] == list(range(1, 11))
    flat = generate_scene(11, 1, 16, 16, textures=False, shading=False)
    assert len(np.unique(flat.rgb.reshape(-1, 3), axis=0)) < len(np.unique(s.rgb.reshape(-1, 3), axis=0))
    for seed in range(20):  # default counts
        s = generate_scene(seed, 1, 4, 4)
        assert 3 <= sum(o.on == "table" for o in s.objects) <= 8
        assert 0 <= sum(o.on == "floor" for o in s.objects) <= 2
        assert 2 <= len(s.layout.walls) <= 4


# --------------------------------------------------------------------------- cameras


def test_cameras(scenes) -> None:
    table = CLASS_NAMES.index("table")
    for s in scenes.values():
        K = s.intrinsics
        hfov = np.degrees(2 * np.arctan(0.5 * W / K[:, 0, 0]))
        np.testing.assert_allclose(hfov, 65.0, atol=1e-3)
        np.testing.assert_allclose(K[:, 0, 2], W / 2)
        np.testing.assert_allclose(K[:, 1, 2], H / 2)
        poses = s.poses
        R = s.extrinsics[:, :, :3]
        np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
        np.testing.assert_allclose(poses[:, :3, :3], R.transpose(0, 2, 1), atol=1e-6)  # pose = inverse
        assert np.abs(poses[:, 2, 0]).max() < 1e-5  # camera x axis horizontal: no roll
        assert (poses[:, 2, 1] < 0).all() and (poses[:, 2, 2] < 0).all()  # image down, looking down
        eye = poses[:, :3, 3]
        ring = np.hypot(eye[:, 0], eye[:, 1])
        assert ((ring > 0.8 - 0.06) & (ring < 1.6 + 0.06)).all()
        above = eye[:, 2] - s.layout.table_height
        assert ((above >= 0.3 - 1e-6) & (above <= 0.9 + 1e-6)).all()
        az = np.unwrap(np.arctan2(eye[:, 1], eye[:, 0]))
        steps = np.degrees(np.abs(np.diff(az)))
        assert ((steps > 10) & (steps < 50)).all(), steps  # 20-40 deg about the jittered ring centre
        for v in range(s.num_views):  # every view sees the table
            assert (s.semantic[v] == table).mean() > 0.03


# --------------------------------------------------------------------------- exact ground truth


def test_unprojected_pixels_lie_on_their_labelled_primitive(scenes) -> None:
    floor = CLASS_NAMES.index("floor")
    checked = 0
    for s in scenes.values():
        for v in range(s.num_views):
            pts, rc = unproject(s, v)
            sem = s.semantic[v][rc[:, 0], rc[:, 1]]
            ins = s.instance[v][rc[:, 0], rc[:, 1]]
            assert (sem > 0).all()  # a hit always has a class
            np.testing.assert_allclose(pts[sem == floor, 2], 0.0, atol=1e-4)  # floor is z = 0
            for cls, inst in set(zip(sem.tolist(), ins.tolist())):
                m = (sem == cls) & (ins == inst)
                cands = primitives_of(s, cls, inst)
                assert cands, (cls, inst)
                d = np.min([surface_distance(p, pts[m]) for p in cands], axis=0)
                assert d.max() < 1e-4, (s.seed, v, CLASS_NAMES[cls], inst, d.max())
                checked += int(m.sum())
    assert checked == sum(int((s.depth > 0).sum()) for s in scenes.values())


def test_background_only_where_nothing_is_hit(scenes) -> None:
    for s in scenes.values():
        np.testing.assert_array_equal(s.semantic == 0, s.depth == 0)
        np.testing.assert_array_equal(s.primitive_id < 0, s.depth == 0)
        assert (s.instance[s.depth == 0] == 0).all()
        # No wall and nothing else behind the missing walls' far floor: background is rare.
        assert (s.depth == 0).mean() < 0.3
        if len(s.layout.walls) == 4:
            # All walls: nothing hit only above the walls.
            for v in range(s.num_views):
                rows = np.nonzero((s.depth[v] == 0).any(1))[0]
                if rows.size:
                    assert rows.max() < H / 2


def test_world_points_helper(scenes) -> None:
    s = scenes[1]
    for v in range(s.num_views):
        wp = s.world_points(v)
        pts, rc = unproject(s, v)
        np.testing.assert_allclose(wp[rc[:, 0], rc[:, 1]], pts, atol=1e-6)
        assert np.isnan(wp[s.depth[v] == 0]).all()


def test_reprojection_into_other_views_keeps_the_instance(scenes) -> None:
    for s in scenes.values():
        for i in range(s.num_views):
            pts, rc = unproject(s, i)
            inst_i = s.instance[i][rc[:, 0], rc[:, 1]]
            sem_i = s.semantic[i][rc[:, 0], rc[:, 1]]
            for j in range(s.num_views):
                if j == i:
                    continue
                R, t = s.extrinsics[j, :, :3].astype(np.float64), s.extrinsics[j, :, 3].astype(np.float64)
                cam = pts @ R.T + t
                uvw = cam @ s.intrinsics[j].astype(np.float64).T
                z = cam[:, 2]
                with np.errstate(divide="ignore", invalid="ignore"):
                    col = np.floor(uvw[:, 0] / z).astype(np.int64)  # pixel c covers [c, c + 1)
                    row = np.floor(uvw[:, 1] / z).astype(np.int64)
                ok = (z > 0.05) & (col >= 0) & (col < W) & (row >= 0) & (row < H)
                d_j = s.depth[j][row[ok], col[ok]]
                seen = np.abs(d_j - z[ok]) < 0.01 * z[ok]  # same surface, not occluded
                assert seen.mean() > 0.2, (s.seed, i, j, seen.mean())  # not vacuous: much is co-visible
                same_inst = s.instance[j][row[ok], col[ok]][seen] == inst_i[ok][seen]
                same_sem = s.semantic[j][row[ok], col[ok]][seen] == sem_i[ok][seen]
                assert same_inst.mean() > 0.97, (s.seed, i, j, same_inst.mean())
                assert same_sem.mean() > 0.97, (s.seed, i, j, same_sem.mean())
                # Things specifically (they are small: boundary pixels weigh more).
                thing = inst_i[ok][seen] > 0
                if thing.sum() > 50:
                    assert same_inst[thing].mean() > 0.9, (s.seed, i, j, same_inst[thing].mean())


def test_instances_labels_and_visibility() -> None:
    for seed in range(12):
        s = generate_scene(seed, num_views=4, height=H, width=W)
        ids = {o.instance_id: o for o in s.objects}
        assert sorted(ids) == list(range(1, len(s.objects) + 1))
        thing_mask = s.instance > 0
        assert np.isin(s.semantic[thing_mask], s.things).all()
        assert np.isin(s.semantic[~thing_mask & (s.semantic > 0)], s.stuff).all()
        for iid, o in ids.items():
            m = s.instance == iid
            assert (s.semantic[m] == o.class_id).all()
            counts = m.reshape(s.num_views, -1).sum(1)
            assert tuple(int(c) for c in counts) == o.pixels_per_view
            assert counts.max() >= 10, (seed, o.class_name, counts)  # visible in at least one view
        assert set(np.unique(s.instance)) - {0} <= set(ids)


def test_object_centroids_match_their_pixels(scenes) -> None:
    for s in scenes.values():
        per_obj: dict[int, list[np.ndarray]] = {}
        for v in range(s.num_views):
            pts, rc = unproject(s, v)
            ins = s.instance[v][rc[:, 0], rc[:, 1]]
            for iid in np.unique(ins[ins > 0]):
                per_obj.setdefault(int(iid), []).append(pts[ins == iid])
        for iid, chunks in per_obj.items():
            o = s.object(iid)
            p = np.concatenate(chunks)
            assert (p >= o.box_min - 1e-4).all() and (p <= o.box_max + 1e-4).all()
            np.testing.assert_allclose(o.size, o.box_max - o.box_min)
            np.testing.assert_allclose(o.centroid, 0.5 * (o.box_min + o.box_max))
            if len(p) >= 30:
                assert np.linalg.norm(p.mean(0) - o.centroid) < 0.5 * np.linalg.norm(o.size), (s.seed, o.class_name)


def test_visible_centroids_are_the_mean_of_each_objects_visible_points(scenes) -> None:
    s = scenes[1]
    world = np.concatenate([unproject(s, v)[0] for v in range(s.num_views)])
    ins = np.concatenate([s.instance[v][tuple(unproject(s, v)[1].T)] for v in range(s.num_views)])
    got = s.visible_centroids(min_pixels=30)
    expected: dict[str, list[np.ndarray]] = {}
    for o in s.objects:
        if (ins == o.instance_id).sum() >= 30:
            expected.setdefault(o.class_name, []).append(world[ins == o.instance_id].mean(0))
    assert got.keys() == expected.keys() and expected
    for name in expected:
        np.testing.assert_allclose(np.array(got[name]), np.array(expected[name]), atol=1e-6)
    assert sum(map(len, s.visible_centroids(min_pixels=10**9).values())) == 0


# --------------------------------------------------------------------------- layout


def test_objects_rest_on_supports_and_do_not_interpenetrate() -> None:
    rng = np.random.default_rng(0)
    table = CLASS_NAMES.index("table")
    for seed in range(6):
        s = generate_scene(seed, 1, 4, 4, num_objects=8, num_chairs=2)
        top, (hx, hy) = s.layout.table_height, s.layout.table_half_size
        table_prims = primitives_of(s, table, 0)
        for o in s.objects:
            if o.on == "table":
                assert abs(o.box_min[2] - top) < 1e-9, o.class_name
                assert (np.abs(o.box_min[:2]) <= (hx, hy)).all() and (np.abs(o.box_max[:2]) <= (hx, hy)).all()
            else:
                assert o.class_name == "chair" and abs(o.box_min[2]) < 1e-9
        prims = {o.instance_id: [s.primitives[i] for i in o.primitive_indices] for o in s.objects}
        for a in s.objects:
            # Random points inside object a must be outside every other object and the table.
            samples = rng.uniform(a.box_min, a.box_max, size=(20000, 3))
            in_a = np.any([inside(p, samples) for p in prims[a.instance_id]], axis=0)
            samples = samples[in_a]
            assert len(samples) > 100
            others = table_prims + [p for b in s.objects if b.instance_id != a.instance_id
                                    for p in prims[b.instance_id]]
            for p in others:
                assert not inside(p, samples).any(), (seed, a.class_name, p.surface.name)


def test_colours_are_named_and_distinct_per_class(scenes) -> None:
    for s in scenes.values():
        pairs = [(o.class_name, o.colour) for o in s.objects if o.on == "table" and o.class_name != "plant"]
        assert len(pairs) == len(set(pairs))  # "red mug" names at most one mug
        for o in s.objects:
            assert o.colour_rgb == COLOURS[o.colour]
