"""Synchronised camera input, one set of subscriptions per camera of ``input.cameras``: ``<image>`` +
``<camera_info>`` (+ ``<depth>``) → one callback per matched set.

What becomes of a matched set (used, held while the depth decision is open, left to its triple, rate limited)
is decided by the core, :class:`~eps3d_ros.pipeline.camera_inputs.CameraInput`; this module only subscribes,
matches and reports (every message to :meth:`CameraInput.saw`, the depth topic's publisher count to
:meth:`CameraInput.depth_publishers`). Topic names are the camera's settings (relative: a namespace or a remap
moves them). Approximate time synchronisation uses ``message_filters`` where it is importable (robots) and our
implementation with the same semantics (:mod:`eps3d_ros.frames.time_sync`) otherwise. With ours, every message
callback is timed (:attr:`FrameInputs.callback_times`: seconds, including the frame a message completed).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from sensor_msgs.msg import CameraInfo, Image

from ..frames.time_sync import ApproximateTimeSynchronizer
from ..pipeline.camera_inputs import CameraInput, CameraInputs
from .messages import stamp_to_seconds

_TYPES = {"rgb": Image, "info": CameraInfo, "depth": Image}
_INDEX = {"rgb": 0, "info": 1, "depth": 2}


def resolved_topics(node, inputs_topics: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``{camera: {key: resolved name}}`` (namespace and remaps applied) of the settings' topic names."""
    return {cam: {k: node.resolve_topic_name(t) for k, t in topics.items()} for cam, topics in inputs_topics.items()}


class CameraSubscriptions:
    """One camera's subscriptions and synchronisers. ``on_set(camera, kind, rgb, info, depth_or_None)`` for each
    matched pair ("pair") or triple ("triple")."""

    def __init__(self, node, camera: CameraInput, topics: dict[str, str], on_set: Callable, qos, slop: float,
                 queue_size: int, callback_group, times: deque) -> None:
        self._node, self.camera, self._on_set, self._times = node, camera, on_set, times
        self.topics = dict(topics)  # as subscribed (relative names)
        depth = camera.depth
        keys = ["rgb", "info"] + (["depth"] if depth.triples else [])
        try:
            import message_filters
        except ImportError:
            message_filters = None
        self.backend = "message_filters" if message_filters else "eps3d_ros"
        self._pair = self._triple = None
        self._syncs: list = []
        if message_filters is not None:
            self._subs = {k: message_filters.Subscriber(node, _TYPES[k], topics[k], qos_profile=qos,
                                                        callback_group=callback_group) for k in keys}
            for k, sub in self._subs.items():
                sub.registerCallback(lambda msg, key=k: self._seen(key, msg))
            for wanted, kind, inputs in ((depth.pairs, "pair", ("rgb", "info")),
                                         (depth.triples, "triple", ("rgb", "info", "depth"))):
                if wanted:
                    sync = message_filters.ApproximateTimeSynchronizer([self._subs[k] for k in inputs], queue_size,
                                                                       slop)
                    sync.registerCallback(lambda *msgs, kind=kind: self._matched(kind, *msgs))
                    self._syncs.append(sync)
        else:
            if depth.pairs:
                self._pair = ApproximateTimeSynchronizer(2, queue_size, slop, lambda *m: self._matched("pair", *m))
            if depth.triples:
                self._triple = ApproximateTimeSynchronizer(3, queue_size, slop,
                                                           lambda *m: self._matched("triple", *m))
            self._syncs = [s for s in (self._pair, self._triple) if s is not None]
            self._subs = {k: node.create_subscription(_TYPES[k], topics[k], self._feeder(k), qos,
                                                      callback_group=callback_group) for k in keys}

    def _seen(self, key: str, msg) -> float:
        stamp = stamp_to_seconds(msg.header.stamp)
        self.camera.saw(key, stamp)
        return stamp

    def _feeder(self, key: str) -> Callable:
        index = _INDEX[key]

        def feed(msg) -> None:
            t0 = time.perf_counter()
            stamp = self._seen(key, msg)
            if index < 2 and self._pair is not None:
                self._pair.add(index, stamp, msg)
            if self._triple is not None:
                self._triple.add(index, stamp, msg)
            self._times.append(time.perf_counter() - t0)

        return feed

    def _matched(self, kind: str, rgb: Image, info: CameraInfo, depth: Image | None = None) -> None:
        if kind == "pair" and self.camera.depth.undecided:
            self.check_depth_publishers()  # nobody publishes depth: decided at once
        self._on_set(self.camera, kind, rgb, info, depth)

    def check_depth_publishers(self) -> None:
        """Tell the core how many publishers the depth topic has (matched to our subscription)."""
        sub = self._subs.get("depth")
        if sub is not None:
            self.camera.depth_publishers(getattr(sub, "sub", sub).get_publisher_count())

    @property
    def dropped(self) -> int:
        return int(sum(getattr(s, "dropped", 0) for s in self._syncs))

    def destroy(self) -> None:
        for s in self._subs.values():
            self._node.destroy_subscription(getattr(s, "sub", s))  # message_filters.Subscriber wraps it
        self._subs = {}


class FrameInputs:
    """Every camera of ``inputs`` (:class:`~eps3d_ros.pipeline.camera_inputs.CameraInputs`), subscribed with the
    settings' (relative) topic names ``topics`` {camera: {key: name}}."""

    def __init__(self, node, inputs: CameraInputs, topics: dict[str, dict[str, str]], on_set: Callable, qos,
                 slop: float, queue_size: int, callback_group=None) -> None:
        self.callback_times: deque[float] = deque(maxlen=2000)  # seconds per message callback, all cameras
        self.cameras = {name: CameraSubscriptions(node, cam, topics[name], on_set, qos, slop, queue_size,
                                                  callback_group, self.callback_times)
                        for name, cam in inputs.cameras.items()}
        self.backend = next(iter(self.cameras.values())).backend
        for subs in self.cameras.values():
            subs.check_depth_publishers()

    def check_depth_publishers(self) -> None:
        """The depth topics' publishers now (a publisher that appears opens the depth decision again)."""
        for subs in self.cameras.values():
            if subs.camera.depth.use_depth == "auto":
                subs.check_depth_publishers()

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.cameras.values())

    def describe(self) -> str:
        return "; ".join(f"{name}: {', '.join(s.topics.values())} (depth: {s.camera.use_depth})"
                         for name, s in self.cameras.items())

    def destroy(self) -> None:
        for subs in self.cameras.values():
            subs.destroy()
        self.cameras = {}
