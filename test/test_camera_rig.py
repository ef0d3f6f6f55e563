"""Synthetic two-camera sequences (a head camera 1.2-2 m from the tables, a wrist camera 0.3-0.6 m from the things
it looks at) and the object map fed by both through one session with the oracle reconstructor."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from eps3d_ros.data.camera_rig import generate_rig_sequence
from eps3d_ros.eval.oracle import OracleReconstructor
from eps3d_ros.eval.scene_memory import MemoryEvalConfig, evaluate_sequence, match_map, targets
from eps3d_ros.pipeline.session import Session

MIN_PIXELS = 100


@pytest.fixture(scope="module")
def rig():
    return generate_rig_sequence(1, num_frames=24)


def test_the_rig_sees_one_world_from_a_head_and_a_wrist(rig) -> None:
    head, wrist = rig.cameras["head"], rig.cameras["wrist"]
    assert (head.height, head.width) == (112, 112) and (wrist.height, wrist.width) == (84, 112)
    assert head.objects is not wrist.objects and [o.instance_id for o in head.objects] == \
        [o.instance_id for o in wrist.objects]
    path = head.path
    stops = [t for t in range(head.num_frames) if path.table[t] >= 0]
    assert stops
    for t in stops:  # the head stands 1.2-2 m from the table it looks at (plus its slide along it)
        tab = rig.layout.tables[path.table[t]]
        d = float(np.abs((path.poses[t][:2, 3] - tab.centre) @ tab.facing))
        assert 1.2 - 1e-6 <= d <= 2.0 + 1e-6, (t, d)
        # the wrist is 0.3-0.6 m from the thing on that table it looks at, which fills much of its view
        eye = wrist.poses[t][:3, 3].astype(np.float64)
        target = rig.object(int(rig.wrist_targets[t]))
        assert target.instance_id in tab.thing_ids
        assert 0.3 - 0.02 <= float(np.linalg.norm(eye - target.centroid)) <= 0.6 + 0.02, t
        assert wrist.pixel_counts[t, target.instance_id] >= MIN_PIXELS, t
    # the same world: what the wrist sees of a thing lies in that thing's box
    inst = int(np.argmax(wrist.pixel_counts[:, 1:].max(0))) + 1
    t = int(np.argmax(wrist.pixel_counts[:, inst]))
    pts = wrist.world_points(t)[wrist.instance[t] == inst]
    o = rig.object(inst)
    assert np.all(pts >= o.box_min - 1e-3) and np.all(pts <= o.box_max + 1e-3)
    # close-ups: the wrist sees more things well than the head does
    seen_well = {name: int((c.pixel_counts[:, 1:].max(0) >= MIN_PIXELS).sum()) for name, c in rig.cameras.items()}
    assert seen_well["wrist"] > seen_well["head"], seen_well
    # one stream in stamp order, hardware-synchronised stamps (head first), or interleaved with an offset
    frames = list(rig.frames())
    assert len(frames) == rig.num_frames == 48 and [f.camera for f in frames[:4]] == ["head", "wrist"] * 2
    assert frames[0].stamp == frames[1].stamp and frames[1].frame_id == "wrist_optical"
    assert rig.locate("wrist", frames[5].stamp)[1] == 2 and rig.view(5) == ("wrist", 2)
    later = generate_rig_sequence(1, num_frames=4, wrist_offset_s=0.2)
    assert [round(f.stamp, 2) for f in later.frames()][:4] == [0.0, 0.2, 0.5, 0.7]
    again = generate_rig_sequence(1, num_frames=24)
    assert np.array_equal(again.cameras["wrist"].rgb, wrist.rgb)  # seeded: bit-identical


def _session(seq) -> Session:
    cfg = OracleReconstructor.default_config()
    p = cfg.pipeline
    p.image_height, p.image_width = 112, 112
    p.window_size = p.every_n_frames = 4
    p.keyframe_min_interval = p.keyframe_min_translation = p.keyframe_min_rotation = 0.0
    return Session(cfg, OracleReconstructor(seq, cfg, pixel_stride=2))


@pytest.mark.slow
def test_two_cameras_through_one_session_map_every_thing_once_and_no_worse_than_the_head_alone(rig) -> None:
    head = rig.cameras["head"]
    results, maps, views = {}, {}, set()
    for name, seq, frames in (("head", head, list(rig.camera_frames("head"))), ("both", rig, list(rig.frames()))):
        s = _session(seq)
        try:
            results[name] = evaluate_sequence(s, seq, MemoryEvalConfig(min_pixels=MIN_PIXELS), frames=frames,
                                              on_window=lambda r, s=s: views.add(s.stats()["last_window_views"]))
            maps[name] = list(s.map.objects)
        finally:
            s.close()
    both, alone = results["both"], results["head"]
    assert "head:2 wrist:2" in views  # windows of 4 views: 2 of each camera
    assert both["targets"] > alone["targets"]  # the wrist's close-ups show more things
    assert both["recall"] >= 0.97 and both["id_switches"] == 0, both["missed"]
    assert both["centroid_error_median_m"] <= alone["centroid_error_median_m"], (both, alone)
    # on the head's own targets, against the objects' true centres: the two-camera map is no worse either
    truth = {i: (cls, rig.object(i).centroid) for i, (cls, _) in targets(head, head.num_frames, MIN_PIXELS).items()}
    errors = {}
    for name, objects in maps.items():
        found, _ = match_map(objects, truth, 0.25)
        assert len(found) == len(truth), name
        errors[name] = statistics.median(float(np.linalg.norm(o.centroid - truth[i][1])) for i, o in found.items())
    assert errors["both"] <= errors["head"], errors
