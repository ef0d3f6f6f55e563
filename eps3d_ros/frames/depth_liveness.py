"""Does a colour frame wait for its depth image? The rule of ``pipeline.use_depth`` for a live stream.

* ``"false"``: never (no depth is subscribed);
* ``"true"``: always (colour, camera_info and depth are matched three ways);
* ``"auto"``: colour + camera_info pairs and colour + camera_info + depth triples are both matched. While
  depth is *live* for a colour image (a depth image stamped at most ``timeout`` seconds before it has
  arrived) the triple delivers the frame with its depth, and the pair is dropped; otherwise the pair goes on
  without depth — a camera without depth works from colour alone, one with depth uses it, and a depth stream
  that stops degrades instead of stalling. Liveness is judged on stamps, not arrival times, so a burst of
  frames after a pause (or a slow subscriber) is not mistaken for lost depth. For the first ``timeout``
  seconds of stamps after the first colour image, before it is known whether depth comes, pairs are held
  back, so that a camera with depth does not start with frames that lack it.

No ROS here: the node reports what arrives (:meth:`DepthLiveness.saw`) and asks about each matched pair
(:meth:`DepthLiveness.pair`).
"""

from __future__ import annotations

import threading

__all__ = ["DEPTH_TIMEOUT_S", "DepthLiveness", "USE", "TRIPLE_DELIVERS", "WAITING_FOR_DEPTH"]

DEPTH_TIMEOUT_S = 2.0
USE, TRIPLE_DELIVERS, WAITING_FOR_DEPTH = "use", "triple_delivers", "waiting_for_depth"


class DepthLiveness:
    """Thread-safe: subscription callbacks of several topics report and ask."""

    def __init__(self, use_depth: str = "auto", timeout: float = DEPTH_TIMEOUT_S) -> None:
        if use_depth not in ("auto", "true", "false"):
            raise ValueError(f"use_depth must be auto, true or false, got {use_depth!r}")
        if not timeout > 0:
            raise ValueError(f"the depth timeout must be positive, got {timeout!r}")
        self.use_depth = use_depth
        self.timeout = float(timeout)
        self._lock = threading.Lock()
        self._last_depth = -float("inf")  # stamp of the newest depth image
        self._first_color: float | None = None  # stamp of the first colour image

    @property
    def pairs(self) -> bool:
        """Are colour + camera_info pairs matched (frames without depth)?"""
        return self.use_depth in ("auto", "false")

    @property
    def triples(self) -> bool:
        """Are colour + camera_info + depth triples matched?"""
        return self.use_depth in ("auto", "true")

    def saw(self, key: str, stamp: float) -> None:
        """A message arrived on input ``key`` ("rgb", "info" or "depth") with header stamp ``stamp`` (s)."""
        with self._lock:
            if key == "depth":
                self._last_depth = max(self._last_depth, stamp)
            elif key == "rgb" and self._first_color is None:
                self._first_color = stamp

    def live(self, stamp: float) -> bool:
        """Has depth been arriving up to ``stamp`` (a depth image stamped within the timeout before it)?"""
        with self._lock:
            return self._last_depth >= stamp - self.timeout

    def pair(self, stamp: float) -> str:
        """What becomes of a matched colour + camera_info pair stamped ``stamp``: :data:`USE` it without depth,
        drop it because the triple delivers the frame (:data:`TRIPLE_DELIVERS`), or hold it back while it is not
        known yet whether depth comes (:data:`WAITING_FOR_DEPTH`)."""
        if self.use_depth != "auto":
            return USE
        with self._lock:
            if self._last_depth >= stamp - self.timeout:
                return TRIPLE_DELIVERS
            first = self._first_color if self._first_color is not None else stamp
            if self._last_depth == -float("inf") and stamp - first < self.timeout:
                return WAITING_FOR_DEPTH
        return USE
