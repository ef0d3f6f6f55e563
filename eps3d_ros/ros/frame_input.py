"""Synchronised camera input: ``rgb/image`` + ``rgb/camera_info`` (+ ``depth/image``) → one callback.

Approximate time synchronisation uses ``message_filters`` where it is importable (robots) and our
implementation with the same semantics (:mod:`eps3d_ros.pipeline.time_sync`) otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

from sensor_msgs.msg import CameraInfo, Image

from ..pipeline.time_sync import ApproximateTimeSynchronizer
from .messages import stamp_to_seconds

TOPICS = ("rgb/image", "rgb/camera_info", "depth/image")


class FrameInput:
    """Subscriptions + synchroniser; ``callback(rgb, info, depth_or_None)`` per matched set."""

    def __init__(self, node, callback: Callable, use_depth: bool, qos, slop: float, queue_size: int,
                 callback_group=None) -> None:
        self._node = node
        self._callback = callback
        types = [Image, CameraInfo] + ([Image] if use_depth else [])
        topics = TOPICS[: len(types)]
        try:
            import message_filters
        except ImportError:
            message_filters = None
        self.backend = "message_filters" if message_filters else "eps3d_ros"
        if message_filters is not None:
            self._subs = [message_filters.Subscriber(node, t, name, qos_profile=qos, callback_group=callback_group)
                          for t, name in zip(types, topics)]
            self._sync = message_filters.ApproximateTimeSynchronizer(self._subs, queue_size, slop)
            self._sync.registerCallback(self._emit)
        else:
            self._sync = ApproximateTimeSynchronizer(len(types), queue_size, slop, self._emit)
            self._subs = [
                node.create_subscription(t, name, self._feeder(i), qos, callback_group=callback_group)
                for i, (t, name) in enumerate(zip(types, topics))
            ]

    def _feeder(self, index: int) -> Callable:
        def feed(msg) -> None:
            self._sync.add(index, stamp_to_seconds(msg.header.stamp), msg)

        return feed

    def _emit(self, rgb: Image, info: CameraInfo, depth: Image | None = None) -> None:
        self._callback(rgb, info, depth)

    @property
    def dropped(self) -> int:
        return int(getattr(self._sync, "dropped", 0))

    def destroy(self) -> None:
        for s in self._subs:
            sub = getattr(s, "sub", s)  # message_filters.Subscriber wraps the rclpy subscription
            self._node.destroy_subscription(sub)
        self._subs = []
