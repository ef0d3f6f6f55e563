"""A client of eps3d_node for tests that run the node in another process: publishes camera frames (colour,
camera_info, depth, the ``camera_pose`` TransformStamped), listens to its latched outputs, calls its services.
Its own rclpy context and executor; it spins only when asked (:meth:`NodeClient.spin`)."""

from __future__ import annotations

import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_srvs.srv import Trigger

from eps3d_ros.msg import ObjectArray
from eps3d_ros.ros.messages import frame_messages
from eps3d_ros.ros.scene_publisher import LATCHED
from eps3d_ros.srv import LoadMap, QueryObjects, SaveMap


class NodeClient:
    """``depth``: publish on the depth topic (False: a colour-only camera, no publisher there until
    :meth:`add_depth`). ``cameras``: {name: (image, camera_info, depth) topics} of further cameras."""

    def __init__(self, namespace: str = "", name: str = "eps3d_test_client", depth: bool = True,
                 cameras: dict[str, tuple[str, str, str]] | None = None) -> None:
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.ns = ns = namespace.rstrip("/")
        self.node = n = Node(name, context=self.ctx)
        self.rgb = n.create_publisher(Image, f"{ns}/rgb/image", 10)
        self.info = n.create_publisher(CameraInfo, f"{ns}/rgb/camera_info", 10)
        self.depth = n.create_publisher(Image, f"{ns}/depth/image", 10) if depth else None
        self.cameras = {cam: tuple(n.create_publisher(t, f"{ns}/{topic}", 10) for t, topic in
                                   zip((Image, CameraInfo, Image), topics)) for cam, topics in (cameras or {}).items()}
        self.pose = n.create_publisher(TransformStamped, f"{ns}/camera_pose", 10)
        self.clouds: list[PointCloud2] = []
        self.objects: list[ObjectArray] = []
        self.diagnostics: list[dict[str, str]] = []  # the node's status values, newest last
        self.diagnostic_stamps: list[float] = []  # their header stamps (the node's clock: sim time with use_sim_time)
        n.create_subscription(PointCloud2, f"{ns}/eps3d_node/semantic_cloud", self.clouds.append, LATCHED)
        n.create_subscription(ObjectArray, f"{ns}/eps3d_node/objects", self.objects.append, LATCHED)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.query = n.create_client(QueryObjects, f"{ns}/eps3d_node/query_objects")
        self.reset = n.create_client(Trigger, f"{ns}/eps3d_node/reset")
        self.reconstruct = n.create_client(Trigger, f"{ns}/eps3d_node/reconstruct")
        self.save_map = n.create_client(SaveMap, f"{ns}/eps3d_node/save_map")
        self.load_map = n.create_client(LoadMap, f"{ns}/eps3d_node/load_map")
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(n)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "eps3d_node: pipeline":
                self.diagnostics.append({kv.key: kv.value for kv in status.values})
                self.diagnostic_stamps.append(msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec)

    def diagnostic(self, key: str):
        """The newest value of ``key`` in the node's diagnostics (parsed as a Python literal where it is one),
        or None."""
        import ast

        for values in reversed(self.diagnostics):
            if key in values:
                try:
                    return ast.literal_eval(values[key])
                except (ValueError, SyntaxError):
                    return values[key]
        return None

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def wait_for(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.spin(0.05)
        return False

    def add_depth(self) -> None:
        """A publisher on the depth topic from now on (a depth stream that starts)."""
        self.depth = self.node.create_publisher(Image, f"{self.ns}/depth/image", 10)

    def wait_until_heard(self, timeout: float = 60.0, depth: bool = True, pose: bool = True,
                         cameras: bool = False) -> bool:
        """Until the node's subscriptions have matched this client's publishers (frames sent before are lost)."""
        pubs = [] if cameras else [self.rgb, self.info] + ([self.depth] if depth and self.depth else [])
        pubs += [self.pose] if pose else []
        for rgb, info, depth_pub in (self.cameras.values() if cameras else ()):
            pubs += [rgb, info] + ([depth_pub] if depth else [])
        return self.wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs), timeout)

    def call(self, client, request, timeout: float = 60.0):
        assert client.wait_for_service(timeout_sec=60.0), f"{client.srv_name} not available"
        future = client.call_async(request)
        assert self.wait_for(future.done, timeout), f"{client.srv_name} did not answer"
        return future.result()

    def send(self, frame, stamp: float | None = None, depth: bool = True, pose: bool = True,
             map_frame: str = "map", camera: str | None = None) -> None:
        """One :class:`~eps3d_ros.frames.frame.Frame` as messages (its K is CameraInfo's convention), on the
        default topics or those of ``camera``. Its pose goes out first, but another process gives no order between
        topics: a test that needs every frame posed sends the poses ahead with :meth:`send_poses` (as a TF stream
        runs ahead of the images) and ``pose=False`` here."""
        msgs = frame_messages(frame, stamp, map_frame)
        rgb, info, depth_pub = self.cameras[camera] if camera else (self.rgb, self.info, self.depth)
        if pose and msgs.pose is not None:
            self.pose.publish(msgs.pose)
        info.publish(msgs.info)
        if depth and msgs.depth is not None and depth_pub is not None:
            depth_pub.publish(msgs.depth)
        rgb.publish(msgs.image)

    def send_poses(self, frames, stamps, map_frame: str = "map") -> None:
        """The camera poses of ``frames`` at ``stamps``, in order, before any of their images."""
        for frame, stamp in zip(frames, stamps):
            msgs = frame_messages(frame, stamp, map_frame)
            if msgs.pose is not None:
                self.pose.publish(msgs.pose)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.ctx)


def start_node(log_path, parameters: dict, namespace: str = "", env: dict | None = None, params_file=None,
               executable=None):
    """``eps3d_node --ros-args [--params-file F] -p k:=v ...`` (the console script, or ``executable``) in its own
    process; output to ``log_path``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    args = [str(executable or Path(sys.executable).parent / "eps3d_node"), "--ros-args"]
    if params_file is not None:
        args += ["--params-file", str(params_file)]
    for k, v in parameters.items():
        args += ["-p", f"{k}:={_param(v)}"]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    log = open(log_path, "w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    proc.log_file = log
    return proc


def stop_node(proc, sig=None, timeout: float = 60.0):
    """Signal the node (SIGINT by default) and wait; the exit code, or "killed"."""
    import signal
    import subprocess

    proc.send_signal(sig or signal.SIGINT)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = "killed"
    proc.log_file.close()
    return code


def _param(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
