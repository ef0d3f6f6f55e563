"""The cameras' input rules, in the core without rclpy (ros/ only wires them): the depth decision with frames held
(not dropped) while it is open, the rate limit, the wait for a transform and the drop that names it, the settings
of several cameras."""

from __future__ import annotations

import numpy as np
import pytest

from eps3d_ros.frames.depth_liveness import TRIPLE_DELIVERS, USE, WAITING_FOR_DEPTH, DepthLiveness
from eps3d_ros.frames.frame import Frame
from eps3d_ros.frames.intake import views_per_camera
from eps3d_ros.pipeline.camera_inputs import RATE_LIMITED, CameraInputs
from eps3d_ros.pipeline.session import Session
from eps3d_ros.settings.cameras import camera_topics
from eps3d_ros.settings.dotted import config_from_values, set_dotted
from eps3d_ros.settings.tree import Eps3dConfig, config_leaves

K = np.array([[30.0, 0, 13.5], [0, 30.0, 13.5], [0, 0, 1]])


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def frame(camera: str, stamp: float, pose: bool = False) -> Frame:
    p = np.eye(4) if pose else None
    return Frame(stamp, np.zeros((42, 42, 3), np.uint8), K, f"{camera}_optical", pose=p, camera=camera)


def config(**values) -> Eps3dConfig:
    cfg = Eps3dConfig()
    set_dotted(cfg, {"pipeline.image_height": 42, "pipeline.image_width": 42, **values})
    return cfg


# ------------------------------------------------------------------------------------------- settings
def test_cameras_are_a_list_with_settings_per_camera() -> None:
    default = config_leaves(Eps3dConfig())
    # one camera with the node's original topic names: existing launch files and remaps keep working
    assert default["input.cameras"] == ["camera"]
    assert camera_topics("camera", Eps3dConfig().input.camera("camera")) == {
        "rgb": "rgb/image", "info": "rgb/camera_info", "depth": "depth/image"}
    cfg = config_from_values({"model.allow_random_weights": True, "input.cameras": ["head", "wrist"],
                              "input.wrist.use_depth": False, "input.wrist.max_rate_hz": 5,
                              "input.head.image_topic": "/head/color/image_raw"})
    assert camera_topics("wrist", cfg.input.camera("wrist")) == {
        "rgb": "wrist/image", "info": "wrist/camera_info", "depth": "wrist/depth"}
    assert camera_topics("head", cfg.input.camera("head"))["rgb"] == "/head/color/image_raw"
    assert cfg.camera_use_depth("wrist") == "false" and cfg.camera_use_depth("head") == "auto"  # pipeline's
    assert cfg.input.camera("wrist").max_rate_hz == 5.0
    names = config_leaves(cfg)
    assert "input.head.use_depth" in names and "input.camera.use_depth" not in names
    with pytest.raises(ValueError, match=r"unknown parameter 'input.wirst.use_depth' \(did you mean "
                                         r"'input.wrist.use_depth'\?\)"):
        config_from_values({"model.allow_random_weights": True, "input.cameras": ["head", "wrist"],
                            "input.wirst.use_depth": "true"})
    for bad, message in ((["head", "head"], "names a camera twice"), (["2cam"], "not a camera name"),
                         ([], "at least one camera"), (["tf_timeout"], "name of a setting")):
        with pytest.raises(ValueError, match=message):
            config_from_values({"model.allow_random_weights": True, "input.cameras": bad})
    with pytest.raises(ValueError, match="input.head.use_depth must be one of"):
        config_from_values({"model.allow_random_weights": True, "input.cameras": ["head"],
                            "input.head.use_depth": "maybe"})


# -------------------------------------------------------------------------------------- the depth decision
def test_no_publisher_on_the_depth_topic_decides_at_once_and_a_new_one_opens_it_again() -> None:
    d = DepthLiveness("auto", timeout=2.0)
    d.saw("rgb", 10.0)
    d.publishers(0)
    assert d.pair(10.0) == USE and not d.undecided  # nobody publishes depth: colour alone, no wait
    assert d.before_depth  # so the node asks the graph again with every pair until a depth image comes
    d.publishers(1)  # a depth camera appears
    d.saw("rgb", 11.0)
    assert d.undecided and d.pair(11.0) == WAITING_FOR_DEPTH and d.pair(12.9) == WAITING_FOR_DEPTH
    assert d.pair(13.0) == USE  # 2 s of stamps without depth from it
    d.saw("depth", 14.0)
    assert d.pair(14.0) == TRIPLE_DELIVERS and d.pair(13.5, held=True) == USE  # held from before depth began
    assert not d.before_depth and not DepthLiveness("true").before_depth


def test_frames_held_while_depth_is_undecided_are_used_once_it_is_decided() -> None:
    clock = Clock()
    inputs = CameraInputs(config(), clock=clock)
    cam = inputs["camera"]
    cam.depth_publishers(1)  # a depth publisher, but no depth image yet
    for k in range(15):  # a burst of 15 colour frames in one second
        t = 50.0 + k / 15
        cam.saw("rgb", t)
        assert cam.decide("pair", t) == WAITING_FOR_DEPTH
        cam.put(frame("camera", t), held=True)
    assert inputs.ready() == [] and cam.waiting == 15  # held, not dropped
    held = inputs.health.stats()
    assert held["input_held"] == 15 and "waiting_for_depth" not in held["input_refused"]
    clock.t += 2.0  # no depth within the timeout of wall time: decided, colour alone
    out = inputs.ready()
    assert [round(f.stamp, 3) for f in out] == [round(50.0 + k / 15, 3) for k in range(15)] and cam.waiting == 0
    # depth that starts later: pairs held before it are used, those it covers come with their triple
    cam2 = CameraInputs(config(), clock=clock)["camera"]
    cam2.depth_publishers(1)
    for t in (1.0, 1.5):
        cam2.saw("rgb", t)
        assert cam2.decide("pair", t) == WAITING_FOR_DEPTH
        cam2.put(frame("camera", t), held=True)
    cam2.saw("depth", 1.5)
    assert [f.stamp for f in cam2.release(None, lambda: False, lambda *a: False, "map")] == [1.0]
    assert cam2.waiting == 0  # 1.5 left to its triple


def test_the_rate_limit_takes_one_frame_per_period_by_stamp() -> None:
    inputs = CameraInputs(config(**{"input.camera.max_rate_hz": 10.0, "input.camera.use_depth": "false"}))
    cam = inputs["camera"]
    taken = [t for t in (i / 30 for i in range(30)) if cam.decide("pair", t) == USE]
    assert len(taken) == 10 and cam.dropped[RATE_LIMITED] == 20
    assert inputs.stats()["input_dropped"]["rate_limit"] == 20
    assert inputs.health.stats()["input_refused"] == {"rate_limit": 20}


# ------------------------------------------------------------------------------------------- transforms
def test_a_camera_without_its_transform_waits_then_is_dropped_naming_it_and_the_others_go_on() -> None:
    clock = Clock()
    inputs = CameraInputs(config(**{"input.cameras": ["head", "wrist"], "input.tf_timeout": 0.5}), clock=clock)
    known = {"head_optical"}
    lookup = lambda frame_id, stamp: np.eye(4) if frame_id in known else None  # noqa: E731
    inputs.note_pose(frame("head", 1.0, pose=True))  # the head's TF reaches the map
    inputs["wrist"].put(frame("wrist", 1.05))
    inputs["head"].put(frame("head", 1.1))  # no pose at conversion, found when asked again
    out = inputs.ready(lookup, lambda: True)
    assert [(f.camera, f.pose is not None) for f in out] == [("head", True)] and inputs["wrist"].waiting == 1
    known.add("wrist_optical")  # the wrist's transform arrives within the timeout: it goes on, posed
    assert [(f.camera, f.pose is not None) for f in inputs.ready(lookup, lambda: True)] == [("wrist", True)]
    known.discard("wrist_optical")  # ... and then stops
    inputs["wrist"].put(frame("wrist", 1.3))
    inputs["wrist"].put(frame("wrist", 1.4))
    clock.t += 0.6
    assert inputs.ready(lookup, lambda: True) == []  # dropped: the head is posed, an unposed wrist view is not
    problems = dict(inputs.health.problems("map"))
    assert "no transform from 'map' to 'wrist_optical'" in problems["wrist:no_transform:wrist_optical"]
    assert problems["wrist:no_transform:wrist_optical"].startswith("camera 'wrist': 2 frame(s)")
    assert inputs.stats()["input_dropped"]["no_transform"] == 2
    # one camera alone whose TF is missing: after the wait it goes on without a pose (its window in its frame)
    alone = CameraInputs(config(**{"input.cameras": ["head"]}), clock=clock)
    alone.note_pose(frame("head", 1.0, pose=True))
    alone["head"].put(frame("head", 2.0))
    assert alone.ready(lambda *a: None, lambda: True) == []
    clock.t += 0.6
    assert [f.pose for f in alone.ready(lambda *a: None, lambda: True)] == [None]
    # no transform reaches the map at all: no wait
    assert len(CameraInputs(config()).ready()) == 0


class _Recorder:
    """A reconstructor that only records the windows it is given."""

    input_box = (42, 42)

    def __init__(self) -> None:
        self.windows: list = []

    def run(self, frames):
        self.windows.append(list(frames))
        raise RuntimeError("recorded, not reconstructed")


def test_the_session_takes_frames_of_several_cameras_and_reconstruct_now_releases_held_ones() -> None:
    cfg = config(**{"input.cameras": ["head", "wrist"], "pipeline.every_n_frames": 0})
    rec = _Recorder()
    s = Session(cfg, rec)
    try:
        s.watch_inputs()
        s.inputs["wrist"].depth_publishers(1)
        for k in range(4):
            s.take("head", frame("head", 1.0 + 0.1 * k))
            s.inputs["wrist"].saw("rgb", 1.05 + 0.1 * k)
            assert s.inputs["wrist"].decide("pair", 1.05 + 0.1 * k) == WAITING_FOR_DEPTH
            s.take("wrist", frame("wrist", 1.05 + 0.1 * k), held=True)
        assert s.buffer.stats()["cameras"] == {"head": 4}
        assert s.reconstruct_now()[0]  # a window now: the depth decision is made, the held frames go on
        assert s.buffer.stats()["cameras"] == {"head": 4, "wrist": 4}
        assert s.wait_idle(10) and views_per_camera(rec.windows[0]) == {"head": 2, "wrist": 2}
        stats = s.health.stats()
        assert stats["input_used"] == 8 and stats["input_head_used"] == 4 and stats["input_wrist_used"] == 4
    finally:
        s.close()
