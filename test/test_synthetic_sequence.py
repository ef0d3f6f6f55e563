"""Synthetic sequences (a robot walking through a room): coverage, determinism, the robot path, exact
conversion to pipeline frames, looping, and the ground truth of removed objects.

Geometry is re-derived independently of the renderer: pixels are unprojected through ``Frame.K`` and
``Frame.pose`` and tested against the primitives' analytic surfaces (test/primitive_geometry.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eps3d_ros.conventions import poses_to_extrinsics
from eps3d_ros.data import CLASS_NAMES, SyntheticSequence, generate_scene, generate_sequence
from eps3d_ros.data.room_layout import min_distance_to_furniture
from eps3d_ros.data.synthetic import with_objects_removed
from eps3d_ros.frames.frame import Frame
from helpers.primitive_geometry import surface_distance

SEEDS = (0, 1, 2)  # coverage is checked at the size the evaluation uses: 60 frames of 112 x 112
T, H, W = 60, 112, 112
SMALL = dict(num_frames=16, height=48, width=64)  # non-square: catches (u, v) / (H, W) mix-ups


@pytest.fixture(scope="module")
def sequences() -> dict[int, SyntheticSequence]:
    return {s: generate_sequence(s, T, H, W) for s in SEEDS}


@pytest.fixture(scope="module")
def small() -> SyntheticSequence:
    return generate_sequence(3, **SMALL)


# --------------------------------------------------------------------------------------- contents
def test_shapes_dtypes_and_labels(small) -> None:
    n, h, w = SMALL["num_frames"], SMALL["height"], SMALL["width"]
    assert small.rgb.shape == (n, h, w, 3) and small.rgb.dtype == np.uint8
    assert small.depth.shape == (n, h, w) and small.depth.dtype == np.float32
    assert small.semantic.shape == small.instance.shape == (n, h, w)
    assert small.intrinsics.shape == (n, 3, 3) and small.extrinsics.shape == (n, 3, 4)
    assert small.class_names == list(CLASS_NAMES)
    assert (small.depth >= 0).all()
    # nothing hit <=> background; things have an instance, stuff does not
    assert ((small.depth == 0) == (small.semantic == 0)).all()
    thing_px = np.isin(small.semantic, small.things)
    assert ((small.instance > 0) == thing_px).all()
    for o in small.objects:
        assert isinstance(o.centroid, np.ndarray) and o.centroid.shape == (3,)
        assert o.is_thing and o.class_name in CLASS_NAMES and CLASS_NAMES[o.class_id] == o.class_name
        assert (small.semantic[small.instance == o.instance_id] == o.class_id).all()
        assert o.pixels_per_view == tuple(int(c) for c in small.pixel_counts[:, o.instance_id])
    assert [o.instance_id for o in small.objects] == list(range(1, len(small.objects) + 1))


@pytest.mark.parametrize("seed", SEEDS)
def test_room_coverage(sequences, seed) -> None:
    seq = sequences[seed]
    assert len(seq.objects) >= 20
    assert len(seq.layout.tables) >= 4
    # no frame sees more than 40 % of the things, even counting a single pixel as seen ...
    assert seq.visible_fraction(min_pixels=1).max() <= 0.4
    # ... and every thing is seen well (>= 10 pixels) by at least 3 frames
    seen = [len(seq.frames_seeing(o.instance_id, min_pixels=10)) for o in seq.objects]
    assert min(seen) >= 3, seen
    # every table is looked at from its stop, and every table but the farthest twice (out and back)
    stops = seq.path.stops
    assert sorted(set(stops)) == list(range(len(seq.layout.tables)))
    assert [stops.count(t) for t in range(len(seq.layout.tables))] == [2] * (len(seq.layout.tables) - 1) + [1]


@pytest.mark.parametrize("seed", SEEDS)
def test_robot_path(sequences, seed) -> None:
    seq = sequences[seed]
    poses = seq.path.poses
    eyes = poses[:, :3, 3]
    assert np.ptp(eyes[:, 2]) < 1e-9 and 1.3 <= eyes[0, 2] <= 1.6  # one head height
    assert np.abs(poses[:, 2, 0]).max() < 1e-9  # camera x axis horizontal: no roll
    assert (poses[:, 2, 2] < 0).all()  # always looking somewhat down
    lo, hi = seq.layout.room_min, seq.layout.room_max
    assert ((eyes[:, :2] > lo + 0.5) & (eyes[:, :2] < hi - 0.5)).all()  # inside the room, off the walls
    assert min_distance_to_furniture(seq.layout, eyes[:, :2]).min() > 0.3  # never through furniture
    # walks out, turns round, comes back to where it began
    leg = seq.path.leg
    turn = seq.path.turn_frame
    assert (leg[:turn] == 0).all() and (leg[turn:] == 1).all() and 0.3 * T < turn < 0.7 * T
    assert np.linalg.norm(eyes[0] - eyes[-1]) < 0.5
    # the stored cameras are the path's
    E = poses_to_extrinsics(torch.from_numpy(poses)).numpy()
    np.testing.assert_allclose(seq.extrinsics, E, atol=1e-6)


def test_deterministic_per_seed(small) -> None:
    again = generate_sequence(3, **SMALL)
    for name in ("rgb", "depth", "semantic", "instance", "intrinsics", "extrinsics", "primitive_id", "pixel_counts"):
        assert np.array_equal(getattr(small, name), getattr(again, name)), name
    assert [o.class_name for o in again.objects] == [o.class_name for o in small.objects]
    other = generate_sequence(4, **SMALL)
    assert not np.array_equal(other.extrinsics, small.extrinsics)


def test_generate_scene_still_works_beside_sequences() -> None:
    # generate_scene shares the builders; its own tests (test_synthetic.py) check it in depth
    scene = generate_scene(0, num_views=2, height=32, width=32)
    assert scene.rgb.shape == (2, 32, 32, 3) and 3 <= len(scene.objects) <= 10


@pytest.mark.parametrize("kwargs, name", [
    (dict(seed=-1), "seed"), (dict(num_frames=1), "num_frames"), (dict(height=0), "height"),
    (dict(hfov_deg=0.5), "hfov_deg"), (dict(fps=0.0), "fps"), (dict(eye_height=(2.0, 1.0)), "eye_height"),
    (dict(num_tables=3), "num_tables"), (dict(things_per_table=(5, 2)), "things_per_table"),
    (dict(min_things=200), "min_things"), (dict(walk_speed=-1.0), "walk_speed"),
    (dict(removed={99: 3}), "removed"), (dict(removed={1: 16}), "removed"), (dict(removed=[1]), "removed"),
])
def test_bad_arguments(kwargs, name) -> None:
    args = {"seed": 0, **SMALL, **kwargs}
    with pytest.raises(ValueError, match=name):
        generate_sequence(**args)


# ------------------------------------------------------------------------------------ frames, stamps
def test_frames_unproject_onto_the_true_surfaces(small) -> None:
    frames = list(small.frames(frame_id="cam"))
    assert len(frames) == small.num_frames
    rng = np.random.default_rng(0)
    for i, f in enumerate(frames):
        assert isinstance(f, Frame) and f.frame_id == "cam" and f.size == (small.height, small.width)
        assert np.array_equal(f.rgb, small.rgb[i])
        assert np.array_equal(np.isnan(f.depth), small.depth[i] == 0)
        rows, cols = np.nonzero(small.depth[i] > 0)
        pick = rng.choice(len(rows), size=min(200, len(rows)), replace=False)
        rows, cols = rows[pick], cols[pick]
        # Frame convention: pixel (u, v)'s centre at (u, v); X = pose (d K^-1 [u, v, 1])
        pix = np.stack([cols, rows, np.ones_like(cols)], -1).astype(np.float64)
        cam = (pix @ np.linalg.inv(f.K).T) * f.depth[rows, cols].astype(np.float64)[:, None]
        world = cam @ f.pose[:3, :3].T + f.pose[:3, 3]
        np.testing.assert_allclose(world, small.world_points(i)[rows, cols], atol=1e-5)
        for j in np.unique(small.primitive_id[i][rows, cols]):
            sel = small.primitive_id[i][rows, cols] == j
            assert surface_distance(small.primitives[j], world[sel]).max() < 1e-5


def test_looped_frames_have_increasing_stamps(small) -> None:
    n = small.num_frames
    frames = list(small.frames(loops=3))
    stamps = np.array([f.stamp for f in frames])
    assert len(frames) == 3 * n
    assert (np.diff(stamps) > 0).all()
    np.testing.assert_allclose(stamps, np.arange(3 * n) / small.fps)
    for k, f in enumerate(frames):
        assert small.frame_index(f.stamp) == k % n
        assert np.array_equal(f.rgb, small.rgb[k % n])
    assert frames[n].pose is not frames[0].pose and np.array_equal(frames[n].pose, frames[0].pose)
    with pytest.raises(ValueError, match="not a frame"):
        small.frame_index(0.3 / small.fps)
    with pytest.raises(ValueError, match="not a frame"):
        small.frame_index(-1.0 / small.fps)
    with pytest.raises(ValueError, match="loops"):
        next(small.frames(loops=0))


def test_frames_without_depth_or_pose(small) -> None:
    f = next(small.frames(with_depth=False, with_pose=False))
    assert f.depth is None and f.pose is None


# ------------------------------------------------------------------------------------- ground truth
def test_seen_surface_centroid(small) -> None:
    for o in small.objects:
        frames = small.frames_seeing(o.instance_id)
        if not len(frames):
            with pytest.raises(ValueError, match="not seen"):
                small.seen_surface_centroid(o.instance_id)
            continue
        c = small.seen_surface_centroid(o.instance_id)
        assert ((c > o.box_min - 1e-6) & (c < o.box_max + 1e-6)).all()
        # without voxels: the plain mean of the seen pixels' world points
        f = int(frames[0])
        pts = small.world_points(f)[small.instance[f] == o.instance_id]
        np.testing.assert_allclose(small.seen_surface_centroid(o.instance_id, [f], voxel=0), pts.mean(0))


def test_removed_object_ground_truth(sequences) -> None:
    seq = sequences[1]
    turn = seq.path.turn_frame
    # a thing seen on the way out and whose table is seen again on the way back
    out_and_back = [o.instance_id for o in seq.objects
                    if (seq.frames_seeing(o.instance_id, 10) < turn).any()
                    and (seq.frames_seeing(o.instance_id, 10) >= turn).any()]
    gone = out_and_back[0]
    moved = with_objects_removed(seq, {gone: turn})
    assert np.array_equal(moved.rgb, generate_sequence(1, T, H, W, removed={gone: turn}).rgb)
    # the same room and path; nothing changes before the removal
    assert np.array_equal(moved.extrinsics, seq.extrinsics)
    assert np.array_equal(moved.rgb[:turn], seq.rgb[:turn])
    assert np.array_equal(moved.pixel_counts[:turn], seq.pixel_counts[:turn])
    # from the removal on: the object is nowhere, and the ground truth says it does not exist
    assert not (moved.instance[turn:] == gone).any()
    assert moved.removed == {gone: turn}
    assert moved.exists(gone, turn - 1) and not moved.exists(gone, turn) and moved.exists(gone + 1, T - 1)
    presence = moved.presence
    assert presence[:turn, gone - 1].all() and not presence[turn:, gone - 1].any()
    assert np.delete(presence, gone - 1, axis=1).all()
    # its place is seen again exactly where the original sequence saw the object
    np.testing.assert_array_equal(moved.place_pixels[:, gone], seq.pixel_counts[:, gone])
    again = moved.frames_seeing_place(gone, 10)
    assert (again >= turn).any() and not len(moved.frames_seeing(gone)[moved.frames_seeing(gone) >= turn])
    # where it stood, the camera now sees what was behind it (farther away)
    f = int(again[again >= turn][0])
    was = seq.instance[f] == gone
    assert (moved.depth[f][was] > seq.depth[f][was]).all()
    # the others are untouched: pixels of the other objects can only grow (nothing new hides them)
    others = np.delete(np.arange(len(seq.objects) + 1), [0, gone])
    assert (moved.pixel_counts[:, others] >= seq.pixel_counts[:, others]).all()
