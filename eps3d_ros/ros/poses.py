"""Camera poses in the map frame: tf2_ros where importable, else a TransformStamped topic.

Both answer ``lookup(camera_frame, stamp) -> camera-to-map [4, 4] | None``. The topic fallback
(``camera_pose``, relative, remappable) carries ``geometry_msgs/TransformStamped`` with
``header.frame_id`` = the map frame and ``child_frame_id`` = the camera's optical frame, i.e. the
same transform TF would hold; samples are interpolated at the image stamp (see PoseHistory).
"""

from __future__ import annotations

import numpy as np
import torch
from geometry_msgs.msg import TransformStamped

from ..conventions import quat_xyzw_to_matrix
from ..pipeline.pose_history import PoseHistory
from .messages import stamp_to_seconds


def transform_to_matrix(t) -> np.ndarray:
    """``geometry_msgs/Transform`` → ``[4, 4]``."""
    q = torch.tensor([t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w], dtype=torch.float64)
    if float(q.norm()) < 1e-9:
        raise ValueError("transform has a zero quaternion")
    m = np.eye(4)
    m[:3, :3] = quat_xyzw_to_matrix(q).numpy()
    m[:3, 3] = [t.translation.x, t.translation.y, t.translation.z]
    return m


class TopicPoses:
    """Fallback pose source: a ``TransformStamped`` topic into a :class:`PoseHistory`."""

    kind = "topic"

    def __init__(self, node, map_frame: str, topic: str = "camera_pose", qos=10, callback_group=None) -> None:
        self.map_frame = map_frame
        self.history = PoseHistory()
        self.rejected = 0
        self._node = node
        self._sub = node.create_subscription(TransformStamped, topic, self._on_pose, qos,
                                             callback_group=callback_group)

    def _on_pose(self, msg: TransformStamped) -> None:
        if msg.header.frame_id.lstrip("/") != self.map_frame:
            self.rejected += 1
            self._node.get_logger().warning(
                f"camera_pose in frame '{msg.header.frame_id}', expected the map frame '{self.map_frame}'",
                throttle_duration_sec=5.0)
            return
        try:
            self.history.add(msg.child_frame_id.lstrip("/"), stamp_to_seconds(msg.header.stamp),
                             transform_to_matrix(msg.transform))
        except ValueError as e:
            self.rejected += 1
            self._node.get_logger().warning(f"camera_pose rejected: {e}", throttle_duration_sec=5.0)

    def lookup(self, camera_frame: str, stamp: float) -> np.ndarray | None:
        return self.history.lookup(camera_frame.lstrip("/"), stamp)

    def clear(self) -> None:
        self.history.clear()

    def destroy(self) -> None:
        self._node.destroy_subscription(self._sub)


class TfPoses:
    """tf2_ros buffer + listener (on robots)."""

    kind = "tf2"

    def __init__(self, node, map_frame: str) -> None:
        import tf2_ros

        self.map_frame = map_frame
        self._tf2 = tf2_ros
        self.buffer = tf2_ros.Buffer()
        self.listener = tf2_ros.TransformListener(self.buffer, node)

    def lookup(self, camera_frame: str, stamp: float) -> np.ndarray | None:
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            t = self.buffer.lookup_transform(self.map_frame, camera_frame, Time(nanoseconds=int(stamp * 1e9)),
                                             timeout=Duration(seconds=0.05))
        except (self._tf2.LookupException, self._tf2.ExtrapolationException, self._tf2.ConnectivityException):
            return None
        return transform_to_matrix(t.transform)

    def clear(self) -> None:
        self.buffer.clear()

    def destroy(self) -> None:
        self.listener.unregister()


def make_pose_source(node, map_frame: str, callback_group=None):
    """tf2_ros when importable (robots), else the ``camera_pose`` topic."""
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        return TopicPoses(node, map_frame, callback_group=callback_group)
    return TfPoses(node, map_frame)
