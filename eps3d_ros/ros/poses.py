"""Camera poses in the map frame: tf2_ros where importable, else a TransformStamped topic.

Both answer ``lookup(camera_frame, stamp) -> camera-to-map [4, 4] | None`` without blocking (a frame whose
transform is late waits in the core, :mod:`eps3d_ros.pipeline.camera_inputs`) and ``reaches_map()``. The topic fallback
(``camera_pose``, relative, remappable) carries ``geometry_msgs/TransformStamped`` edges with TF's
meaning (``header.frame_id`` = parent, ``child_frame_id`` = child): ``map → camera_optical`` directly, or
a chain such as ``map → base_link`` + ``base_link → camera_optical``. They build the same
:class:`~eps3d_ros.geometry.transform_tree.TransformTree` the bag reader uses; samples are interpolated
at the image stamp.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import TransformStamped

from ..geometry.transform_tree import TransformTree, transform_to_matrix
from .messages import stamp_to_seconds

# the camera_pose stream: a few minutes at 30 Hz per edge, interpolated like tf2 (50 ms tolerance at the ends)
_HISTORY, _TOLERANCE, _MAX_GAP = 10_000, 0.05, 0.5


class TopicPoses:
    """Fallback pose source: a ``TransformStamped`` topic into a :class:`TransformTree`."""

    kind = "topic"

    def __init__(self, node, map_frame: str, topic: str = "camera_pose", qos=10, callback_group=None) -> None:
        self.map_frame = map_frame
        self.tree = TransformTree(tolerance=_TOLERANCE, max_gap=_MAX_GAP, maxlen=_HISTORY)
        self.rejected = 0
        self._node = node
        self._sub = node.create_subscription(TransformStamped, topic, self._on_pose, qos,
                                             callback_group=callback_group)

    def _on_pose(self, msg: TransformStamped) -> None:
        parent, child = msg.header.frame_id.lstrip("/"), msg.child_frame_id.lstrip("/")
        try:
            added = self.tree.add(parent, child, stamp_to_seconds(msg.header.stamp), transform_to_matrix(msg.transform))
        except ValueError as e:
            added, why = False, str(e)
        else:
            why = f"'{child}' already has another parent" if child in self.tree.conflicts else \
                f"empty or equal frame names ('{parent}' -> '{child}')"
        if not added:
            self.rejected += 1
            self._node.get_logger().warning(f"camera_pose {parent} -> {child} rejected: {why}",
                                            throttle_duration_sec=5.0)

    def lookup(self, camera_frame: str, stamp: float) -> np.ndarray | None:
        return self.tree.lookup(self.map_frame, camera_frame, stamp)

    def frames(self) -> set[str]:
        return self.tree.frames()

    def reaches_map(self) -> bool:
        """Has a transform with the map frame as parent arrived (so a camera's pose may come)?"""
        return self.map_frame in self.tree.frames()

    def clear(self) -> None:
        self.tree.clear()

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

        try:  # never blocks: a frame whose transform is not there yet waits in the core's queue (input.tf_timeout)
            t = self.buffer.lookup_transform(self.map_frame, camera_frame, Time(nanoseconds=int(stamp * 1e9)),
                                             timeout=Duration(seconds=0.0))
        except (self._tf2.LookupException, self._tf2.ExtrapolationException, self._tf2.ConnectivityException):
            return None
        return transform_to_matrix(t.transform)

    def reaches_map(self) -> bool:
        return self.map_frame in self.buffer.all_frames_as_string()

    def frames(self) -> set[str]:
        import yaml

        known = yaml.safe_load(self.buffer.all_frames_as_yaml()) or {}
        return set(known) | {v.get("parent", "") for v in known.values() if isinstance(v, dict)} - {""}

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


def frame_transform(poses, map_frame: str, target: str, source: str, stamp: float) -> np.ndarray | None:
    """``[4, 4]`` mapping points in ``source`` to ``target`` through ``map_frame`` at ``stamp``; None when a pose
    is unknown."""
    def to_map(frame: str):
        if frame == map_frame:
            return np.eye(4)
        return poses.lookup(frame, stamp) if poses is not None else None

    a, b = to_map(target), to_map(source)
    return None if a is None or b is None else np.linalg.inv(a) @ b
