"""The in-process harness of the node tests: a context, ``eps3d_node`` under test with the test parameters, a
peer node that publishes synthetic frames and poses and listens to the outputs, and an executor spinning both
in a thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from rclpy.exceptions import InvalidHandle
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from eps3d_ros.frames.frame import synthetic_frames
from eps3d_ros.msg import ObjectArray
from eps3d_ros.ros.messages import depth_message, frame_messages, image_message
from eps3d_ros.ros.node import Eps3dNode
from eps3d_ros.ros.scene_publisher import LATCHED
from eps3d_ros.srv import QueryObjects


def wait_for(predicate, timeout: float = 60.0) -> bool:
    """Poll ``predicate`` every 50 ms (something else spins) until it holds or ``timeout`` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


CAMERA = "camera_optical"
BASE = {
    "model.allow_random_weights": True,
    "text.model": "eps3d-tiny-clip",
    "text.pretrained": "",
    "pipeline.image_height": 84,  # the frames' own size: no resampling of the measured depth
    "pipeline.image_width": 112,
    "pipeline.window_size": 3,
    "pipeline.every_n_frames": 3,
    "pipeline.keyframe_min_interval": 0.0,
    "pipeline.keyframe_min_translation": 0.0,
    "pipeline.keyframe_min_rotation": 0.0,
    "panoptic.clustering.hdbscan.min_cluster_size": 50,
    "output.max_cloud_points": 3000,
    # Depth + poses: Gaussian centres from measured depth, so the published geometry is checkable
    # even with the random test weights.
    "pipeline.use_measured_depth": True,
    # The random test network's depth and cameras agree with nothing: trust TF and depth regardless (the
    # refusal of disagreeing alignments is tested in test_pipeline_alignment.py and test_node_process.py).
    "pipeline.max_alignment_error": 1e9,
    "pipeline.max_depth_ratio_spread": 1e9,
}


def overrides(values: dict) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


class Harness:
    """A context, the node under test, a helper node, and an executor spinning in a thread."""

    def __init__(self, namespace: str = "", **params) -> None:
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = Eps3dNode(context=self.ctx, namespace=namespace,
                              parameter_overrides=overrides({**BASE, **params}))
        self.peer = Node("eps3d_test_peer", context=self.ctx, namespace=namespace)
        self.received: dict[str, list] = {"semantic": [], "instance": [], "objects": [], "markers": [], "diag": []}
        p = self.peer
        self.rgb = p.create_publisher(Image, "rgb/image", qos_profile_sensor_data)
        self.depth = p.create_publisher(Image, "depth/image", qos_profile_sensor_data)
        self.info = p.create_publisher(CameraInfo, "rgb/camera_info", qos_profile_sensor_data)
        self.pose = p.create_publisher(TransformStamped, "camera_pose", 10)
        for key, typ, topic in (("semantic", PointCloud2, "eps3d_node/semantic_cloud"),
                                ("instance", PointCloud2, "eps3d_node/instance_cloud"),
                                ("objects", ObjectArray, "eps3d_node/objects"),
                                ("markers", MarkerArray, "eps3d_node/markers")):
            p.create_subscription(typ, topic, self.received[key].append, LATCHED)
        p.create_subscription(DiagnosticArray, "/diagnostics", self.received["diag"].append, 10)
        self.query = p.create_client(QueryObjects, "eps3d_node/query_objects")
        self.reconstruct = p.create_client(Trigger, "eps3d_node/reconstruct")
        self.reset = p.create_client(Trigger, "eps3d_node/reset")
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.ctx)
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)
        self.node.autostart()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        # As the node's main() does: rclpy's wait loop can meet an entity that a lifecycle transition (in
        # another executor thread) is destroying at that moment; that ends one spin, not the harness.
        while self.ctx.ok():
            try:
                self.executor.spin()
                return  # shut down
            except InvalidHandle:
                continue

    def close(self) -> None:
        self.node.close()
        self.executor.shutdown()
        self.node.destroy_node()
        self.peer.destroy_node()
        rclpy.shutdown(context=self.ctx)
        self.thread.join(timeout=10)

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:
        return wait_for(predicate, timeout)

    def call(self, client, request, timeout: float = 20.0):
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(request)
        assert self.wait_for(future.done, timeout), "service call timed out"
        return future.result()

    def ask(self, text: str, **kw):
        req = QueryObjects.Request(text=text, max_results=kw.get("max_results", 5),
                                   min_score=kw.get("min_score", 0.0), min_relevance=kw.get("min_relevance", -1.0),
                                   target_frame=kw.get("target_frame", ""),
                                   return_clouds=kw.get("return_clouds", False))
        return self.call(self.query, req)

    def publish_pose(self, msg) -> None:
        """Publish a ``TransformStamped`` on ``camera_pose`` and wait until the node's pose source holds it."""
        self.pose.publish(msg)
        poses = self.node.pose_source
        if poses is None:
            return  # inactive: nobody listens
        parent, child = msg.header.frame_id.lstrip("/"), msg.child_frame_id.lstrip("/")
        stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        assert self.wait_for(lambda: poses.tree.lookup(parent, child, stamp) is not None, 10), \
            f"the pose {parent} -> {child} at {stamp:.3f} never reached the node"

    def send(self, scene, view: int, stamp: float, encoding: str = "rgb8", depth=True, pose=True, info=True,
             rgb_override: np.ndarray | None = None, depth_override: np.ndarray | None = None) -> None:
        """View ``view`` of a synthetic scene as a camera driver and TF publish it; the pose is in the node's pose
        source before the image goes out (the node looks it up when the image arrives)."""
        frame = synthetic_frames(scene, [stamp] * scene.num_views, frame_id=CAMERA, with_depth=depth,
                                 with_pose=pose)[view]
        msgs = frame_messages(frame, map_frame="map")
        if msgs.pose is not None:
            self.publish_pose(msgs.pose)
        header = msgs.image.header
        image = msgs.image if rgb_override is None else image_message(rgb_override, header)
        image.encoding = encoding
        if info:  # camera_info describes the camera (the scene's size), whatever image is sent
            self.info.publish(msgs.info)
        if depth:
            self.depth.publish(msgs.depth if depth_override is None else depth_message(depth_override, header))
        self.rgb.publish(image)
