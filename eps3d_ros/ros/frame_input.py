"""Synchronised camera input: ``rgb/image`` + ``rgb/camera_info`` (+ ``depth/image``) → one callback per frame.

``use_depth``:

* ``"false"``: colour + camera_info only (no depth subscription);
* ``"true"``: colour + camera_info + depth, all three matched (frames wait for depth);
* ``"auto"`` (default): both matchings run on the same subscriptions. While depth is *live* for a colour
  image (a depth image stamped at most ``depth_timeout`` seconds before it has arrived) frames come from
  the three-way matching and carry depth; otherwise from the two-way matching, without depth — a camera
  without depth works from RGB alone, one with depth uses it, and a depth stream that stops degrades
  instead of stalling. Liveness is judged on the stamps, not on arrival times, so a burst of frames after
  a pause (or a slow subscriber) is not mistaken for lost depth. For the first ``depth_timeout`` seconds
  of stamps after the first colour image, before it is known whether depth comes, depth-less frames are
  held back (counted in :attr:`FrameInput.waited_for_depth`), so that a camera with depth does not start
  with frames that lack it.

Approximate time synchronisation uses ``message_filters`` where it is importable (robots) and our
implementation with the same semantics (:mod:`eps3d_ros.frames.time_sync`) otherwise. Every message
received is reported to ``on_message(topic_key, stamp)`` for the input-health statistics.
"""

from __future__ import annotations

from collections.abc import Callable

from sensor_msgs.msg import CameraInfo, Image

from ..frames.time_sync import ApproximateTimeSynchronizer
from .messages import stamp_to_seconds

TOPICS = {"rgb": "rgb/image", "info": "rgb/camera_info", "depth": "depth/image"}
DEPTH_TIMEOUT_S = 2.0


class FrameInput:
    """Subscriptions + synchronisers; ``callback(rgb, info, depth_or_None)`` per matched set."""

    def __init__(self, node, callback: Callable, use_depth: str, qos, slop: float, queue_size: int,
                 callback_group=None, on_message: Callable[[str, float], None] | None = None,
                 on_synchronised: Callable[[str], None] | None = None, depth_timeout: float = DEPTH_TIMEOUT_S) -> None:
        self._node = node
        self._callback = callback
        self._on_message = on_message or (lambda key, stamp: None)
        # called with "frame" for every matched set, or "waiting_for_depth" for one held back (see above)
        self._on_synchronised = on_synchronised or (lambda what: None)
        self.use_depth = use_depth
        self.depth_timeout = depth_timeout
        self._last_depth = -float("inf")  # stamp of the newest depth image
        self._first_rgb: float | None = None  # stamp of the first colour image
        self.waited_for_depth = 0
        keys = ["rgb", "info"] + (["depth"] if use_depth != "false" else [])
        types = {"rgb": Image, "info": CameraInfo, "depth": Image}
        self.topics = {k: node.resolve_topic_name(TOPICS[k]) for k in keys}
        try:
            import message_filters
        except ImportError:
            message_filters = None
        self.backend = "message_filters" if message_filters else "eps3d_ros"
        self._syncs = []
        pairs = use_depth in ("auto", "false")  # two-way matching
        triples = use_depth in ("auto", "true")  # three-way matching
        if message_filters is not None:
            self._subs = {k: message_filters.Subscriber(node, types[k], TOPICS[k], qos_profile=qos,
                                                        callback_group=callback_group) for k in keys}
            for k, sub in self._subs.items():
                sub.registerCallback(self._counter(k))
            if pairs:
                s2 = message_filters.ApproximateTimeSynchronizer([self._subs["rgb"], self._subs["info"]],
                                                                 queue_size, slop)
                s2.registerCallback(self._emit_pair)
                self._syncs.append(s2)
            if triples:
                s3 = message_filters.ApproximateTimeSynchronizer([self._subs[k] for k in ("rgb", "info", "depth")],
                                                                 queue_size, slop)
                s3.registerCallback(self._emit_triple)
                self._syncs.append(s3)
        else:
            self._pair = ApproximateTimeSynchronizer(2, queue_size, slop, self._emit_pair) if pairs else None
            self._triple = ApproximateTimeSynchronizer(3, queue_size, slop, self._emit_triple) if triples else None
            self._syncs = [s for s in (self._pair, self._triple) if s is not None]
            self._subs = {k: node.create_subscription(types[k], TOPICS[k], self._feeder(k), qos,
                                                      callback_group=callback_group) for k in keys}

    # --------------------------------------------------------------------------------- feeding
    def _counter(self, key: str) -> Callable:
        def count(msg) -> None:
            self._seen(key, msg)

        return count

    def _seen(self, key: str, msg) -> float:
        stamp = stamp_to_seconds(msg.header.stamp)
        if key == "depth":
            self._last_depth = max(self._last_depth, stamp)
        elif key == "rgb" and self._first_rgb is None:
            self._first_rgb = stamp
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

    # -------------------------------------------------------------------------------- emitting
    def depth_live(self, stamp: float) -> bool:
        """Has depth been arriving up to ``stamp`` (a depth image stamped within ``depth_timeout`` before it)?"""
        return self._last_depth >= stamp - self.depth_timeout

    def _emit_pair(self, rgb: Image, info: CameraInfo) -> None:
        if self.use_depth == "auto":
            stamp = stamp_to_seconds(rgb.header.stamp)
            if self.depth_live(stamp):
                return  # the three-way matching delivers this frame with its depth
            first = self._first_rgb if self._first_rgb is not None else stamp
            if self._last_depth == -float("inf") and stamp - first < self.depth_timeout:
                self.waited_for_depth += 1  # does this camera have depth? not known yet
                self._on_synchronised("waiting_for_depth")
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
