"""The cameras' way in, without ROS: per camera the rate limit, the depth decision (frames held while it is open)
and the wait for a transform; frames leave in each camera's own order once what they wait for is there.

The node (``eps3d_ros/ros/frame_input.py``) only subscribes and matches. For every message it calls
:meth:`CameraInput.saw`; for every matched set (colour + camera_info = a *pair*, with depth = a *triple*) it asks
:meth:`CameraInput.decide`, which answers

* :data:`USE`: convert it to a :class:`~eps3d_ros.frames.frame.Frame` and hand it over
  (:meth:`~eps3d_ros.pipeline.session.Session.take`);
* :data:`WAITING_FOR_DEPTH`: the same, but it is *held* until the camera's depth decision is made
  (:mod:`eps3d_ros.frames.depth_liveness`): then used without depth, or left to its triple;
* :data:`TRIPLE_DELIVERS`: drop it, its triple brings the frame with depth;
* :data:`RATE_LIMITED`: drop it, the camera's ``max_rate_hz`` took a frame less than a period ago (by stamp).

A frame without a pose while transforms reach the map frame waits up to ``input.tf_timeout`` (wall time) for its
transform (:meth:`CameraInputs.ready` asks the pose source again). When it does not come: if another camera's
frames had poses within ``max_frame_age`` of it, the window would be aligned by those cameras and an unposed view
does not belong in it, so the frame is dropped (``no_transform``, naming the transform) and the other cameras go
on; otherwise (one camera, or no camera with TF into the map frame now) it is used without a pose, as a camera
without TF is (its window stays in the camera frame). The other cameras never wait for it.

:meth:`CameraInputs.ready` is called after every hand-over and by the node's timer (frames held or waiting
leave when their time is up even if nothing else arrives).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..frames.depth_liveness import TRIPLE_DELIVERS, USE, WAITING_FOR_DEPTH, DepthLiveness
from ..frames.frame import Frame
from ..settings.cameras import camera_topics
from .input_health import CamerasHealth, InputHealth

__all__ = ["CameraInput", "CameraInputs", "RATE_LIMITED", "TRIPLE_DELIVERS", "USE", "WAITING_FOR_DEPTH",
           "INPUT_DROP_REASONS"]

RATE_LIMITED = "rate_limit"
INPUT_DROP_REASONS = (RATE_LIMITED, "no_transform", "held_overflow")
RATE_TOLERANCE = 0.1  # a frame up to 10 % of a period early still counts as the next one (stamp jitter)
MAX_WAITING = 64  # frames one camera may hold at a time (at the network's size)


@dataclass
class _Waiting:
    frame: Frame
    for_depth: bool  # a pair taken while the depth decision was open
    since: float  # clock time it was handed over


class CameraInput:
    """One camera: ``topics`` {"rgb" | "info" | "depth": name}, its ``use_depth`` (auto | true | false) and
    ``max_rate_hz`` (0: every frame). Thread-safe."""

    def __init__(self, name: str, topics: dict[str, str], use_depth: str = "auto", max_rate_hz: float = 0.0,
                 depth_timeout: float = 2.0, tf_timeout: float = 0.5, slop: float = 0.05,
                 clock: Callable[[], float] = time.monotonic, health: InputHealth | None = None) -> None:
        self.name = name
        self.topics = {k: v for k, v in topics.items() if k != "depth" or use_depth != "false"}
        self.use_depth = use_depth
        self.depth = DepthLiveness(use_depth, depth_timeout, slop)
        self.health = health if health is not None else InputHealth(self.topics, use_depth, slop, clock)
        self.tf_timeout = float(tf_timeout)
        self._period = 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._last_taken: float | None = None
        self._queue: deque[_Waiting] = deque()
        self.dropped: Counter[str] = Counter()

    def saw(self, key: str, stamp: float) -> None:
        """A message on input ``key`` (rgb, info, depth) stamped ``stamp``."""
        self.depth.saw(key, stamp)
        self.health.received(key, stamp)

    def depth_publishers(self, count: int) -> None:
        """How many publishers the depth topic has (the ROS graph): none decides ``auto`` at once."""
        self.depth.publishers(count)

    def decide(self, kind: str, stamp: float) -> str:
        """What becomes of a matched set, ``kind`` "pair" or "triple" (see the module docstring)."""
        decision = self.depth.pair(stamp) if kind == "pair" else USE
        if decision == TRIPLE_DELIVERS:
            return decision
        with self._lock:
            last = self._last_taken
            if self._period and last is not None and last <= stamp < last + (1 - RATE_TOLERANCE) * self._period:
                self.dropped[RATE_LIMITED] += 1
                limited = True
            else:
                self._last_taken, limited = stamp, False
        self.health.synchronised(RATE_LIMITED if limited else "frame")
        return RATE_LIMITED if limited else decision

    def put(self, frame: Frame, held: bool = False) -> None:
        """Hand over a frame made from a set :meth:`decide` let through (``held``: it said WAITING_FOR_DEPTH)."""
        with self._lock:
            self._queue.append(_Waiting(frame, held, self._clock()))
            if len(self._queue) > MAX_WAITING:
                self._queue.popleft()
                self.dropped["held_overflow"] += 1
                self.health.refused("held_overflow", f"more than {MAX_WAITING} frames waiting: the oldest left")
            self.health.held(len(self._queue))

    def give_up_waiting_for_depth(self) -> None:
        """Decide now that no depth comes for the frames held (``~/reconstruct`` wants a window now)."""
        if self.depth.undecided:
            self.depth.give_up_waiting()

    def release(self, lookup: Callable[[str, float], Any] | None, transforms_seen: bool,
                metric_near: Callable[[float, str], bool], map_frame: str) -> list[Frame]:
        """Frames ready to go, in order: each leaves when its depth decision and its pose are settled (see the
        module docstring); the first one still waiting keeps the ones behind it waiting too."""
        out: list[Frame] = []
        with self._lock:
            now = self._clock()
            while self._queue:
                w = self._queue[0]
                if w.for_depth:
                    decision = self.depth.pair(w.frame.stamp, held=True)
                    if decision == WAITING_FOR_DEPTH and now - w.since < self.depth.timeout:
                        break
                    if decision == WAITING_FOR_DEPTH:
                        self.depth.give_up_waiting()  # no depth within the timeout of wall time: colour alone
                    elif decision == TRIPLE_DELIVERS:
                        self._queue.popleft()  # depth came: the triple of this stamp carries the frame
                        continue
                    w.for_depth = False
                frame = w.frame
                if frame.pose is None and transforms_seen and lookup is not None:
                    pose = lookup(frame.frame_id, frame.stamp)
                    if pose is not None:
                        frame = w.frame = dataclasses.replace(frame, pose=pose)
                    elif now - w.since < self.tf_timeout:
                        break
                    elif metric_near(frame.stamp, self.name):
                        self._queue.popleft()
                        self.dropped["no_transform"] += 1
                        self.health.no_transform(frame.frame_id, map_frame)
                        continue
                self._queue.popleft()
                out.append(frame)
            self.health.held(len(self._queue))
        return out

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._queue)


class CameraInputs:
    """The cameras of ``config.input`` (an :class:`~eps3d_ros.settings.Eps3dConfig`), each a :class:`CameraInput`
    with the topics ``topics`` gives (resolved names; default the settings' relative ones)."""

    def __init__(self, config: Any, topics: dict[str, dict[str, str]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        inp, p = config.input, config.pipeline
        names = list(inp.cameras)
        topics = {n: dict((topics or {}).get(n) or camera_topics(n, inp.camera(n))) for n in names}
        depth = {n: config.camera_use_depth(n) for n in names}
        for n in names:
            if depth[n] == "false":
                topics[n].pop("depth", None)
        self.health = CamerasHealth(topics, depth, p.sync_slop, clock)
        self.cameras = {n: CameraInput(n, topics[n], depth[n], inp.camera(n).max_rate_hz, inp.depth_timeout,
                                       inp.tf_timeout, p.sync_slop, clock, self.health.camera(n)) for n in names}
        self.max_frame_age = p.max_frame_age
        self._posed: dict[str, float] = {}  # per camera: the newest stamp of a frame that went on with a pose
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> CameraInput:
        return self.cameras[name]

    def note_pose(self, frame: Frame) -> None:
        """A frame went on with a pose (its camera's TF reaches the map frame)."""
        if frame.pose is not None:
            with self._lock:
                self._posed[frame.camera] = max(self._posed.get(frame.camera, frame.stamp), frame.stamp)

    def metric_near(self, stamp: float, camera: str) -> bool:
        """Did another camera's frames than ``camera``'s have poses within ``max_frame_age`` of ``stamp``?"""
        with self._lock:
            return any(abs(stamp - t) <= self.max_frame_age for c, t in self._posed.items() if c != camera)

    def ready(self, lookup: Callable[[str, float], Any] | None = None, transforms_seen: bool = False,
              map_frame: str = "map") -> list[Frame]:
        """Every camera's frames that may go on now (each camera's in its order)."""
        out: list[Frame] = []
        for cam in self.cameras.values():
            out += cam.release(lookup, transforms_seen, self.metric_near, map_frame)
        return out

    def give_up_waiting_for_depth(self) -> None:
        for cam in self.cameras.values():
            cam.give_up_waiting_for_depth()

    def stats(self) -> dict[str, Any]:
        """``input_dropped`` {reason: n} over the cameras (rate limit, no transform, held overflow) and
        ``input_waiting`` (frames held or waiting now)."""
        dropped: Counter[str] = Counter()
        for cam in self.cameras.values():
            dropped.update(cam.dropped)
        return {"input_dropped": {r: int(dropped[r]) for r in INPUT_DROP_REASONS},
                "input_waiting": sum(c.waiting for c in self.cameras.values())}
