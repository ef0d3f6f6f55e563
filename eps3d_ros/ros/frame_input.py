"""Synchronised camera input, one set of subscriptions per camera of ``input.cameras``: ``<image>`` +
``<camera_info>`` (+ ``<depth>``) → a frame handed to the session.

What becomes of a matched set (used, held while the depth decision is open, left to its triple, rate limited)
is decided by the core, :class:`~eps3d_ros.pipeline.camera_inputs.CameraInput`; this module only subscribes,
matches, converts and reports (every message to :meth:`CameraInput.saw`, the depth topic's publisher count to
:meth:`CameraInput.depth_publishers`), and runs the steady 10 Hz timer that lets frames waiting in the core go on
(:meth:`~eps3d_ros.pipeline.session.Session.pump`). Topic names are the camera's settings (relative: a namespace
or a remap moves them). Approximate time synchronisation uses ``message_filters`` where it is importable (robots) and our
implementation with the same semantics (:mod:`eps3d_ros.frames.time_sync`) otherwise. With ours, every message
callback is timed (:attr:`FrameInputs.callback_times`: seconds, including the frame a message completed).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from sensor_msgs.msg import CameraInfo, Image

from rclpy.clock import Clock, ClockType

from ..frames.time_sync import ApproximateTimeSynchronizer
from ..pipeline.camera_inputs import USE, WAITING_FOR_DEPTH, CameraInput
from ..settings.cameras import camera_topics
from .context_shutdown import run_while_live
from .messages import frame_from_messages, stamp_to_seconds

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
        if kind == "pair" and self.camera.depth.before_depth:
            # the graph now, not at the last poll: nobody publishes depth → decided at once; a depth publisher
            # that appeared just before this frame (a driver started with the node) → held until its depth comes
            self.check_depth_publishers()
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
    """Every camera of the session's ``input.cameras``, subscribed with the settings' (relative) topic names; the
    session's inputs are started afresh (:meth:`~eps3d_ros.pipeline.session.Session.watch_inputs`) with the pose
    source ``poses`` and the node's clock (sim time with ``use_sim_time``)."""

    def __init__(self, node, session, poses, qos, callback_group=None) -> None:
        c = session.config
        self._node, self._session, self._poses = node, session, poses
        topics = {n: camera_topics(n, c.input.camera(n)) for n in c.input.cameras}
        inputs = session.watch_inputs(resolved_topics(node, topics), poses.lookup, poses.reaches_map, self._now)
        self.callback_times: deque[float] = deque(maxlen=2000)  # seconds per message callback, all cameras
        self.cameras = {name: CameraSubscriptions(node, cam, topics[name], self._on_set, qos, c.pipeline.sync_slop,
                                                  c.pipeline.sync_queue_size, callback_group, self.callback_times)
                        for name, cam in inputs.cameras.items()}
        self.backend = next(iter(self.cameras.values())).backend
        for subs in self.cameras.values():
            subs.check_depth_publishers()
        # steady: with use_sim_time, frames still leave the queues while a bag is paused
        self._timer = node.create_timer(0.1, self._poll, callback_group, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _now(self) -> float | None:
        """The node's time in seconds (sim time with use_sim_time); None before the first /clock."""
        t = self._node.get_clock().now().nanoseconds
        return t * 1e-9 if t else None

    def _on_set(self, camera: CameraInput, kind: str, rgb, info, depth=None) -> None:
        session = self._session
        decision = camera.decide(kind, stamp_to_seconds(rgb.header.stamp))
        if decision not in (USE, WAITING_FOR_DEPTH):
            return  # rate limited, or its triple brings it with depth
        try:
            frame = frame_from_messages(rgb, info, depth, session.config.pipeline, self._poses, camera.name)
        except ValueError as e:
            session.refuse_input(f"camera '{camera.name}': {e}", camera.name)
            self._node.get_logger().error(f"frame of camera '{camera.name}' dropped: {e}", throttle_duration_sec=2.0)
            return
        session.take(camera.name, frame, held=decision == WAITING_FOR_DEPTH)

    def _poll(self) -> None:
        if self.cameras:
            # a graph query: it fails once a signal has shut the context down
            run_while_live(self._node.context, self.check_depth_publishers)
            self._session.pump()

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
        self._node.destroy_timer(self._timer)
        for subs in self.cameras.values():
            subs.destroy()
        self.cameras = {}
