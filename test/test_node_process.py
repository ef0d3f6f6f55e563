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
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from conftest import REPO
from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.msg import ObjectArray
from eps3d_ros.ros.messages import seconds_to_stamp
from eps3d_ros.ros.scene_publisher import LATCHED
from eps3d_ros.srv import QueryObjects

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


def _frames_640x480(seed: int = 100_001, views: int = 6):
    """A held-out synthetic scene rendered at 120x160 and enlarged 4x (pixel replication) to 480x640."""
    s = generate_scene(seed=seed, num_views=views, height=120, width=160)
    out = []
    for i in range(views):
        rgb = np.ascontiguousarray(np.repeat(np.repeat(s.rgb[i], 4, 0), 4, 1))
        depth = np.repeat(np.repeat(s.depth[i], 4, 0), 4, 1).astype(np.float32)
        K = s.intrinsics[i].astype(np.float64).copy()
        K[:2] *= 4.0
        K[:2, 2] -= 0.5  # ROS K puts pixel centres at integers; the generator sampled at +0.5
        out.append((rgb, depth, K))
    return out


class Client:
    """The separate client: publishes camera frames, listens to the node's outputs."""

    def __init__(self) -> None:
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = Node("eps3d_test_client", context=self.ctx)
        n = self.node
        self.rgb = n.create_publisher(Image, "/rgb/image", 10)
        self.info = n.create_publisher(CameraInfo, "/rgb/camera_info", 10)
        self.depth = n.create_publisher(Image, "/depth/image", 10)
        self.clouds: list[PointCloud2] = []
        self.objects: list[ObjectArray] = []
        n.create_subscription(PointCloud2, "/eps3d_node/semantic_cloud", self.clouds.append, LATCHED)
        n.create_subscription(ObjectArray, "/eps3d_node/objects", self.objects.append, LATCHED)
        self.query = n.create_client(QueryObjects, "/eps3d_node/query_objects")
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(n)

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def send(self, frame, stamp: float, depth: bool) -> None:
        rgb, d, K = frame
        H, W = rgb.shape[:2]
        header = Image().header
        header.stamp, header.frame_id = seconds_to_stamp(stamp), CAMERA
        info = CameraInfo(header=header, height=H, width=W)
        info.k = K.reshape(-1).tolist()
        self.info.publish(info)
        if depth:
            self.depth.publish(Image(header=header, height=H, width=W, encoding="32FC1", step=4 * W,
                                     data=np.ascontiguousarray(d).tobytes()))
        self.rgb.publish(Image(header=header, height=H, width=W, encoding="rgb8", step=3 * W, data=rgb.tobytes()))

    def feed_until(self, frames, start: float, depth: bool, done, timeout: float = 180.0) -> float:
        """Frames at 4 Hz (cycling through ``frames``) until ``done()``; returns the next stamp."""
        stamp, k, end = start, 0, time.monotonic() + timeout
        while not done():
            assert time.monotonic() < end, "the node produced nothing in time"
            self.send(frames[k % len(frames)], stamp, depth)
            stamp, k = stamp + 0.25, k + 1
            self.spin(0.25)
        return stamp

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.ctx)


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
    client = Client()
    try:
        assert client.query.wait_for_service(timeout_sec=120.0), (tmp_path / "node.log").read_text()[-3000:]
        configure_s = time.monotonic() - t0
        assert configure_s < 30.0, configure_s  # the 60 s of download retries are gone
        frames = _frames_640x480()

        # colour + camera_info only: a cloud in the camera frame, scale unknown
        stamp = client.feed_until(frames, 100.0, depth=False, done=lambda: bool(client.clouds and client.objects))
        assert client.clouds[-1].header.frame_id == CAMERA and client.clouds[-1].width > 0
        assert client.objects[-1].header.frame_id == CAMERA and not client.objects[-1].scale_known

        # the same camera with depth: used as it arrives, the scene becomes metric
        client.feed_until(frames, stamp, depth=True, done=lambda: any(o.scale_known for o in client.objects))
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
    assert not network_log.exists(), network_log.read_text()
    assert code == 0 and "Traceback" not in output, output[-3000:]
    # what the model folder filled is said once (core log lines are not printed twice)
    line = [x for x in output.splitlines() if "text encoder eps3d-tiny-clip / text_encoder.safetensors" in x]
    assert len(line) == 1 and "input 112x112" in line[0] and "min_cluster_size=100" in line[0], output[-3000:]
