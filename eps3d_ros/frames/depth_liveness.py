"""Does a colour frame wait for its depth image? The rule of ``use_depth`` for one camera's live stream.

* ``"false"``: never (no depth is subscribed);
* ``"true"``: always (colour, camera_info and depth are matched three ways);
* ``"auto"``: colour + camera_info pairs and colour + camera_info + depth triples are both matched. While
  depth is *live* for a colour image (a depth image stamped at most ``timeout`` seconds before it has
  arrived) the triple delivers the frame with its depth, and the pair is dropped; otherwise the pair goes on
  without depth — a camera without depth works from colour alone, one with depth uses it, and a depth stream
  that stops degrades instead of stalling. Liveness is judged on stamps, not arrival times, so a burst of
  frames after a pause (or a slow subscriber) is not mistaken for lost depth.

**Deciding at the start.** Before any depth image has arrived it is not known whether depth comes:

* when nobody publishes on the depth topic (the caller tells :meth:`DepthLiveness.publishers` what the ROS
  graph says), it is decided at once: no depth, pairs are used;
* otherwise pairs are *held* (:data:`WAITING_FOR_DEPTH`: the caller keeps them, it does not drop them) for
  ``timeout`` seconds of stamps after the first colour image, or until the caller gives up waiting
  (:meth:`give_up_waiting`, e.g. after ``timeout`` seconds of wall time without new frames); then a held
  pair is used without depth — unless depth arrived meanwhile and its triple carries it
  (:data:`TRIPLE_DELIVERS`). Held pairs stamped before the earliest depth image (minus ``slop``) have no triple
  and are used without depth (``pair(stamp, held=True)``);
* when a publisher appears on the depth topic later, the question is open again (decided again).

No ROS here: the node reports what arrives (:meth:`saw`) and the graph (:meth:`publishers`), and asks about each
matched pair (:meth:`pair`), also again for a pair it holds.
"""

from __future__ import annotations

import threading

__all__ = ["DEPTH_TIMEOUT_S", "DepthLiveness", "USE", "TRIPLE_DELIVERS", "WAITING_FOR_DEPTH"]

DEPTH_TIMEOUT_S = 2.0
USE, TRIPLE_DELIVERS, WAITING_FOR_DEPTH = "use", "triple_delivers", "waiting_for_depth"
_NEVER = -float("inf")


class DepthLiveness:
    """Thread-safe: subscription callbacks of several topics report and ask."""

    def __init__(self, use_depth: str = "auto", timeout: float = DEPTH_TIMEOUT_S, slop: float = 0.05) -> None:
        if use_depth not in ("auto", "true", "false"):
            raise ValueError(f"use_depth must be auto, true or false, got {use_depth!r}")
        if not timeout > 0:
            raise ValueError(f"the depth timeout must be positive, got {timeout!r}")
        self.use_depth = use_depth
        self.timeout = float(timeout)
        self.slop = float(slop)
        self._lock = threading.Lock()
        self._last_depth = _NEVER  # stamp of the newest depth image
        self._first_depth: float | None = None  # stamp of the first depth image
        self._wait_from: float | None = None  # stamp the wait for depth counts from (the first colour image)
        self._publishers: int | None = None  # publishers on the depth topic (None: not told)
        self._gave_up = False

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
                self._first_depth = stamp if self._first_depth is None else min(self._first_depth, stamp)
            elif key == "rgb" and self._wait_from is None:
                self._wait_from = stamp

    def publishers(self, count: int) -> None:
        """How many publishers the depth topic has now. From none to some, the question is open again."""
        with self._lock:
            if count > 0 and self._publishers == 0 and self._last_depth == _NEVER:
                self._wait_from, self._gave_up = None, False
            self._publishers = int(count)

    def give_up_waiting(self) -> None:
        """Decide now that no depth comes (until a depth image arrives or a publisher appears)."""
        with self._lock:
            self._gave_up = True

    def live(self, stamp: float) -> bool:
        """Has depth been arriving up to ``stamp`` (a depth image stamped within the timeout before it)?"""
        with self._lock:
            return self._last_depth >= stamp - self.timeout

    @property
    def before_depth(self) -> bool:
        """``auto`` and no depth image yet: the depth topic's publishers (:meth:`publishers`) still decide."""
        with self._lock:
            return self.use_depth == "auto" and self._last_depth == _NEVER

    @property
    def undecided(self) -> bool:
        """Would a pair be held now (no depth yet, a publisher on the depth topic or none known, not given up)?"""
        with self._lock:
            return self._undecided()

    def _undecided(self) -> bool:
        return (self.use_depth == "auto" and self._last_depth == _NEVER and self._publishers != 0
                and not self._gave_up)

    def pair(self, stamp: float, held: bool = False) -> str:
        """What becomes of a matched colour + camera_info pair stamped ``stamp``: :data:`USE` it without depth,
        drop it because the triple delivers the frame (:data:`TRIPLE_DELIVERS`), or hold it while it is not known
        yet whether depth comes (:data:`WAITING_FOR_DEPTH`). ``held``: asked again for a pair held meanwhile."""
        if self.use_depth != "auto":
            return USE
        with self._lock:
            if self._last_depth >= stamp - self.timeout:
                if held and stamp < self._first_depth - self.slop:
                    return USE  # held from before depth began: no triple has it
                return TRIPLE_DELIVERS
            if self._undecided():
                start = self._wait_from if self._wait_from is not None else stamp
                if stamp - start < self.timeout:
                    return WAITING_FOR_DEPTH
        return USE
