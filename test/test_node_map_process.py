"""The node's object map from a separate client process: frames with poses in, stable ids out across windows;
``~/save_map`` in one node process and ``~/load_map`` in a new one give the same objects."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import REPO
from eps3d_ros.data.synthetic import generate_sequence
from eps3d_ros.srv import LoadMap, SaveMap
from helpers.node_client import NodeClient, start_node, stop_node

DEMO = REPO / "models" / "demo_tiny"
PARAMS = {"model.weights": str(DEMO), "pipeline.use_measured_depth": True, "pipeline.window_size": 4,
          "pipeline.every_n_frames": 4, "pipeline.keyframe_min_interval": 0.0,
          "pipeline.keyframe_min_translation": 0.0, "pipeline.keyframe_min_rotation": 0.0}


def objects_by_id(msg) -> dict:
    return {o.id: (o.label, np.array([o.centroid.x, o.centroid.y, o.centroid.z]), o.observations) for o in msg.objects}


@pytest.mark.timeout(900)
def test_stable_ids_and_save_load_across_node_processes(tmp_path) -> None:
    seq = generate_sequence(2, num_frames=16, height=112, width=112)
    frames = list(seq.frames("camera_optical"))
    node = start_node(tmp_path / "a.log", {**PARAMS, "map.directory": str(tmp_path)}, "/mapa")
    client = NodeClient("/mapa")
    try:
        assert client.query.wait_for_service(timeout_sec=120), (tmp_path / "a.log").read_text()[-3000:]
        assert client.wait_until_heard(), "the node never subscribed to the client's topics"
        seen = []
        stamps = [100.0 + 0.5 * k for k in range(1, len(frames) + 1)]
        client.send_poses(frames[:1], stamps[:1])
        for k, f in enumerate(frames, start=1):
            client.send_poses(frames[k:k + 1], stamps[k:k + 1])  # TF runs a frame ahead of the images
            client.send(f, stamp=stamps[k - 1], pose=False)
            client.spin(0.2)
            if k % 4 == 0:  # one window: wait for its map, keep every version of ~/objects
                assert client.wait_for(lambda: len(client.objects) > len(seen), 300), \
                    (tmp_path / "a.log").read_text()[-3000:]
                seen = list(client.objects)
        final = objects_by_id(seen[-1])
        assert seen[-1].header.frame_id == "map" and seen[-1].scale_known and len(seen) >= 4
        # ids are stable: objects seen in several windows kept one id, and every id of an earlier version that
        # is gone was merged or forgotten — never renumbered
        assert max(obs for _, _, obs in final.values()) >= 3
        first_ids = set(objects_by_id(seen[0]))
        assert len(first_ids & set(final)) >= 0.5 * len(first_ids)
        r = client.call(client.save_map, SaveMap.Request(path=str(tmp_path / "room.eps3d")))
        assert r.success and "written" in r.message, r.message
        bad = client.call(client.save_map, SaveMap.Request(path=str(tmp_path / "no" / "such" / "dir.eps3d")))
        assert not bad.success and "cannot save" in bad.message
    finally:
        client.close()
        assert stop_node(node) == 0
    node = start_node(tmp_path / "b.log", {"model.weights": str(DEMO), "map.directory": str(tmp_path)}, "/mapb")
    client = NodeClient("/mapb")
    try:
        r = client.call(client.load_map, LoadMap.Request(path=str(tmp_path / "room.eps3d")))
        assert r.success, r.message
        assert client.wait_for(lambda: client.objects and client.objects[-1].objects, 60)
        loaded = objects_by_id(client.objects[-1])
        assert set(loaded) == set(final)
        for k, (label, centroid, obs) in final.items():
            assert loaded[k][0] == label and loaded[k][2] == obs
            np.testing.assert_allclose(loaded[k][1], centroid, atol=1e-6)
        bad = client.call(client.load_map, LoadMap.Request(path=str(tmp_path / "missing.eps3d")))
        assert not bad.success and "not found" in bad.message
    finally:
        client.close()
        assert stop_node(node) == 0
