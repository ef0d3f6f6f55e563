"""Two cameras on one robot, from a separate process, replayed under a simulated clock: ``eps3d_node`` with a
parameter file listing ``input.cameras: [head, wrist]`` (head 112x112, wrist 84x112), ``use_sim_time`` and
``/clock`` published by the test, poses on ``camera_pose``.

* one map in the map frame; ``last_window_views`` in ``/diagnostics`` names both cameras; a thing only the wrist
  camera sees is in the map;
* the node's clock is the simulated one (diagnostics are stamped with it, a frame stamped a minute ahead of it is
  refused as from the future) and its timers go on while ``/clock`` pauses;
* the wrist's TF stops: its frames wait ``input.tf_timeout``, then are dropped with a diagnostic naming the
  transform, while the head's windows still reach the map; no traceback, exit code 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from rosgraph_msgs.msg import Clock

from helpers import REPO
from eps3d_ros.data.camera_rig import generate_rig_sequence
from eps3d_ros.frames.frame import synthetic_frames
from eps3d_ros.ros.messages import seconds_to_stamp
from helpers.node_client import NodeClient, start_node, stop_node

DEMO = REPO / "models" / "demo_tiny"
PARAMS = """\
/**:  # any namespace (a key "eps3d_node" matches only the node without one)
  ros__parameters:
    use_sim_time: true
    input:
      cameras: [head, wrist]
    pipeline:
      use_measured_depth: true
      window_size: 4
      every_n_frames: 4
      keyframe_min_interval: 0.0
      keyframe_min_translation: 0.0
      keyframe_min_rotation: 0.0
"""
START = 1000.0  # the bag's clock: far from the wall clock


def rig_frames():
    """The head looking at one table, the wrist at things on another that the head's frames never show."""
    rig = generate_rig_sequence(0, num_frames=40)
    head, wrist = rig.cameras["head"], rig.cameras["wrist"]
    at_a, at_b = (np.nonzero(head.path.table == j)[0] for j in (0, 1))
    n = min(len(at_a), len(at_b), 4)
    at_a, at_b = at_a[:n], at_b[:n]
    seen_by_head = head.pixel_counts[at_a, 1:].sum(0)
    wrist_only = [i + 1 for i, px in enumerate(wrist.pixel_counts[at_b, 1:].max(0)) if px >= 300 and not seen_by_head[i]]
    hf = synthetic_frames(head, [0.0] * head.num_frames, frame_id="head_optical", camera="head")
    wf = synthetic_frames(wrist, [0.0] * wrist.num_frames, frame_id="wrist_optical", camera="wrist")
    return rig, [hf[i] for i in at_a], [wf[i] for i in at_b], wrist_only


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_cameras_with_tf_under_sim_time_make_one_map_and_survive_a_lost_transform(tmp_path) -> None:
    rig, heads, wrists, wrist_only = rig_frames()
    assert wrist_only, "the scenario needs a thing only the wrist sees"
    params = tmp_path / "cameras.yaml"
    params.write_text(PARAMS)
    log = tmp_path / "node.log"
    node = start_node(log, {"model.weights": str(DEMO)}, "/robot", params_file=params)
    client = NodeClient("/robot", cameras={c: (f"{c}/image", f"{c}/camera_info", f"{c}/depth") for c in ("head", "wrist")})
    clock = client.node.create_publisher(Clock, "/clock", 10)
    now = {"t": START}

    def tick(t: float) -> None:
        now["t"] = t
        clock.publish(Clock(clock=seconds_to_stamp(t)))

    def send(frame, stamp: float, pose: bool = True) -> None:
        tick(stamp + 0.01)
        f = dataclasses.replace(frame, stamp=stamp)
        if pose:
            client.send_poses([f], [stamp])
        client.spin(0.05)
        client.send(f, pose=False, camera=f.camera)
        client.spin(0.25)

    try:
        assert client.query.wait_for_service(timeout_sec=180), log.read_text()[-3000:]
        tick(START)
        assert client.wait_until_heard(cameras=True), "the node never subscribed to both cameras"
        stamp = START + 1.0
        for h, w in zip(heads, wrists):  # interleaved streams, both with TF
            send(h, stamp)
            send(w, stamp + 0.02)
            stamp += 0.5
        assert client.wait_for(lambda: client.diagnostic("windows") and client.diagnostic("windows") >= 2, 300), \
            log.read_text()[-3000:]
        objects = client.objects[-1]
        assert objects.header.frame_id == "map" and objects.scale_known
        views = client.diagnostic("last_window_views")
        assert "head:" in views and "wrist:" in views, views
        # a thing only the wrist camera saw: a map thing of its class near its true centre
        found = [i for i in wrist_only if any(
            o.label == rig.object(i).class_name and np.linalg.norm(
                np.array([o.centroid.x, o.centroid.y, o.centroid.z]) - rig.object(i).centroid) <= 0.15
            for o in objects.objects)]
        assert found, [(rig.object(i).class_name, i) for i in wrist_only]
        # the node's clock is the simulated one, and its timers run while /clock pauses
        assert START <= client.diagnostic_stamps[-1] <= stamp + 1.0, client.diagnostic_stamps[-1]
        heard = len(client.diagnostics)
        client.spin(3.0)
        assert len(client.diagnostics) >= heard + 2
        ahead = dataclasses.replace(heads[0], stamp=now["t"] + 60.0)
        client.send(ahead, pose=False, camera="head")
        # (its colour + info pair and its triple with depth: refused once or twice)
        assert client.wait_for(lambda: (client.diagnostic("buffer_dropped") or {}).get("future", 0) >= 1, 30), \
            {k: v for k, v in client.diagnostics[-1].items() if k.startswith(("input", "buffer"))}

        # the wrist's TF stops: its frames are dropped after waiting, naming the transform; the head goes on
        windows, published = client.diagnostic("windows"), len(client.objects)
        used = {c: client.diagnostic(f"input_{c}_used") for c in ("head", "wrist")}
        for h, w in zip(heads, wrists):
            send(h, stamp)
            send(w, stamp + 0.02, pose=False)
            stamp += 0.5
        assert client.wait_for(lambda: client.diagnostic("windows") >= windows + 1, 300), log.read_text()[-3000:]
        assert client.wait_for(lambda: "no transform from 'map' to 'wrist_optical'" in
                               str(client.diagnostic("input_problems")), 30), client.diagnostics[-1]
        assert client.diagnostic("input_dropped")["no_transform"] == len(wrists)
        assert client.diagnostic("input_wrist_used") == used["wrist"]  # no unposed wrist view entered a window
        assert client.diagnostic("input_head_used") == used["head"] + len(heads)
        assert len(client.objects) > published and client.objects[-1].header.frame_id == "map"
    finally:
        client.close()
        code = stop_node(node)
    output = log.read_text()
    assert code == 0 and "Traceback" not in output, output[-3000:]
