"""Synchronised camera input: ``rgb/image`` + ``rgb/camera_info`` (+ ``depth/image``) → one callback per frame.

Which matched sets become frames (``pipeline.use_depth``: pairs, triples, or both with depth liveness) is
decided by the core, :class:`~eps3d_ros.frames.depth_liveness.DepthLiveness`; this module only subscribes
and matches. Approximate time synchronisation uses ``message_filters`` where it is importable (robots) and
our implementation with the same semantics (:mod:`eps3d_ros.frames.time_sync`) otherwise. Every message
received is reported to ``on_message(topic_key, stamp)`` for the input-health statistics.
"""

from __future__ import annotations

from collections.abc import Callable

from sensor_msgs.msg import CameraInfo, Image

from ..frames.depth_liveness import USE, WAITING_FOR_DEPTH, DepthLiveness
from ..frames.time_sync import ApproximateTimeSynchronizer
from .messages import stamp_to_seconds

TOPICS = {"rgb": "rgb/image", "info": "rgb/camera_info", "depth": "depth/image"}


def input_topics(node, use_depth: str) -> dict[str, str]:
    """``{"rgb" | "info" | "depth": resolved topic name}`` of the inputs ``use_depth`` subscribes to."""
    keys = ["rgb", "info"] + (["depth"] if DepthLiveness(use_depth).triples else [])
    return {k: node.resolve_topic_name(TOPICS[k]) for k in keys}


class FrameInput:
    """Subscriptions + synchronisers; ``callback(rgb, info, depth_or_None)`` per matched set that becomes a frame.
    ``on_synchronised(what)``: ``"frame"`` for each of those, ``"waiting_for_depth"`` for a pair held back."""

    def __init__(self, node, callback: Callable, use_depth: str, qos, slop: float, queue_size: int,
                 callback_group=None, on_message: Callable[[str, float], None] | None = None,
                 on_synchronised: Callable[[str], None] | None = None) -> None:
        self._node = node
        self._callback = callback
        self._on_message = on_message or (lambda key, stamp: None)
        self._on_synchronised = on_synchronised or (lambda what: None)
        self.depth = DepthLiveness(use_depth)
        self.topics = input_topics(node, use_depth)
        keys = list(self.topics)
        types = {"rgb": Image, "info": CameraInfo, "depth": Image}
        try:
            import message_filters
        except ImportError:
            message_filters = None
        self.backend = "message_filters" if message_filters else "eps3d_ros"
        self._syncs = []
        self._pair = self._triple = None
        if message_filters is not None:
            self._subs = {k: message_filters.Subscriber(node, types[k], TOPICS[k], qos_profile=qos,
                                                        callback_group=callback_group) for k in keys}
            for k, sub in self._subs.items():
                sub.registerCallback(lambda msg, key=k: self._seen(key, msg))
            for wanted, emit, inputs in ((self.depth.pairs, self._emit_pair, ("rgb", "info")),
                                         (self.depth.triples, self._emit_triple, ("rgb", "info", "depth"))):
                if wanted:
                    sync = message_filters.ApproximateTimeSynchronizer([self._subs[k] for k in inputs], queue_size,
                                                                       slop)
                    sync.registerCallback(emit)
                    self._syncs.append(sync)
        else:
            if self.depth.pairs:
                self._pair = ApproximateTimeSynchronizer(2, queue_size, slop, self._emit_pair)
            if self.depth.triples:
                self._triple = ApproximateTimeSynchronizer(3, queue_size, slop, self._emit_triple)
            self._syncs = [s for s in (self._pair, self._triple) if s is not None]
            self._subs = {k: node.create_subscription(types[k], TOPICS[k], self._feeder(k), qos,
                                                      callback_group=callback_group) for k in keys}

    def _seen(self, key: str, msg) -> float:
        stamp = stamp_to_seconds(msg.header.stamp)
        self.depth.saw(key, stamp)
        self._on_message(key, stamp)
        return stamp

    def _feeder(self, key: str) -> Callable:
        index = {"rgb": 0, "info": 1, "depth": 2}[key]

        def feed(msg) -> None:
            stamp = self._seen(key, msg)
            if index < 2 and self._pair is not None:
                self._pair.add(index, stamp, msg)
            if self._triple is not None:
                self._triple.add(index, stamp, msg)

        return feed

    def _emit_pair(self, rgb: Image, info: CameraInfo) -> None:
        decision = self.depth.pair(stamp_to_seconds(rgb.header.stamp))
        if decision == WAITING_FOR_DEPTH:
            self._on_synchronised(WAITING_FOR_DEPTH)
        if decision != USE:
            return
        self._on_synchronised("frame")
        self._callback(rgb, info, None)

    def _emit_triple(self, rgb: Image, info: CameraInfo, depth: Image) -> None:
        self._on_synchronised("frame")
        self._callback(rgb, info, depth)

    @property
    def dropped(self) -> int:
        return int(sum(getattr(s, "dropped", 0) for s in self._syncs))

    def destroy(self) -> None:
        for s in self._subs.values():
            sub = getattr(s, "sub", s)  # message_filters.Subscriber wraps the rclpy subscription
            self._node.destroy_subscription(sub)
        self._subs = {}
