"""Frame buffer admission rules and keyframe windows."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from eps3d_ros.settings.tree import PipelineConfig
from eps3d_ros.pipeline.frame_buffer import EmptyBufferError, FrameBuffer
from eps3d_ros.frames.frame import Frame

K = np.array([[50.0, 0, 15.5], [0, 50.0, 11.5], [0, 0, 1]])


def frame(stamp: float, pose: np.ndarray | None = None, size: tuple[int, int] = (24, 32)) -> Frame:
    return Frame(stamp, np.zeros((*size, 3), np.uint8), K, "cam", pose=pose)


def pose_at(x: float = 0.0, yaw_deg: float = 0.0) -> np.ndarray:
    a = math.radians(yaw_deg)
    p = np.eye(4)
    p[:3, :3] = [[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]]
    p[0, 3] = x
    return p


def cfg(**kw) -> PipelineConfig:
    base = dict(window_size=3, every_n_frames=4, buffer_size=6, keyframe_min_interval=0.2,
                keyframe_min_translation=0.05, keyframe_min_rotation=5.0, max_frame_age=5.0)
    base.update(kw)
    return PipelineConfig(**base)


def test_ordering_duplicates_and_out_of_order() -> None:
    buf = FrameBuffer(cfg())
    assert buf.add(frame(1.0)) and buf.add(frame(1.1))
    r = buf.offer(frame(1.05))
    assert not r and r.reason == "out_of_order" and "older than the last accepted one (1.100 s)" in r.message
    r = buf.offer(frame(1.1))
    assert not r and r.reason == "duplicate"
    assert [f.stamp for f in buf.frames()] == [1.0, 1.1]
    s = buf.stats()
    assert s["accepted"] == 2 and s["dropped"]["out_of_order"] == 1 and s["dropped"]["duplicate"] == 1
    assert s["dropped_total"] == 2


def test_staleness() -> None:
    buf = FrameBuffer(cfg(max_frame_age=1.0, buffer_size=10))
    for t in (0.0, 0.5, 1.0, 1.4):
        assert buf.add(frame(t))
    r = buf.offer(frame(0.3))  # older than newest - max_frame_age (0.4)
    assert not r and r.reason == "stale" and "more than max_frame_age 1.0 s" in r.message
    assert buf.add(frame(1.8))  # 0.0 and 0.5 fall behind 1.8 - 1.0 = 0.8 and leave
    assert [f.stamp for f in buf.frames()] == [1.0, 1.4, 1.8]
    assert buf.stats()["dropped"]["stale"] == 1 and buf.stats()["dropped"]["aged_out"] == 2  # refused; expired


def test_time_jump_back_resets_after_consecutive_stale_frames() -> None:
    buf = FrameBuffer(cfg(max_frame_age=1.0, buffer_size=10), time_jump_frames=3)
    for t in (100.0, 100.1, 100.2):
        buf.add(frame(t))
    assert not buf.add(frame(0.0)) and not buf.add(frame(0.1))  # a bag loop looks like stale frames...
    r = buf.offer(frame(0.2))  # ...until the third in a row
    assert r and r.reason == "time_jump" and "dropped 3 buffered frames" in r.message
    assert [f.stamp for f in buf.frames()] == [0.2]
    assert buf.add(frame(0.3))
    s = buf.stats()["dropped"]
    assert s["stale"] == 2 and s["time_jump"] == 3


def test_bounded_size_counts_overflow() -> None:
    buf = FrameBuffer(cfg(buffer_size=4))
    for k in range(10):
        buf.add(frame(0.1 * k))
    assert len(buf) == 4 and [round(f.stamp, 1) for f in buf.frames()] == [0.6, 0.7, 0.8, 0.9]
    s = buf.stats()
    assert s["dropped"]["overflow"] == 6 and s["fill"] == 1.0 and s["size"] == 4 and s["capacity"] == 4


def test_size_change_is_noted_and_nothing_is_dropped() -> None:
    """Windows of mixed sizes are brought to one network size by the intake: a size change loses no frame."""
    buf = FrameBuffer(cfg())
    buf.add(frame(0.0))
    buf.add(frame(0.5))
    r = buf.offer(frame(1.0, size=(48, 64)))
    assert r.accepted and r.reason == "size_change" and "from 24x32 to 48x64" in r.message
    assert [f.size for f in buf.frames()] == [(24, 32), (24, 32), (48, 64)]
    assert buf.stats()["dropped_total"] == 0
    # a new K with the same size is fine
    other = Frame(1.5, np.zeros((48, 64, 3), np.uint8), K * [[2], [2], [1]], "cam")
    r = buf.offer(other)
    assert r.accepted and r.reason == "" and len(buf) == 4


def test_ready_and_counter() -> None:
    buf = FrameBuffer(cfg(every_n_frames=3))
    assert not buf.ready()
    for k in range(2):
        buf.add(frame(k))
    assert not buf.ready() and buf.frames_since_window == 2
    buf.add(frame(2))
    assert buf.ready()
    buf.select_window()
    assert not buf.ready() and buf.frames_since_window == 0
    never = FrameBuffer(cfg(every_n_frames=0))
    for k in range(5):
        never.add(frame(k))
    assert not never.ready()  # 0 = only on request
    with pytest.raises(EmptyBufferError, match="no frames buffered"):
        FrameBuffer(cfg()).select_window()


def test_keyframes_by_time_without_poses() -> None:
    buf = FrameBuffer(cfg(window_size=3, buffer_size=10, keyframe_min_interval=0.25))
    for k in range(10):
        buf.add(frame(0.1 * k))
    # from 0.9 back: 0.9, then the first at least 0.25 s older (0.6), then 0.3
    assert [round(f.stamp, 1) for f in buf.select_window()] == [0.3, 0.6, 0.9]


def test_keyframes_need_motion_when_poses_are_known() -> None:
    buf = FrameBuffer(cfg(window_size=3, buffer_size=10, keyframe_min_interval=0.0))
    # the robot stands still, then moves 10 cm, then turns 10 degrees in place
    poses = [pose_at(0.0)] * 4 + [pose_at(0.07), pose_at(0.10), pose_at(0.10, 8.0), pose_at(0.10, 10.0)]
    for k, p in enumerate(poses):
        buf.add(frame(float(k), pose=p))
    window = buf.select_window()
    # newest (yaw 10°); frame 6 turned only 2° from it, frame 5 (yaw 0) 10° → kept;
    # from frame 5 (x = 0.10): frame 4 moved 3 cm (skipped), frame 3 10 cm → kept
    assert [f.stamp for f in window] == [3.0, 5.0, 7.0]


def test_keyframes_fill_with_most_recent_when_not_enough_motion() -> None:
    buf = FrameBuffer(cfg(window_size=3, buffer_size=10, keyframe_min_interval=0.0))
    for k in range(6):
        buf.add(frame(float(k), pose=pose_at(0.0)))  # never moves
    assert [f.stamp for f in buf.select_window()] == [3.0, 4.0, 5.0]
    assert [f.stamp for f in buf.select_window(window_size=10)] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_reset_and_thread_safety() -> None:
    buf = FrameBuffer(cfg(buffer_size=32))

    def feed(offset: float) -> None:
        for k in range(200):
            buf.add(frame(offset + k * 1e-3))

    ts = [threading.Thread(target=feed, args=(o,)) for o in (0.0, 0.0005)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    s = buf.stats()
    assert s["accepted"] + s["dropped"]["out_of_order"] + s["dropped"]["duplicate"] == 400
    stamps = [f.stamp for f in buf.frames()]
    assert stamps == sorted(stamps) and len(stamps) == 32
    buf.reset()
    assert len(buf) == 0 and buf.stats()["dropped"]["reset"] == 32
    assert buf.add(frame(0.0))  # after a reset, older stamps are welcome again


def test_stamps_from_the_future_are_refused_and_do_not_block_real_frames() -> None:
    buf = FrameBuffer(cfg())
    r = buf.offer(frame(1000.0), now=10.0)  # a clock gone wrong on the sender
    assert not r.accepted and r.reason == "future" and "990.000 s ahead of the clock" in r.message
    assert buf.offer(frame(10.5), now=10.0).accepted and buf.offer(frame(11.0), now=11.0).accepted
    assert buf.stats()["dropped"]["future"] == 1


def test_the_buffer_is_bounded_in_bytes_too() -> None:
    one = frame(0.0).rgb.nbytes
    buf = FrameBuffer(cfg(buffer_size=100, max_buffer_mb=3.5 * one / 2**20))
    for i in range(10):
        buf.add(frame(0.1 * i))
    s = buf.stats()
    assert s["size"] == 3 and s["bytes"] == 3 * one and s["dropped"]["overflow"] == 7


# ---------------------------------------------------------------------------------------- several cameras
def cam(camera: str, stamp: float, size: tuple[int, int] = (24, 32)) -> Frame:
    return Frame(stamp, np.zeros((*size, 3), np.uint8), K, f"{camera}_optical", camera=camera)


def test_interleaved_cameras_and_equal_stamps_are_taken_in_stamp_order() -> None:
    buf = FrameBuffer(cfg(buffer_size=20))
    # a wrist frame that arrives after a newer head frame is not out of order: each camera's stamps go forward
    for c, t in (("head", 1.0), ("head", 1.1), ("wrist", 1.05), ("wrist", 1.1), ("head", 1.2), ("wrist", 1.15)):
        assert buf.offer(cam(c, t)).accepted, (c, t)
    assert [(f.camera, f.stamp) for f in buf.frames()] == [
        ("head", 1.0), ("wrist", 1.05), ("head", 1.1), ("wrist", 1.1), ("wrist", 1.15), ("head", 1.2)]
    # ... but within one camera the rules hold
    r = buf.offer(cam("wrist", 1.12))
    assert not r and r.reason == "out_of_order" and "of camera 'wrist'" in r.message
    assert buf.offer(cam("head", 1.2)).reason == "duplicate"
    # different sizes of two cameras are no size change; a camera changing its own size is
    assert buf.offer(cam("wrist", 1.3, size=(48, 64))).reason == "size_change"
    assert buf.offer(cam("head", 1.3)).reason == "" and buf.offer(cam("wrist", 1.4, size=(48, 64))).reason == ""
    assert buf.stats()["cameras"] == {"head": 4, "wrist": 5}


def test_a_fast_camera_does_not_push_a_slow_cameras_frames_out() -> None:
    buf = FrameBuffer(cfg(buffer_size=6, window_size=4))
    buf.add(cam("wrist", 0.0))
    buf.add(cam("wrist", 1.0))
    for k in range(30):  # head at 30 Hz
        buf.add(cam("head", 1.0 + k / 30))
    assert buf.stats()["cameras"] == {"wrist": 2, "head": 4}
    window = buf.select_window()
    assert sorted(f.camera for f in window) == ["head", "head", "wrist", "wrist"]


def test_a_time_jump_of_all_cameras_resets_once_and_a_lagging_camera_is_only_stale() -> None:
    buf = FrameBuffer(cfg(max_frame_age=1.0, buffer_size=20), time_jump_frames=3)
    for t in (100.0, 100.1, 100.2):
        buf.add(cam("head", t))
        buf.add(cam("wrist", t + 0.01))
    # the bag loops: both cameras go back; the first camera with three in a row resets, the other follows freely
    assert not buf.add(cam("head", 0.0)) and not buf.add(cam("wrist", 0.01)) and not buf.add(cam("head", 0.1))
    assert not buf.add(cam("wrist", 0.11))
    assert buf.offer(cam("head", 0.2)).reason == "time_jump"
    assert buf.add(cam("wrist", 0.21)) and [f.camera for f in buf.frames()] == ["head", "wrist"]
    # a camera whose clock lags the others by more than max_frame_age: stale, never a reset of the others' frames
    for k in range(5):
        buf.add(cam("head", 0.3 + 0.1 * k))
        r = buf.offer(cam("late", -5.0 + 0.1 * k))
        assert not r and r.reason == "stale"
    assert buf.stats()["dropped"]["time_jump"] == 6 and buf.stats()["cameras"]["head"] == 6
