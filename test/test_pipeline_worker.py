"""Reconstruction (real tiny network, synthetic frames) and the single inference thread."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.model import EPS3D, EPS3DConfig
from eps3d_ros.text import create_text_encoder
from eps3d_ros.text.clip import register_tiny_test_model
from eps3d_ros.settings.tree import Eps3dConfig
from eps3d_ros.frames.frame import Frame, synthetic_frames
from eps3d_ros.pipeline.reconstruct import Reconstructor, SceneSnapshot
from eps3d_ros.pipeline.worker import InferenceWorker

SIZE = 56


@pytest.fixture(scope="module")
def reconstructor() -> Reconstructor:
    cfg = Eps3dConfig()
    cfg.pipeline.image_height = cfg.pipeline.image_width = SIZE
    cfg.pipeline.use_measured_depth = True
    cfg.panoptic.clustering.max_samples = 1000  # HDBSCAN on 1k samples: fast tests
    model = EPS3D(EPS3DConfig.from_preset("tiny"))
    return Reconstructor(model, create_text_encoder(model=register_tiny_test_model(), pretrained=""), cfg)


@pytest.fixture(scope="module")
def synthetic():
    scene = generate_scene(seed=1, num_views=3, height=SIZE, width=SIZE)  # every pixel hits a surface
    assert scene.valid.all()
    return scene, synthetic_frames(scene, stamps=[10.0, 10.5, 11.0])


def test_reconstruction_is_metric_in_the_map_frame(reconstructor, synthetic) -> None:
    scene, frames = synthetic
    snap = reconstructor.run(frames)
    assert isinstance(snap, SceneSnapshot)
    assert (snap.frame_id, snap.scale_known, snap.alignment.method, snap.measured_depth) == ("map", True, "tf", True)
    assert snap.stamp == 11.0 and snap.window_stamps == (10.0, 10.5, 11.0)
    assert set(snap.timings) == {"preprocess", "network", "alignment", "panoptic", "total"}
    assert snap.timings["total"] >= snap.timings["network"] > 0
    # pixel-aligned Gaussians: centres = measured depth through TF = the true world points
    means = snap.scene.means.reshape(3, SIZE, SIZE, 3)
    for v in range(3):
        np.testing.assert_allclose(means[v], scene.world_points(v), atol=1e-3)
    # objects (whatever random weights call them) lie in the room, near the table (centred over the map
    # origin, z up): map coordinates, not the first camera's
    lo, hi = means.reshape(-1, 3).min(0), means.reshape(-1, 3).max(0)
    assert snap.scene.objects
    for o in snap.scene.objects:
        assert np.all(o.centroid >= lo) and np.all(o.centroid <= hi)
        assert np.linalg.norm(o.centroid[:2]) < 1.5 and 0.0 < o.centroid[2] < 1.5
    # the cameras are those the Gaussians were placed with: each measured view's own pose and calibration, so
    # a render from view v sees the measured surface where the input image saw it
    np.testing.assert_allclose(snap.cameras.extrinsics, scene.extrinsics, atol=1e-6)  # float32 poses
    np.testing.assert_allclose(snap.cameras.predicted_intrinsics, [f.K for f in frames], atol=1e-12)
    cam = snap.cameras.extrinsics[1]
    pts = scene.world_points(1).reshape(-1, 3) @ cam[:, :3].T + cam[:, 3]
    uv = pts @ snap.cameras.predicted_intrinsics[1].T
    u, v = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="xy")
    np.testing.assert_allclose(uv[:, :2] / uv[:, 2:], np.stack([u, v], -1).reshape(-1, 2), atol=1e-3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.frame_id = "x"
    with pytest.raises(TypeError):
        snap.timings["total"] = 0.0


def _with_pipeline(reconstructor, **changes) -> Reconstructor:
    cfg = dataclasses.replace(reconstructor.config, pipeline=dataclasses.replace(reconstructor.config.pipeline, **changes))
    return Reconstructor(reconstructor.model, reconstructor.text_encoder, cfg)


def test_network_centres_are_transformed_into_the_map(reconstructor, synthetic) -> None:
    """Without measured depth, the network's centres go through the TF similarity: its cameras land on TF.

    The random test network's cameras do not fit TF at all, so by default the fit is refused (a silently wrong
    metric map is worse than the camera frame); with the check relaxed the plumbing is what is tested."""
    _, frames = synthetic
    snap = _with_pipeline(reconstructor, use_measured_depth=False).run(frames)
    assert snap.frame_id != "map" and "TF and images disagree" in snap.alignment.warning
    snap = _with_pipeline(reconstructor, use_measured_depth=False, max_alignment_error=1e9,
                          max_depth_ratio_spread=1e9).run(frames)
    assert (snap.frame_id, snap.scale_known, snap.measured_depth) == ("map", True, False)
    assert snap.alignment.warning == "" and np.isfinite(snap.scene.means).all()


def test_depth_only_frames_are_resized_and_stay_in_the_camera_frame(reconstructor) -> None:
    scene = generate_scene(seed=1, num_views=2, height=2 * SIZE, width=2 * SIZE)
    frames = synthetic_frames(scene, with_pose=False, frame_id="head_camera_optical")
    # the random network's depth has no consistent ratio to the measured one: no scale by default
    assert "depth disagree" in reconstructor.run(frames).alignment.warning
    reconstructor = _with_pipeline(reconstructor, max_depth_ratio_spread=1e9)
    snap = reconstructor.run(frames)
    assert (snap.frame_id, snap.scale_known, snap.alignment.method, snap.measured_depth) == (
        "head_camera_optical", True, "depth", False)
    assert snap.scene.num_gaussians == 2 * SIZE * SIZE
    bare = [Frame(f.stamp, f.rgb, f.K, f.frame_id) for f in frames]
    snap = reconstructor.run(bare)
    assert (snap.scale_known, snap.alignment.method) == (False, "none")
    with pytest.raises(ValueError, match="empty window"):
        reconstructor.run([])


def test_worker_runs_the_real_reconstructor(reconstructor, synthetic) -> None:
    _, frames = synthetic
    results, errors = [], []
    w = InferenceWorker(reconstructor, results.append, lambda e, f: errors.append(e))
    try:
        assert w.submit(frames)
        assert w.wait_idle(60)
        assert errors == [] and len(results) == 1
        assert results[0].frame_id == "map"
        s = w.stats()
        assert s["runs"] == 1 and s["failures"] == 0 and s["last_duration"] > 0 and not s["busy"]
    finally:
        assert w.stop(10)


class Gate:
    """A stand-in reconstructor: returns its input's stamps after a gate opens; raises on request."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.calls = []

    def run(self, frames):
        self.calls.append(frames)
        self.started.set()
        self.gate.wait(10)
        if frames == ["boom"]:
            raise RuntimeError("network failed")
        return tuple(frames)


def test_pending_window_is_replaced_by_a_newer_one() -> None:
    rec, results = Gate(), []
    w = InferenceWorker(rec, results.append, lambda e, f: None)
    try:
        w.submit(["a"])
        assert rec.started.wait(5) and w.stats()["busy"]
        w.submit(["b"])  # waits
        w.submit(["c"])  # replaces "b", which never started
        rec.gate.set()
        assert w.wait_idle(5)
        assert results == [("a",), ("c",)] and rec.calls == [["a"], ["c"]]
        s = w.stats()
        assert s["replaced"] == 1 and s["runs"] == 2 and s["submitted"] == 3
    finally:
        w.stop(5)


def test_exceptions_are_reported_and_the_worker_continues() -> None:
    rec, results, errors = Gate(), [], []
    rec.gate.set()
    w = InferenceWorker(rec, results.append, lambda e, f: errors.append((type(e).__name__, str(e), f)))
    try:
        w.submit(["boom"])
        assert w.wait_idle(5)
        assert errors == [("RuntimeError", "network failed", ["boom"])] and results == []
        w.submit(["ok"])
        assert w.wait_idle(5) and results == [("ok",)] and w.alive
        s = w.stats()
        assert s["failures"] == 1 and s["runs"] == 1 and s["last_error"] == "RuntimeError: network failed"
    finally:
        w.stop(5)
    # callbacks that raise do not kill the thread either
    def bad_result(_):
        raise ValueError("publisher gone")

    w = InferenceWorker(lambda frames: frames, bad_result, None)
    try:
        w.submit(["x"])
        w.submit(["y"])
        assert w.wait_idle(5) and w.alive and w.stats()["runs"] in (1, 2)
    finally:
        w.stop(5)


def test_stop_joins_and_refuses_new_work() -> None:
    rec = Gate()
    w = InferenceWorker(rec, None, None)
    w.submit(["a"])
    assert rec.started.wait(5)
    w.submit(["b"])  # pending: discarded by stop
    assert not w.stop(timeout=0.1)  # "a" is still running (held by the gate): stop returned without it
    rec.gate.set()
    assert w.stop(timeout=5) and not w.alive
    assert rec.calls == [["a"]] and w.stats()["discarded_on_stop"] == 1
    assert w.submit(["c"]) is False
    with pytest.raises(ValueError, match="empty window"):
        w.submit([])


def test_jobs_run_in_order_after_the_windows_queued_before_them() -> None:
    """A job (relabelling, say) queued after a window sees that window's result: one thread, one order."""
    rec, order = Gate(), []
    w = InferenceWorker(rec, lambda r: order.append(("result", r)), None)
    latest = lambda: next((r for kind, r in reversed(order) if kind == "result"), None)  # noqa: E731
    try:
        w.submit(["a"])
        assert rec.started.wait(5)
        w.submit(["b"])  # waits behind "a"
        assert w.call(lambda: order.append(("job", latest())))
        w.submit(["c"])  # replaces "b", queued after the job
        rec.gate.set()
        assert w.wait_idle(5)
        assert order == [("result", ("a",)), ("job", ("a",)), ("result", ("c",))]
        assert w.stats()["jobs"] == 1 and w.stats()["replaced"] == 1
        w.call(lambda: 1 / 0)  # a failing job is logged; the thread goes on
        w.submit(["d"])
        assert w.wait_idle(5) and latest() == ("d",) and w.alive
    finally:
        w.stop(5)
    assert w.call(lambda: None) is False
