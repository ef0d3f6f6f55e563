"""Input health: each way of never using a frame is named by the topic to look at (a fake clock, no ROS)."""

from __future__ import annotations

from eps3d_ros.pipeline.input_health import GRACE_S, InputHealth

TOPICS = {"rgb": "/cam/rgb/image", "info": "/cam/rgb/camera_info", "depth": "/cam/depth/image"}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def stream(h: InputHealth, clock: Clock, seconds: float, keys=("rgb", "info"), synced: bool = False,
           used: bool = False, hz: float = 10.0) -> None:
    stamp = clock.t
    for _ in range(int(seconds * hz)):
        clock.t += 1.0 / hz
        stamp += 1.0 / hz
        for k in keys:
            h.received(k, stamp)
        if synced:
            h.synchronised()
        if used:
            h.used(stamp)


def problems(h: InputHealth, **kw) -> dict[str, str]:
    return dict(h.problems(**kw))


def test_healthy_input_has_no_problem_and_reports_rates() -> None:
    clock = Clock()
    h = InputHealth(TOPICS, "auto", 0.05, clock=clock)
    stream(h, clock, 4.0, synced=True, used=True)
    assert problems(h) == {}
    s = h.stats()
    assert s["input_rgb_received"] == 40 and 9.0 <= s["input_rgb_hz"] <= 10.5 and s["input_used"] == 40
    assert s["input_depth_received"] == 0 and s["input_newest_frame_stamp"] is not None


def test_missing_camera_info_is_named() -> None:
    clock = Clock()
    h = InputHealth(TOPICS, "auto", 0.05, clock=clock)
    stream(h, clock, GRACE_S + 1, keys=("rgb",))
    p = problems(h)
    assert list(p) == ["no_camera_info"] and "/cam/rgb/camera_info never" in p["no_camera_info"]


def test_waiting_for_depth_is_named_only_when_depth_is_required() -> None:
    clock = Clock()
    h = InputHealth(TOPICS, "true", 0.05, clock=clock)
    stream(h, clock, GRACE_S + 1)
    p = problems(h)
    assert list(p) == ["no_depth"] and "waiting for depth on /cam/depth/image" in p["no_depth"]
    assert "use_depth to auto" in p["no_depth"]


def test_stamps_that_never_match_are_named_with_their_offset() -> None:
    clock = Clock()
    h = InputHealth(TOPICS, "auto", 0.05, clock=clock)
    stream(h, clock, GRACE_S + 1)
    h.received("info", clock.t + 0.4)  # camera_info stamped 0.4 s ahead of the images
    p = problems(h)
    assert "no_sync" in p and "within sync_slop 0.05 s" in p["no_sync"] and "+0.4" in p["no_sync"]


def test_frames_refused_poses_missing_and_no_windows() -> None:
    clock = Clock()
    h = InputHealth(TOPICS, "auto", 0.05, clock=clock)
    stream(h, clock, GRACE_S + 1, synced=True)
    h.refused("stale", "frame at 1.0 s is 9 s older than the newest")
    p = problems(h)
    assert "all_refused" in p and "stale 1" in p["all_refused"] and "9 s older" in p["all_refused"]
    stream(h, clock, 1.0, synced=True, used=True)
    h.without_pose("cam_optical")
    assert "no_pose:cam_optical" not in problems(h, transforms_seen=False)  # a camera without TF: expected
    p = problems(h, map_frame="map", transforms_seen=True)
    assert "no transform from 'map' to 'cam_optical'" in p["no_pose:cam_optical"]
    h.with_pose("cam_optical")
    assert "no_pose:cam_optical" not in problems(h)
    assert "no_windows" in problems(h, every_n_frames=0)


def test_lost_colour_images_are_named() -> None:
    """Large images over best-effort QoS lose fragments: camera_info arrives, most images do not."""
    clock = Clock()
    h = InputHealth(TOPICS, "auto", 0.05, clock=clock)
    for i in range(60):
        clock.t += 0.1
        h.received("info", clock.t)
        if i % 4 == 0:
            h.received("rgb", clock.t)
            h.synchronised()
            h.used(clock.t)
    p = problems(h)
    assert "rgb_loss" in p and "% of the images are lost" in p["rgb_loss"] and "input_qos" in p["rgb_loss"]
