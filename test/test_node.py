"""eps3d_node with the real rclpy, in-process: synthetic frames in, clouds/objects/markers out, queries, bad input.

A helper node publishes a synthetic scene's frames (rgb8, 32FC1 depth, camera_info) and the camera
poses (``camera_pose`` TransformStamped: there is no tf2 wheel), then listens to the outputs.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker

from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.frames.frame import synthetic_frames
from eps3d_ros.msg import ObjectArray
from eps3d_ros.ros.messages import cloud_to_array, frame_messages
from eps3d_ros.ros.scene_publisher import LATCHED
from helpers.node_harness import CAMERA, Harness


@pytest.fixture(scope="module")
def scene():
    return generate_scene(seed=5, num_views=4, height=84, width=112)


@pytest.fixture(scope="module")
def harness():
    h = Harness()
    yield h
    h.close()


def test_query_before_first_scene_is_refused(harness) -> None:
    r = harness.ask("mug")
    assert not r.success and "no scene yet" in r.message


def test_frames_in_clouds_objects_and_markers_out(harness, scene) -> None:
    for i in range(3):
        harness.send(scene, i, 10.0 + 0.5 * i)
    assert harness.wait_for(lambda: harness.received["semantic"] and harness.received["objects"], 120), \
        "no scene published"
    cloud = harness.received["semantic"][-1]
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb", "label", "instance", "score"]
    assert cloud.header.frame_id == "map" and 0 < cloud.width <= 3000
    pts = cloud_to_array(cloud)
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], 1).astype(np.float64)
    # Metric and in the map frame: every point lies on the synthetic scene's surfaces.
    from scipy.spatial import cKDTree

    truth = np.concatenate([scene.world_points(v).reshape(-1, 3) for v in range(3)])
    dist, _ = cKDTree(truth[np.isfinite(truth).all(1)]).query(xyz)
    # the map's points are voxel means (2 cm for things, 5 cm for stuff): on the surfaces but for edges and corners
    assert np.percentile(dist, 50) < 0.02 and np.percentile(dist, 90) < 0.05, np.percentile(dist, [50, 90, 100])
    assert harness.wait_for(lambda: harness.received["instance"])
    assert harness.received["instance"][-1].header.frame_id == "map"
    objects = harness.received["objects"][-1]
    assert objects.header.frame_id == "map" and objects.scale_known
    markers = harness.wait_for(lambda: harness.received["markers"]) and harness.received["markers"][-1]
    assert markers.markers[0].action == Marker.DELETEALL
    assert len(markers.markers) == 1 + 2 * len(objects.objects)
    def latest_values() -> dict:
        diag = harness.received["diag"]
        return {kv.key: kv.value for kv in diag[-1].status[0].values} if diag else {}

    assert harness.wait_for(lambda: any(k.startswith("latency_") for k in latest_values()), 10)
    values = latest_values()
    assert "buffer_fill" in values and int(values["map_objects"]) == len(objects.objects)
    assert values["alignment"] == "tf" and values["scale_known"] == "True"


def test_queries_answer_from_the_map(harness, scene) -> None:
    assert harness.wait_for(lambda: harness.node.session.snapshot is not None, 120)
    r = harness.ask("mug", max_results=3, return_clouds=True)
    assert r.success and r.header.frame_id == "map" and r.scale_known
    assert list(r.scores) == sorted(r.scores, reverse=True) and len(r.objects) == len(r.clouds) <= 3
    if r.objects:
        assert r.clouds[0].width == r.objects[0].point_count or r.clouds[0].width > 0
    for text, fragment in (("", "empty query"), ("   ", "empty query"), ("x" * 10_000, "too long")):
        bad = harness.ask(text)
        assert not bad.success and fragment in bad.message
    assert harness.ask("tasse à café ☕").success  # non-ASCII is a valid description
    # the calibrated relevance: every object ranked at 0, none reaches 1 ("no object matches", still answered)
    ranked = harness.ask("mug", max_results=0, min_relevance=0.0)
    assert ranked.success and not ranked.no_match and ranked.min_relevance == 0.0
    assert len(ranked.relevances) == len(ranked.objects) == len(harness.node.session.map.objects)
    assert all(0.0 < v < 1.0 for v in ranked.relevances)
    none = harness.ask("mug", min_relevance=1.0)
    assert none.success and none.no_match and list(none.objects) == [] and none.min_relevance == 1.0
    assert none.message.startswith("no object matches 'mug' (closest: #")
    default = harness.ask("mug", max_results=0)  # the node's panoptic.min_relevance (0.5 here)
    assert default.min_relevance == 0.5 and all(v >= 0.5 for v in default.relevances)
    assert default.no_match == (len(default.objects) == 0)
    assert not harness.ask("mug", min_relevance=1.5).success
    moved = harness.ask("mug", target_frame=CAMERA)
    assert moved.success and moved.header.frame_id == CAMERA
    unknown = harness.ask("mug", target_frame="nowhere")
    assert not unknown.success and "no transform" in unknown.message


# The shipped demo model (synthetic scenes, 112x112) on a held-out scene it never saw in training. The query
# class is the thing this model labels best (chair IoU 0.69; small objects are mostly missed: see
# models/demo_tiny/MODEL_CARD.md), so the test checks the node, not the model's weak classes. With measured
# depth and poses over the 20 held-out scenes, the "chair" answer is the object nearest the true chair in 7
# of 15 scenes with a chair and lies nearer a true chair than any other true object in 14 of 15; this scene
# (the second held-out one) is one of the 7.
DEMO_MODEL = Path(__file__).resolve().parents[1] / "models" / "demo_tiny"
QUERY_SEED, QUERY_TEXT = 100_001, "chair"


def test_query_returns_the_object_nearest_the_ground_truth_centroid() -> None:
    """Demo model + depth + poses through the node: the answer to a class query is, among every object
    the node published, the one nearest the true centroid of that object, metric, in the map frame."""
    from eps3d_ros.data.scene_layout import CLASS_NAMES, STUFF_CLASSES

    truth = generate_scene(seed=QUERY_SEED, num_views=4, height=112, width=112)
    h = Harness(namespace="demo", **{
        "model.allow_random_weights": False, "model.weights": str(DEMO_MODEL),
        "pipeline.max_alignment_error": 0.25, "pipeline.max_depth_ratio_spread": 0.25,
        "text.model": "eps3d-tiny-clip", "text.pretrained": str(DEMO_MODEL / "text_encoder.safetensors"),
        "panoptic.vocabulary": list(CLASS_NAMES[1:]), "panoptic.stuff": [CLASS_NAMES[i] for i in STUFF_CLASSES],
        "panoptic.clustering.hdbscan.min_cluster_size": 100, "output.max_cloud_points": 20000,
        "pipeline.image_height": 112, "pipeline.image_width": 112,
        "pipeline.window_size": 4, "pipeline.every_n_frames": 4})
    try:
        for i in range(4):
            h.send(truth, i, 50.0 + 0.5 * i)
        assert h.wait_for(lambda: h.received["objects"], 120), "no scene published"
        published = h.received["objects"][-1]
        assert published.header.frame_id == "map" and published.scale_known
        r = h.ask(QUERY_TEXT, max_results=3)
        assert r.success and r.header.frame_id == "map" and r.scale_known and r.objects, r.message
        top = r.objects[0]
        assert top.label == QUERY_TEXT and top.is_thing
        wanted = truth.visible_centroids().get(QUERY_TEXT)  # true centroids (visible surface, map frame)
        assert wanted, "the test scene must show the queried class"
        c = np.array([top.centroid.x, top.centroid.y, top.centroid.z])
        target = min(wanted, key=lambda g: np.linalg.norm(g - c))
        centroids = {o.id: np.array([o.centroid.x, o.centroid.y, o.centroid.z]) for o in published.objects}
        nearest = min(centroids, key=lambda k: np.linalg.norm(centroids[k] - target))
        assert nearest == top.id, (top.id, nearest, {k: np.round(v, 2) for k, v in centroids.items()})
        assert np.linalg.norm(c - target) < 0.25, (c, target)  # metres
        # the box holds the centroid, and the answer in the camera frame is the same point
        lo, hi = np.array([top.aabb_min.x, top.aabb_min.y, top.aabb_min.z]), \
            np.array([top.aabb_max.x, top.aabb_max.y, top.aabb_max.z])
        assert np.all(lo <= c) and np.all(c <= hi)
        moved = h.ask(QUERY_TEXT, max_results=1, target_frame=CAMERA)  # the camera pose at the scene stamp
        assert moved.success and moved.header.frame_id == CAMERA and moved.objects[0].id == top.id
        P = truth.poses[3].astype(np.float64)  # camera-to-world of the latest frame (stamp 51.5)
        m = moved.objects[0].centroid
        np.testing.assert_allclose([m.x, m.y, m.z], P[:3, :3].T @ (c - P[:3, 3]), atol=1e-3)
    finally:
        h.close()


def test_bad_input_is_reported_and_the_node_keeps_serving(harness, scene) -> None:
    stats = harness.node.session.stats
    before = stats()["bad_input"]
    harness.send(scene, 0, 20.0, encoding="yuv422")  # unsupported encoding
    assert harness.wait_for(lambda: stats()["bad_input"] > before, 10)
    assert "yuv422" in stats()["last_error"]
    harness.send(scene, 1, 20.5, rgb_override=scene.rgb[1][:42])  # image smaller than its camera_info
    assert harness.wait_for(lambda: "camera_info is for" in stats()["last_error"], 10)
    assert harness.ask("mug").success  # still serving


def test_vocabulary_changes_at_runtime(harness) -> None:
    session = harness.node.session
    assert harness.wait_for(lambda: session.snapshot is not None, 120)
    harness.node.set_parameters([Parameter("panoptic.vocabulary", value=["floor", "table", "teapot"])])
    assert harness.wait_for(lambda: session.snapshot.scene.vocabulary == ("floor", "table", "teapot"), 30)
    assert harness.wait_for(lambda: session.map.vocabulary == ("floor", "table", "teapot"), 30)
    assert {o.label for o in session.map.objects} <= {"floor", "table", "teapot"}
    bad = harness.node.set_parameters([Parameter("panoptic.vocabulary", value=["mug", " "])])
    assert not bad[0].successful and "non-empty" in bad[0].reason
    assert session.snapshot.scene.vocabulary == ("floor", "table", "teapot")  # unchanged


def test_reconstruct_and_reset_services(harness) -> None:
    r = harness.call(harness.reconstruct, Trigger.Request())
    assert r.success and "queued" in r.message
    r = harness.call(harness.reset, Trigger.Request())
    assert r.success and harness.node.session.snapshot is None and harness.node.session.map.objects == []
    r = harness.call(harness.reconstruct, Trigger.Request())
    assert not r.success and "no frames" in r.message
    assert not harness.ask("mug").success


def test_configure_fails_cleanly_without_weights() -> None:
    h = Harness(namespace="no_weights", **{"model.allow_random_weights": False})
    try:
        # configure failed (logged): unconfigured, nothing loaded, no subscriptions or services
        assert h.node.session is None and h.node._map_services is None and h.node._input is None
    finally:
        h.close()


def test_configure_refuses_a_window_that_cannot_fit() -> None:
    """pipeline.max_memory_mb below the window's estimate: configure fails before the network loads, saying the
    estimate and the fix; the node stays unconfigured (and running)."""
    from eps3d_ros.pipeline.loading import load_reconstructor
    from eps3d_ros.pipeline.memory import MemoryLimitError, estimate_window_memory
    from eps3d_ros.settings.tree import Eps3dConfig

    cfg = Eps3dConfig()
    cfg.model.allow_random_weights = True
    cfg.pipeline.window_size, cfg.pipeline.image_height, cfg.pipeline.image_width = 4, 448, 448
    cfg.pipeline.max_memory_mb = 1000.0
    need = estimate_window_memory(4, 448, 448).total_bytes / 2**30
    assert 2.4 < need < 2.6  # 2601 MiB measured for 4 x 448² with the demo model
    with pytest.raises(MemoryLimitError, match=rf"a window of 4 view\(s\) of 448x448 \(HxW\) needs about {need:.1f} GiB "
                                               r"but 1.0 GiB is the limit \(pipeline.max_memory_mb\).*at most 1 at this size"):
        load_reconstructor(cfg)
    h = Harness(namespace="too_big", **{"pipeline.max_memory_mb": 1000.0, "pipeline.image_height": 448,
                                        "pipeline.image_width": 448, "pipeline.window_size": 4})
    try:
        assert h.node.session is None and h.node._map_services is None and h.node._input is None
    finally:
        h.close()


def test_separate_client_is_answered_while_inference_runs(scene) -> None:
    """A client in another process queries while a reconstruction is in the middle of running: every call is
    answered before that run finishes, so the service never waits for inference.

    The real reconstruction runs, but is held at its start by a gate until the client is done; a service that
    blocked on inference would time out instead of answering (no wall-clock threshold needed). Latency under
    load is measured by ``bench/bench_node.py``, not here.
    """
    import json
    import subprocess
    import sys
    from pathlib import Path

    h = Harness(namespace="busy", **{"pipeline.every_n_frames": 0,  # only on ~/reconstruct
                                      "pipeline.image_height": 112, "pipeline.image_width": 112,
                                      "pipeline.use_measured_depth": False})
    try:
        small = generate_scene(seed=6, num_views=3, height=112, width=112)
        for i in range(3):
            h.send(small, i, 30.0 + 0.5 * i)
        session = h.node.session
        assert h.wait_for(lambda: len(session.buffer) == 3, 20)
        assert h.call(h.reconstruct, Trigger.Request()).success
        assert h.wait_for(lambda: session.snapshot is not None, 120)
        first = session.snapshot

        gate, entered = threading.Event(), threading.Event()
        rec = session.reconstructor
        real_run = rec.run

        def held_run(frames):  # the real reconstruction, started only when the client has finished
            entered.set()
            assert gate.wait(300), "gate never opened"
            return real_run(frames)

        rec.run = held_run
        runs_before = session.stats()["worker_runs"]
        assert h.call(h.reconstruct, Trigger.Request()).success
        assert entered.wait(30)
        client = Path(__file__).parent / "helpers" / "query_client.py"
        try:
            proc = subprocess.run([sys.executable, str(client), "/busy/eps3d_node/query_objects", "10", "0.05"],
                                  capture_output=True, text=True, timeout=180)
            running_throughout = session.stats()["worker_busy"] and session.stats()["worker_runs"] == runs_before
        finally:
            gate.set()
        assert proc.returncode == 0, proc.stderr[-2000:]
        calls = json.loads(proc.stdout.strip().splitlines()[-1])["calls"]
        assert len(calls) == 10 and all(c["done"] and c["success"] for c in calls), calls
        assert running_throughout  # every answer came while the run was still in progress
        # answers came from the map of the previous window; the held run then completes and is fused
        assert h.wait_for(lambda: session.stats()["worker_runs"] == runs_before + 1, 120)
        assert h.wait_for(lambda: session.snapshot is not first, 30)
    finally:
        h.close()


def test_rosbag_replay_with_depth_and_tf_is_metric(tmp_path) -> None:
    """Redwood RGB-D (real sensor) as a rosbag2 → node with depth + poses → cloud on the fused measured cloud."""
    from scipy.spatial import cKDTree

    from helpers import REPO
    from eps3d_ros.data.redwood import load_rgbd_sequence
    from helpers.redwood_bag import CAMERA_FRAME, read_bag, write_rgbd_bag

    seq = load_rgbd_sequence(REPO.parent / "shared" / "data" / "redwood_rgbd")
    bag = write_rgbd_bag(seq, tmp_path / "redwood")
    h = Harness(namespace="bag", **{"pipeline.image_height": 168, "pipeline.image_width": 224,
                                     "pipeline.window_size": 5, "pipeline.every_n_frames": 5,
                                     "pipeline.use_measured_depth": True, "output.max_cloud_points": 20000})
    try:
        topics = {"/camera/rgb/image": h.rgb, "/camera/depth/image": h.depth, "/camera/rgb/camera_info": h.info}
        received = lambda: h.node.session.health.stats()["input_rgb_received"]  # noqa: E731
        for topic, _, msg in read_bag(bag):
            if topic == "/tf":
                h.publish_pose(msg)  # in the node's pose source before the images of its stamp
            elif topic == "/camera/rgb/image":
                before = received()
                h.rgb.publish(msg)
                assert h.wait_for(lambda: received() > before, 10)  # a camera's pace: one image after the other
            else:
                topics[topic].publish(msg)
        assert h.wait_for(lambda: h.received["semantic"], 120), "no cloud from the bag"
        cloud = h.received["semantic"][-1]
        assert cloud.header.frame_id == "map"
        pts = cloud_to_array(cloud)
        xyz = np.stack([pts["x"], pts["y"], pts["z"]], 1).astype(np.float64)
        fused = np.concatenate([seq.world_points(i).reshape(-1, 3) for i in range(5)])
        dist, _ = cKDTree(fused[np.isfinite(fused).all(1)][::3]).query(xyz)
        # the published map's points are voxel means: the bulk on the measured surfaces
        assert np.percentile(dist, 50) < 0.01, np.percentile(dist, [50, 75, 99])
        # the window's Gaussians lie on the fused measured cloud where the sensor measured depth (measured depth
        # through TF); the rest (no depth: ~15 % of Redwood's pixels) keep the random network's centres
        means = h.node.session.snapshot.scene.means.astype(np.float64)
        dist, _ = cKDTree(fused[np.isfinite(fused).all(1)][::3]).query(means)
        assert np.percentile(dist, 75) < 0.01, np.percentile(dist, [50, 75, 99])
        assert h.node.session.snapshot.scale_known and h.node.session.snapshot.frame_id == "map"
        assert CAMERA_FRAME in h.node.pose_source.frames()
    finally:
        h.close()


class _FailingModel(torch.nn.Module):
    """Fault injection: a network whose forward raises, as a CUDA OOM would."""

    def forward(self, images):
        raise RuntimeError("CUDA out of memory (injected)")


def test_stream_faults_are_logged_and_the_node_recovers(scene) -> None:
    h = Harness(namespace="faults", **{"pipeline.every_n_frames": 0})
    try:
        n = h.node.session
        # No camera_info: nothing is synchronised, nothing is buffered, the node keeps running.
        h.send(scene, 0, 40.0, info=False)
        assert h.wait_for(lambda: n.health.stats()["input_rgb_received"] >= 1, 10)
        # Zero / NaN depth: the frame is kept, its depth is all invalid.
        h.send(scene, 0, 41.0, depth_override=np.where(scene.depth[0] > 1.0, np.nan, 0.0).astype(np.float32))
        assert h.wait_for(lambda: len(n.buffer) == 1, 10)
        # the colour image without camera_info (taken before this one: same subscription, in order) never
        # became a frame
        assert [f.stamp for f in n.buffer.frames()] == [41.0]
        assert np.isnan(n.buffer.frames()[-1].depth).all()
        # Out-of-order and stale stamps are refused with a reason.
        h.send(scene, 1, 40.5)
        assert h.wait_for(lambda: n.buffer.stats()["dropped"].get("out_of_order", 0) >= 1, 10), n.buffer.stats()
        h.send(scene, 1, 30.0)  # 11 s older than the newest frame: more than max_frame_age (5 s)
        assert h.wait_for(lambda: n.buffer.stats()["dropped"].get("stale", 0) >= 1, 10), n.buffer.stats()
        assert len(n.buffer) == 1  # only the frame at 41.0 s
        # Image size change mid-stream: nothing is dropped; each frame is kept at its own network size (aspect
        # kept: 56x84 in an 84x112 box is 70x112) and a window brings them to one.
        small = generate_scene(seed=5, num_views=4, height=56, width=84)
        h.send(small, 2, 42.0)
        assert h.wait_for(lambda: len(n.buffer) == 2, 10), n.buffer.stats()
        assert [f.size for f in n.buffer.frames()] == [(84, 112), (70, 112)]
        assert n.buffer.stats()["dropped_total"] == 2  # the out-of-order and the stale frame above
        # TF missing: frames without a pose; with depth the scene is metric in the camera frame.
        for i in range(3):
            h.send(small, i, 43.0 + 0.5 * i, pose=False)
        # all three buffered before the window is asked for (two older, posed frames are in the buffer already:
        # a window taken earlier would hold one of them and land in the map frame)
        assert h.wait_for(lambda: [f.stamp for f in n.buffer.frames()][-3:] == [43.0, 43.5, 44.0], 10)
        assert n.reconstruct_now()[0]
        assert h.wait_for(lambda: n.snapshot is not None, 60)
        assert n.snapshot.frame_id == CAMERA and n.snapshot.scale_known  # scale from the measured depth
        # A network failure during inference is reported; the node keeps serving the last scene.
        good = n.reconstructor.model
        n.reconstructor.model = _FailingModel()
        failures = n.stats()["failures"]
        assert n.reconstruct_now()[0]
        assert h.wait_for(lambda: n.stats()["failures"] > failures, 30)
        assert "CUDA out of memory" in n.stats()["last_error"]
        assert h.ask("mug").success
        n.reconstructor.model = good
        assert n.reconstruct_now()[0]
        assert h.wait_for(lambda: n.stats()["worker_runs"] >= 2, 60)
    finally:
        h.close()


def test_without_depth_or_tf_scale_is_unknown(scene) -> None:
    h = Harness(namespace="nodepth", **{"pipeline.use_depth": False, "pipeline.use_measured_depth": False})
    try:
        for i in range(3):
            h.send(scene, i, 50.0 + 0.5 * i, depth=False, pose=False)
        assert h.wait_for(lambda: h.node.session.snapshot is not None, 120)
        snap = h.node.session.snapshot
        assert snap.frame_id == CAMERA and not snap.scale_known
        r = h.ask("mug")
        assert r.success and not r.scale_known and "scale unknown" in r.message
        assert h.wait_for(lambda: h.received["objects"], 10) and not h.received["objects"][-1].scale_known
        assert h.wait_for(lambda: any(s.message == "scale unknown" for d in h.received["diag"] for s in d.status), 5)
    finally:
        h.close()


def test_lifecycle_cycles_leave_one_publisher_per_topic_and_nothing_stale(scene) -> None:
    """cleanup destroys what configure created: after each cycle one publisher per output topic, and a late
    subscriber after a cleanup + configure gets no scene from before it."""
    h = Harness(namespace="cycles")
    try:
        n, peer = h.node, h.peer
        for i in range(3):
            h.send(scene, i, 60.0 + 0.5 * i)
        assert h.wait_for(lambda: n.session is not None and n.session.map.objects, 120)
        topics = ["/cycles/eps3d_node/semantic_cloud", "/cycles/eps3d_node/instance_cloud",
                  "/cycles/eps3d_node/objects", "/cycles/eps3d_node/markers"]
        for cycle in range(3):
            n.trigger_deactivate()
            if cycle == 0:  # the services stay (no destroy racing a running callback) and say why they refuse
                r = h.ask("mug")
                assert not r.success and "not active" in r.message, r.message
            n.trigger_cleanup()
            assert n.session is None and n._outputs is None
            assert h.wait_for(lambda: all(peer.count_publishers(t) == 0 for t in topics), 10), \
                {t: peer.count_publishers(t) for t in topics}
            n.trigger_configure()
            n.trigger_activate()
            assert h.wait_for(lambda: all(peer.count_publishers(t) == 1 for t in topics), 10), \
                {t: peer.count_publishers(t) for t in topics}
            assert h.wait_for(lambda: [t for t, _ in peer.get_publisher_names_and_types_by_node(
                "eps3d_node", "/cycles")].count("/diagnostics") == 1, 10)
            assert len(peer.get_service_names_and_types_by_node("eps3d_node", "/cycles")) > 0
        late = []
        peer.create_subscription(ObjectArray, "eps3d_node/objects", late.append, LATCHED)
        r = h.ask("mug")
        assert not r.success and "no scene yet" in r.message
        for i in range(3):  # a new map: its objects are the first thing the late subscriber receives
            h.send(scene, i, 70.0 + 0.5 * i)
        assert h.wait_for(lambda: late, 120)
        first = late[0].header.stamp.sec + 1e-9 * late[0].header.stamp.nanosec
        assert first >= 70.0, f"a late subscriber got objects stamped {first:.2f} s, from before the cleanups"
    finally:
        h.close()


def test_max_results_zero_means_no_limit_and_texts_are_echoed_safely(harness, scene) -> None:
    for i in range(3):
        harness.send(scene, i, 80.0 + 0.5 * i)
    assert harness.wait_for(lambda: harness.node.session.map.objects, 120)
    n = len(harness.node.session.map.objects)
    r = harness.ask("mug", max_results=0, min_relevance=0.0)  # QueryObjects.srv: 0 = no limit; 0: every object
    assert r.success and len(r.objects) == n
    r = harness.ask("mug\x1b[2J\x07", max_results=1)
    assert r.success and "\x1b" not in r.message and "\\x1b" in r.message


def test_camera_info_with_a_principal_point_outside_the_image_is_refused(harness, scene) -> None:
    stats = harness.node.session.stats
    before = stats()["bad_input"]
    frame = synthetic_frames(scene, [90.0] * scene.num_views, frame_id=CAMERA)[0]
    msgs = frame_messages(frame)
    msgs.info.k[2] = -5.0  # cx
    harness.info.publish(msgs.info)
    harness.depth.publish(msgs.depth)
    harness.rgb.publish(msgs.image)
    assert harness.wait_for(lambda: stats()["bad_input"] > before, 10)
    msg = stats()["last_error"]
    assert "principal point (-5, " in msg and "np.float64" not in msg


def test_a_failing_activate_returns_failure_with_the_reason_and_unknown_parameters_are_named(capfd) -> None:
    import rclpy
    from rclpy.lifecycle import TransitionCallbackReturn

    from eps3d_ros.ros.node import Eps3dNode
    from helpers.node_harness import BASE, overrides

    class NoTimers(Eps3dNode):  # fault injection: the diagnostics timer cannot be made
        def create_timer(self, *args, **kwargs):
            raise RuntimeError("no timer left (injected)")

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = NoTimers(context=ctx, namespace="failing", parameter_overrides=overrides(
        {**BASE, "autostart": False, "pipeline.windowsize": 3, "modle.weights": "x"}))
    try:
        assert node.unknown_parameters == {"modle.weights": "model.weights",
                                           "pipeline.windowsize": "pipeline.window_size"}
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.FAILURE
        assert node._state_machine.current_state[1] == "inactive"  # FAILURE: back where it was, not errorprocessing
        assert node.pose_source is None and node._input is None  # nothing half-made is left subscribed
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS and node.session is None
        err = capfd.readouterr().err
        assert "unknown parameter 'pipeline.windowsize' ignored: did you mean 'pipeline.window_size'?" in err
        assert "activate failed: RuntimeError: no timer left (injected)" in err
    finally:
        node.close()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
