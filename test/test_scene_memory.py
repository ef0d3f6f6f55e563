"""Scene memory through the session with the oracle: a thing taken away leaves the map once its place has been
seen empty ``remove_after_misses`` times; a thing merely out of view stays; the evaluation's own definitions."""

from __future__ import annotations

import numpy as np
import pytest

from eps3d_ros.data.synthetic import generate_sequence, with_objects_removed
from eps3d_ros.eval.scene_memory import MemoryEvalConfig, evaluate_sequence, match_map, targets
from eps3d_ros.eval.oracle import OracleReconstructor
from eps3d_ros.pipeline.session import Session

MIN_PIXELS = 100


def new_session(seq) -> Session:
    cfg = OracleReconstructor.default_config()
    p = cfg.pipeline
    p.image_height, p.image_width = seq.height, seq.width
    p.window_size = p.every_n_frames = 4
    p.keyframe_min_interval = p.keyframe_min_translation = p.keyframe_min_rotation = 0.0
    return Session(cfg, OracleReconstructor(seq, cfg, pixel_stride=2))


@pytest.fixture(scope="module")
def room():
    return generate_sequence(0, num_frames=32, height=112, width=112)


def map_id(s: Session, seq, inst: int):
    found, _ = match_map(s.map.objects, {inst: (seq.object(inst).class_name, seq.seen_surface_centroid(inst))}, 0.25)
    return found[inst].id if inst in found else None


def test_a_thing_taken_away_leaves_the_map_when_its_place_is_seen_empty(room) -> None:
    counts = room.pixel_counts
    gone = int(np.argmax(counts.max(0)[1:] * (counts[:, 1:] >= MIN_PIXELS).sum(0))) + 1  # a well seen thing
    moved = with_objects_removed(room, {gone: 0})
    s = new_session(room)
    try:
        evaluate_sequence(s, room, MemoryEvalConfig(min_pixels=MIN_PIXELS))
        gone_id = map_id(s, room, gone)
        others = {o.id for o in s.map.objects if o.id != gone_id}
        assert gone_id is not None
        s.buffer.reset()
        s.reconstructor = OracleReconstructor(moved, s.config, pixel_stride=2)
        K = s.config.map.remove_after_misses
        T = room.num_frames
        second = list(moved.frames(loops=2))[T:]
        seen_empty = 0
        for n, f in enumerate(second, start=1):
            s.offer(f)
            assert s.wait_idle(300)
            if n % 4:
                continue
            window = [moved.frame_index(x.stamp) for x in second[n - 4:n]]
            seen_empty += any(moved.place_pixels[t, gone] >= MIN_PIXELS for t in window)
            present = {o.id for o in s.map.objects}
            if seen_empty < K:
                assert gone_id in present, (n, seen_empty)  # not forgotten before K windows of evidence
            if gone_id not in present:
                break
        assert seen_empty == K and gone_id not in {o.id for o in s.map.objects}
        # the things still there keep their ids
        assert len(others & {o.id for o in s.map.objects}) >= 0.9 * len(others)
    finally:
        s.close()


def test_things_merely_out_of_view_stay(room) -> None:
    """After a full pass, a second pass that looks only at the first tables removes nothing."""
    s = new_session(room)
    try:
        evaluate_sequence(s, room, MemoryEvalConfig(min_pixels=MIN_PIXELS))
        before = {o.id for o in s.map.objects}
        s.buffer.reset()
        T = room.num_frames
        for f in list(room.frames(loops=2))[T:T + 12]:
            s.offer(f)
            assert s.wait_idle(300)
        assert {o.id for o in s.map.objects} == before
    finally:
        s.close()


def test_targets_and_matching_follow_their_definitions(room) -> None:
    truth = targets(room, room.num_frames, MIN_PIXELS)
    best = room.pixel_counts[:, 1:].max(0)
    assert set(truth) == {i + 1 for i in np.nonzero(best >= MIN_PIXELS)[0]}
    cls, centre = truth[next(iter(truth))]
    assert isinstance(cls, str) and centre.shape == (3,)

    class Thing:
        def __init__(self, i, label, c):
            self.id, self.label, self.centroid, self.is_thing = i, label, np.asarray(c, float), True

    first = next(iter(truth))
    c = truth[first][1]
    objs = [Thing(1, cls, c + 0.01), Thing(2, cls, c - 0.02), Thing(3, "not-" + cls, c)]
    found, dupes = match_map(objs, {first: truth[first]}, 0.25)
    assert found[first].id == 1 and dupes[first] == 1  # two of its class near it: one duplicate
