"""``eps3d_node --ros-args -p model.weights:=models/demo_tiny`` and nothing else, in its own process, offline:
it configures from the model folder alone (its text encoder, its native size) without trying the network, and a
separate client feeding 640x480 colour-only frames gets a cloud; when depth comes too, the scene becomes metric.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO
from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.frames.frame import Frame
from helpers.node_client import NodeClient

DEMO = REPO / "models" / "demo_tiny"
NODE_BIN = Path(sys.executable).parent / "eps3d_node"
CAMERA = "camera_color_optical_frame"

# Records every attempt of the node's Python code to reach another host (a download, a DNS lookup).
NETWORK_RECORDER = textwrap.dedent('''
    import os, socket
    _log = os.environ["EPS3D_NETWORK_LOG"]
    def _note(what):
        with open(_log, "a") as f:
            f.write(repr(what) + "\\n")
    _connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo
    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            _note(("connect", address))
        return _connect(self, address)
    def getaddrinfo(host, *args, **kwargs):
        if host not in (None, "127.0.0.1", "::1", "localhost", ""):
            _note(("getaddrinfo", host))
        return _getaddrinfo(host, *args, **kwargs)
    socket.socket.connect = connect
    socket.getaddrinfo = getaddrinfo
''')


def _frames_640x480(seed: int = 100_001, views: int = 6) -> list[Frame]:
    """A held-out synthetic scene rendered at 120x160 and enlarged 4x (pixel replication) to 480x640, without
    poses (stamps are given when sent)."""
    s = generate_scene(seed=seed, num_views=views, height=120, width=160)
    out = []
    for i in range(views):
        rgb = np.ascontiguousarray(np.repeat(np.repeat(s.rgb[i], 4, 0), 4, 1))
        depth = np.repeat(np.repeat(s.depth[i], 4, 0), 4, 1).astype(np.float32)
        K = s.intrinsics[i].astype(np.float64).copy()
        K[:2] *= 4.0
        K[:2, 2] -= 0.5  # ROS K puts pixel centres at integers; the generator sampled at +0.5
        out.append(Frame(stamp=0.0, rgb=rgb, K=K, frame_id=CAMERA, depth=depth))
    return out


def _feed_until(client: NodeClient, frames, start: float, depth: bool, done, timeout: float = 180.0) -> float:
    """Frames at 4 Hz (cycling through ``frames``) until ``done()``; returns the next stamp."""
    stamp, k, end = start, 0, time.monotonic() + timeout
    while not done():
        assert time.monotonic() < end, "the node produced nothing in time"
        client.send(frames[k % len(frames)], stamp, depth=depth, pose=False)
        stamp, k = stamp + 0.25, k + 1
        client.spin(0.25)
    return stamp


@pytest.mark.timeout(600)
def test_node_with_only_the_model_folder_runs_offline_from_a_separate_client(tmp_path) -> None:
    recorder = tmp_path / "site"
    recorder.mkdir()
    (recorder / "sitecustomize.py").write_text(NETWORK_RECORDER)
    network_log = tmp_path / "network.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(recorder), os.environ.get("PYTHONPATH", "")]),
           "EPS3D_NETWORK_LOG": str(network_log), "PYTHONUNBUFFERED": "1"}
    env.pop("HF_HUB_OFFLINE", None)  # the folder alone must keep the node off the network
    log = (tmp_path / "node.log").open("w")
    t0 = time.monotonic()
    proc = subprocess.Popen([str(NODE_BIN), "--ros-args", "-p", f"model.weights:={DEMO}"], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    client = NodeClient()
    try:
        assert client.query.wait_for_service(timeout_sec=120.0), (tmp_path / "node.log").read_text()[-3000:]
        configure_s = time.monotonic() - t0  # reported, not asserted: it depends on the machine's load
        assert client.wait_until_heard(pose=False), "the node never subscribed to the client's topics"
        frames = _frames_640x480()

        # colour + camera_info only: a cloud in the camera frame, scale unknown
        stamp = _feed_until(client, frames, 100.0, depth=False, done=lambda: bool(client.clouds and client.objects))
        assert client.clouds[-1].header.frame_id == CAMERA and client.clouds[-1].width > 0
        assert client.objects[-1].header.frame_id == CAMERA and not client.objects[-1].scale_known

        # the same camera with depth: used as it arrives, the scene becomes metric
        _feed_until(client, frames, stamp, depth=True, done=lambda: any(o.scale_known for o in client.objects))
        metric = [o for o in client.objects if o.scale_known][-1]
        assert metric.header.frame_id == CAMERA and metric.objects
    finally:
        client.close()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "killed"
        log.close()
    output = (tmp_path / "node.log").read_text()
    print(json.dumps({"configure_s": round(configure_s, 2)}))
    assert not network_log.exists(), network_log.read_text()  # no download tried (nor its minute of retries)
    assert code == 0 and "Traceback" not in output, output[-3000:]
    # what the model folder filled is said once (core log lines are not printed twice)
    line = [x for x in output.splitlines() if "text encoder eps3d-tiny-clip / text_encoder.safetensors" in x]
    assert len(line) == 1 and "input 112x112" in line[0] and "min_cluster_size=100" in line[0], output[-3000:]
