"""The ROS-free session: a synthetic sequence through the oracle reconstructor into one object map — stable ids,
revisits, reset during a window, relabelling strictly after inference, runtime config swaps, save / load."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from eps3d_ros.data.synthetic import generate_sequence
from eps3d_ros.eval.scene_memory import MemoryEvalConfig, evaluate_sequence
from eps3d_ros.settings.tree import Eps3dConfig
from eps3d_ros.eval.oracle import OracleReconstructor
from eps3d_ros.pipeline.session import Session


def session_config(every: int = 4) -> Eps3dConfig:
    cfg = OracleReconstructor.default_config()
    p = cfg.pipeline
    p.image_height = p.image_width = 112
    p.window_size, p.every_n_frames = 4, every
    p.keyframe_min_interval = p.keyframe_min_translation = p.keyframe_min_rotation = 0.0
    return cfg


@pytest.fixture(scope="module")
def sequence():
    return generate_sequence(3, num_frames=24, height=112, width=112)


@pytest.fixture(scope="module")
def oracle(sequence):
    return OracleReconstructor(sequence, session_config(), pixel_stride=2)


class Held:
    """The real oracle, held at the start of each run until released (to act while a window runs)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.text_encoder = inner.text_encoder
        self.config = inner.config
        self.started, self.release = threading.Event(), threading.Event()

    def run(self, frames):
        self.started.set()
        assert self.release.wait(120), "never released"
        self.inner.config = self.config
        return self.inner.run(frames)


def test_an_oracle_sequence_and_its_revisit_keep_every_id(sequence, oracle) -> None:
    """Two passes over the room: every seen thing is in the map once, near its true place, with the same id."""
    s = Session(session_config(), oracle)
    try:
        result = evaluate_sequence(s, sequence, MemoryEvalConfig(loops=2))
        assert result["windows"] == 12 and result["targets"] >= 8
        assert result["recall"] >= 0.9, result["missed"]
        assert result["duplicates_per_object"] == 0.0
        assert result["id_switches"] == 0, result["switched"]  # the second pass finds the same objects
        assert result["centroid_error_median_m"] < 0.03
        one, two = result["memory_per_pass"]
        assert two["bytes"] <= 1.05 * one["bytes"] and two["objects"] == one["objects"]
        things = [o for o in s.map.objects if o.is_thing]
        assert max(o.observations for o in things) >= 3 and all(o.last_seen > o.first_seen or o.observations == 1
                                                               for o in things)
        # the map answers queries with its stable objects
        top = s.query("chair", max_results=2)
        assert top and top[0].object.id in {o.id for o in s.map.objects}
    finally:
        assert s.close()


def test_reset_during_a_window_drops_its_result(sequence, oracle) -> None:
    held = Held(oracle)
    updates = []
    s = Session(session_config(), held, on_update=updates.append)
    try:
        for f in list(sequence.frames())[:4]:
            s.offer(f)
        assert held.started.wait(30)
        s.reset()  # while the window runs
        held.release.set()
        assert s.wait_idle(120)
        assert s.map.objects == [] and s.snapshot is None
        assert s.stats()["dropped_after_reset"] == 1 and [u.kind for u in updates] == ["reset"]
        for f in list(sequence.frames())[4:8]:  # the session goes on
            s.offer(f)
        assert s.wait_idle(120) and s.map.objects and updates[-1].kind == "window"
    finally:
        s.close()


def test_relabelling_runs_after_the_window_in_flight(sequence, oracle) -> None:
    """A vocabulary change while a window runs: that window's result is fused first, then relabelled — the
    newer scene is never replaced by an older relabelled one."""
    held = Held(oracle)
    kinds = []
    s = Session(session_config(), held, on_update=lambda u: kinds.append((u.kind, u.snapshot.scene.vocabulary
                                                                           if u.snapshot else None)))
    try:
        for f in list(sequence.frames())[:4]:
            s.offer(f)
        assert held.started.wait(30)
        new = session_config()
        new.panoptic.vocabulary = ["floor", "wall", "table", "chair", "thing"]
        new.panoptic.stuff = ["floor", "wall", "table"]
        old_config = s.config
        change = s.update(new)
        assert "panoptic.vocabulary" in change.applied and change.pending == ()
        assert old_config.panoptic.vocabulary != new.panoptic.vocabulary  # swapped, not edited in place
        held.release.set()
        assert s.wait_idle(120)
        assert [k for k, _ in kinds] == ["window", "relabel"]
        assert kinds[-1][1] == tuple(new.panoptic.vocabulary)
        assert s.snapshot.scene.vocabulary == tuple(new.panoptic.vocabulary)
        assert {o.label for o in s.map.objects} <= set(new.panoptic.vocabulary)
    finally:
        s.close()


def test_settings_that_need_a_new_session_are_pending(oracle) -> None:
    s = Session(session_config(), oracle)
    try:
        new = session_config()
        new.pipeline.every_n_frames = 6
        new.pipeline.window_size = 3
        new.map.remove_after_misses = 5
        change = s.update(new)
        assert change.applied == ("map.remove_after_misses", "pipeline.every_n_frames")
        assert change.pending == ("pipeline.window_size",)
        assert s.config.pipeline.window_size == 4 and s.buffer.config.every_n_frames == 6
        assert s.map.config.remove_after_misses == 5
    finally:
        s.close()


def test_save_and_load_give_the_same_objects(sequence, oracle, tmp_path) -> None:
    s = Session(session_config(), oracle)
    try:
        for f in list(sequence.frames())[:12]:
            s.offer(f)
        assert s.wait_idle(300)
        before = {o.id: (o.label, o.centroid.copy(), o.observations) for o in s.map.objects}
        path = s.save_map(tmp_path / "room.eps3d")
    finally:
        s.close()
    other = Session(session_config(), oracle)
    try:
        loaded = other.load_map(path)
        after = {o.id: (o.label, o.centroid, o.observations) for o in loaded.objects}
        assert set(after) == set(before) and before
        for k, (label, centroid, obs) in before.items():
            assert after[k][0] == label and after[k][2] == obs
            np.testing.assert_allclose(after[k][1], centroid, atol=1e-6)
        # new windows fuse into the loaded map: the revisited objects keep their ids
        for f in list(sequence.frames())[:4]:
            other.offer(f)
        assert other.wait_idle(300)
        assert set(before) <= {o.id for o in other.map.objects}
        with pytest.raises(ValueError, match="not a map file|scene file"):
            from eps3d_ros.io.scene_file import save_scene, scene_file_from_snapshot

            save_scene(tmp_path / "plain.eps3d", scene_file_from_snapshot(other.snapshot))
            other.load_map(tmp_path / "plain.eps3d")
    finally:
        other.close()


def test_without_poses_the_map_holds_the_latest_window(sequence, oracle, caplog) -> None:
    """No metric map-frame poses: no fusion across windows (the map is the latest window, said once)."""

    class CameraFrame:
        text_encoder, config = oracle.text_encoder, oracle.config

        def run(self, frames):
            import dataclasses

            snap = oracle.run(frames)
            return dataclasses.replace(snap, frame_id="camera", scale_known=False)

    s = Session(session_config(), CameraFrame())
    try:
        for i, f in enumerate(list(sequence.frames())[:8]):
            s.offer(f)
            if i % 4 == 3:  # one window at a time (a newer window replaces one still waiting)
                assert s.wait_idle(300)
        assert not s.map.fused and not s.scale_known and s.map.frame_id == "camera"
        assert s.stats()["windows"] == 2
    finally:
        s.close()


def test_closed_sessions_take_no_frames_and_publish_nothing(sequence, oracle) -> None:
    held = Held(oracle)
    updates = []
    s = Session(session_config(), held, on_update=updates.append)
    for f in list(sequence.frames())[:4]:
        s.offer(f)
    assert held.started.wait(30)
    assert not s.close(timeout=0.2)  # the window is still running
    held.release.set()
    assert s._worker.wait_idle(60)
    assert updates == [] and not s.offer(next(iter(sequence.frames())))


def test_from_model_dir_fills_from_the_bundle() -> None:
    from helpers import REPO

    s = Session.from_model_dir(REPO / "models" / "demo_tiny", pipeline={"window_size": 3}, **{"map.max_objects": 50})
    try:
        assert (s.config.pipeline.image_height, s.config.pipeline.image_width) == (112, 112)
        assert s.config.pipeline.window_size == 3 and s.map.config.max_objects == 50
        assert s.text_encoder.arch == "eps3d-tiny-clip"
    finally:
        s.close()
    with pytest.raises(ValueError, match="unknown setting 'pipeline.nope'"):
        Session.from_model_dir(REPO / "models" / "demo_tiny", **{"pipeline.nope": 1})


def test_big_frames_are_held_at_the_network_size_and_buffer_events_are_logged_once(oracle, caplog) -> None:
    """A 12-MP camera: the buffer keeps 112x84 frames, not camera resolution; a clock that jumps back resets the
    buffer with one log line saying why."""
    import logging

    from eps3d_ros.frames.frame import Frame

    s = Session(session_config(every=0), oracle)
    try:
        rgb = np.zeros((3000, 4000, 3), np.uint8)
        K = np.array([[3000.0, 0, 1999.5], [0, 3000.0, 1499.5], [0, 0, 1]])
        for t in (100.0, 100.5, 101.0):
            assert s.offer(Frame(t, rgb, K, "camera", depth=np.ones((3000, 4000), np.float32)))
        assert {f.size for f in s.buffer.frames()} == {(84, 112)}
        assert s.buffer.stats()["bytes"] == 3 * (84 * 112 * 3 + 84 * 112 * 4)
        with caplog.at_level(logging.WARNING, logger="eps3d_ros"):
            for t in (1.0, 1.5, 2.0, 2.5):  # a bag looping back: three stale frames, then a reset
                s.offer(Frame(t, rgb[:60, :80], K / 50 * [[1], [1], [50]], "camera"))
        assert len(s.buffer) == 2
        jumps = [r for r in caplog.records if "time went back" in r.getMessage()]
        assert len(jumps) == 1 and "dropped 3 buffered frames" in jumps[0].getMessage()
    finally:
        s.close()
