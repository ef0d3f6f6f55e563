"""The oracle reconstructor: windows of a synthetic sequence's frames → SceneSnapshot through the real
build_scene, from the ground truth. Checks the run(frames) contract, that every well-seen thing becomes
one object with the right label and centroid, exact geometry, looping, noise and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eps3d_ros.data import generate_sequence
from eps3d_ros.panoptic import Scene
from eps3d_ros.frames import Frame
from eps3d_ros.geometry import Cameras
from eps3d_ros.pipeline import SceneSnapshot
from eps3d_ros.eval.oracle import OracleReconstructor

STRIDE = 2
MIN_GAUSSIANS = 30  # a thing with this many Gaussians in a window is above every clustering threshold


@pytest.fixture(scope="module")
def sequence():
    return generate_sequence(1, num_frames=30, height=96, width=96)


@pytest.fixture(scope="module")
def oracle(sequence) -> OracleReconstructor:
    return OracleReconstructor(sequence, pixel_stride=STRIDE)  # default config and the demo text encoder


@pytest.fixture(scope="module")
def frames(sequence) -> list[Frame]:
    return list(sequence.frames(frame_id="camera", loops=2))


def stop_windows(sequence) -> list[list[int]]:
    """Two windows of 4 stream frames (indices into the twice-looped frames) while the robot looks at one
    table: the longest stop (the farthest table), and the first table across the end of the loop."""
    table, n = sequence.path.table, sequence.num_frames
    starts = [i for i in range(n - 3) if table[i] >= 0 and (table[i:i + 4] == table[i]).all()]
    across = [n - 2, n - 1, n, n + 1]
    assert starts and (table[[k % n for k in across]] == table[0]).all()
    return [list(range(starts[0], starts[0] + 4)), across]


@pytest.fixture(scope="module")
def runs(sequence, oracle, frames) -> list[tuple[list[int], list[int], SceneSnapshot]]:
    """``(stream indices, sequence indices, snapshot)`` of the default oracle on each stop window (run once)."""
    out = []
    for stream in stop_windows(sequence):
        out.append((stream, [k % sequence.num_frames for k in stream], oracle.run([frames[k] for k in stream])))
    return out


def strided(a: np.ndarray) -> np.ndarray:
    """The oracle's pixels of a per-frame array ``[H, W, ...]``: the centres of the stride x stride cells."""
    return a[STRIDE // 2::STRIDE, STRIDE // 2::STRIDE]


def thing_gaussians(sequence, window) -> dict[int, int]:
    """Per instance id, its Gaussians in the window (strided pixels); ``window`` holds sequence indices."""
    ids = np.concatenate([strided(sequence.instance[i]).ravel() for i in window])
    return {int(k): int(c) for k, c in zip(*np.unique(ids[ids > 0], return_counts=True))}


def test_run_contract(sequence, oracle, frames, runs) -> None:
    stream, window, snap = runs[0]
    assert isinstance(snap, SceneSnapshot) and isinstance(snap.scene, Scene)
    assert snap.frame_id == oracle.config.output.map_frame == "map"
    assert snap.scale_known and snap.measured_depth
    assert snap.alignment.method == "oracle" and snap.alignment.frame_id == "map" and snap.alignment.scale_known
    assert snap.alignment.sim3.scale == 1.0 and np.array_equal(snap.alignment.sim3.R, np.eye(3))
    assert np.array_equal(snap.alignment.sim3.t, np.zeros(3))
    stamps = tuple(frames[k].stamp for k in stream)
    assert snap.window_stamps == stamps and snap.stamp == max(stamps)
    assert set(snap.timings) == {"preprocess", "network", "alignment", "panoptic", "total"}
    assert all(v >= 0 for v in snap.timings.values())
    assert snap.timings["total"] >= snap.timings["panoptic"]
    assert snap.scene.metadata["frame_id"] == "map" and snap.scene.metadata["alignment"] == "oracle"
    # the window's true cameras at the sequence resolution, K as Frame.K, depth NaN where nothing is hit
    cams = snap.cameras
    assert isinstance(cams, Cameras) and cams.num_views == len(stream) and (cams.height, cams.width) == (96, 96)
    np.testing.assert_array_equal(cams.stamps, stamps)
    for v, (k, i) in enumerate(zip(stream, window)):
        np.testing.assert_array_equal(cams.intrinsics[v], frames[k].K)
        np.testing.assert_allclose(cams.extrinsics[v] @ frames[k].pose, np.eye(4)[:3], atol=1e-6)
        np.testing.assert_array_equal(np.isnan(cams.depth[v]), sequence.depth[i] == 0)
        np.testing.assert_array_equal(np.nan_to_num(cams.depth[v]), sequence.depth[i])
    # pixel-aligned ground truth: one Gaussian per strided pixel that hits a surface
    assert snap.scene.means.shape[0] == sum(int((strided(sequence.depth[i]) > 0).sum()) for i in window)


def test_every_well_seen_thing_becomes_one_object(sequence, runs) -> None:
    errors = []
    for _stream, window, snap in runs:
        things = [o for o in snap.scene.objects if o.is_thing]
        stuff = {o.label for o in snap.scene.objects if not o.is_thing}
        assert {"floor", "wall", "table"} <= stuff
        seen = {k: n for k, n in thing_gaussians(sequence, window).items() if n >= MIN_GAUSSIANS}
        assert len(seen) >= 3
        matched = set()
        for inst in seen:
            truth = sequence.object(inst)
            target = sequence.seen_surface_centroid(inst, window)
            dist = [float(np.linalg.norm(o.centroid - target)) for o in things]
            k = int(np.argmin(dist))
            assert things[k].label == truth.class_name
            assert k not in matched  # one object per thing
            matched.add(k)
            # within a few cm of the seen surface's centroid (chairs: their outlier-removed legs move it more)
            assert dist[k] <= 0.01 + 0.1 * float(np.linalg.norm(truth.size)), (truth.class_name, dist[k])
            errors.append(dist[k])
        # nothing else: an extra thing object can only come from a barely seen thing
        assert len(things) - len(matched) <= sum(1 for n in thing_gaussians(sequence, window).values()
                                                 if n < MIN_GAUSSIANS)
    assert np.median(errors) <= 0.015


def test_geometry_is_exact_without_outlier_removal(sequence, oracle, frames) -> None:
    oracle = OracleReconstructor(sequence, OracleReconstructor.default_config(outlier_removal=False, core_link_factor=0.0),
                                 oracle.text_encoder, pixel_stride=STRIDE)
    stream = stop_windows(sequence)[1]
    window = [k % sequence.num_frames for k in stream]
    snap = oracle.run([frames[k] for k in stream])
    things = [o for o in snap.scene.objects if o.is_thing]
    for inst, n in thing_gaussians(sequence, window).items():
        if n < MIN_GAUSSIANS:
            continue
        pts = np.concatenate([strided(sequence.world_points(i))[strided(sequence.instance[i]) == inst] for i in window])
        w = np.concatenate([strided(sequence.depth[i])[strided(sequence.instance[i]) == inst] for i in window]) ** 2
        expected = (pts * w[:, None]).sum(0) / w.sum()  # the area weight: (half the cell's footprint)^2 ∝ depth^2
        obj = min(things, key=lambda o: float(np.linalg.norm(o.centroid - expected)))
        assert obj.num_points == n and obj.label == sequence.object(inst).class_name
        np.testing.assert_allclose(obj.centroid, expected, atol=1e-4)


def test_semantic_features_expand_to_the_class_prototypes(sequence, oracle, runs) -> None:
    _stream, window, snap = runs[0]
    scene = snap.scene
    protos = oracle.text_encoder.prototypes(list(scene.vocabulary)).float()
    truth = np.concatenate([strided(sequence.semantic[i])[strided(sequence.depth[i]) > 0] for i in window])
    names = [sequence.class_names[c] for c in truth]
    expected = np.array([scene.vocabulary.index(n) for n in names])
    np.testing.assert_array_equal(scene.labels, expected)  # every Gaussian has its true class
    cos = oracle.space.cosine(torch.from_numpy(np.array(scene.semantic_features)), protos).numpy()
    np.testing.assert_allclose(cos[np.arange(len(expected)), expected], 1.0, atol=1e-4)


def test_looped_frames_give_the_same_scene(sequence, oracle, frames, runs) -> None:
    stream, window, first = runs[0]
    n = sequence.num_frames
    assert stream == window  # the first window lies in the first loop
    later = oracle.run([frames[n + i] for i in window])  # the second loop: other stamps, same frames
    assert later.window_stamps == tuple(frames[n + i].stamp for i in window) != first.window_stamps
    a = sorted((o.label, tuple(np.round(o.centroid, 6))) for o in first.scene.objects)
    b = sorted((o.label, tuple(np.round(o.centroid, 6))) for o in later.scene.objects)
    assert a == b


def test_position_noise(sequence, oracle, frames, runs) -> None:
    noisy = OracleReconstructor(sequence, oracle.config, oracle.text_encoder, pixel_stride=STRIDE,
                                position_noise=0.02)
    stream, _window, snap = runs[0]
    exact = snap.scene
    scene = noisy.run([frames[k] for k in stream]).scene
    diff = scene.means - exact.means
    assert abs(float(diff.std()) - 0.02) < 0.002 and abs(float(diff.mean())) < 0.002
    assert sorted(o.label for o in scene.objects) == sorted(o.label for o in exact.objects)


def test_map_frame_comes_from_the_config(sequence, oracle, frames) -> None:
    cfg = OracleReconstructor.default_config()
    cfg.output.map_frame = "world"
    snap = OracleReconstructor(sequence, cfg, oracle.text_encoder).run(frames[:1])
    assert snap.frame_id == "world" and snap.alignment.frame_id == "world"


def test_bad_input(sequence, oracle, frames) -> None:
    with pytest.raises(ValueError, match="empty"):
        oracle.run([])
    with pytest.raises(TypeError, match="Frame"):
        oracle.run([sequence.rgb[0]])
    f = frames[0]
    with pytest.raises(ValueError, match="not a frame of this sequence"):
        oracle.run([Frame(f.stamp + 0.01, f.rgb, f.K, "camera")])
    with pytest.raises(ValueError, match="resized"):
        oracle.run([Frame(f.stamp, f.rgb[:48, :48].copy(), f.K, "camera")])
    other = generate_sequence(2, num_frames=30, height=96, width=96)
    with pytest.raises(ValueError, match="does not show frame 0"):
        oracle.run([next(other.frames())])
    with pytest.raises(ValueError, match="pixel_stride"):
        OracleReconstructor(sequence, oracle.config, oracle.text_encoder, pixel_stride=0)
    with pytest.raises(ValueError, match="position_noise"):
        OracleReconstructor(sequence, oracle.config, oracle.text_encoder, position_noise=-1.0)
    with pytest.raises(TypeError, match="SyntheticSequence"):
        OracleReconstructor(object(), oracle.config, oracle.text_encoder)
