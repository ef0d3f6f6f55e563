"""Approximate time synchronisation with the semantics of ROS 2 ``message_filters.ApproximateTimeSynchronizer`` (Python).

Without rclpy: messages come with their stamp in seconds. The matching rule is message_filters'
(Python implementation), re-implemented here:

* one queue per input, keyed by stamp (integer nanoseconds): a second message with the same stamp on
  the same input replaces the first; a queue holds at most ``queue_size`` messages and, when over,
  drops its *oldest stamp* (not the earliest arrival);
* only the message that just arrived can complete a set: for every other input, the candidates are
  its queued stamps within ``slop`` of the new stamp (``|Δ| <= slop``), tried closest first; the
  first combination (in that order, the other inputs' candidates varied last-input-fastest) whose
  spread ``max - min`` is strictly below ``slop`` is emitted once, and its messages leave their
  queues. Unmatched messages stay until pushed out by newer ones.
* the spread test is strict, as in message_filters: with ``slop = 0`` no set is ever emitted;
* a message without a stamp (``stamp=None``) is dropped unless ``allow_headerless``, when it takes
  the current time (``now()``).

The callback is called outside the lock (so it may call :meth:`add` or take long without blocking
other inputs), with one message per input in input order.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ApproximateTimeSynchronizer"]


class ApproximateTimeSynchronizer:
    def __init__(
        self,
        num_inputs: int,
        queue_size: int,
        slop: float,
        callback: Callable[..., Any] | None = None,
        allow_headerless: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        if num_inputs < 1:
            raise ValueError(f"num_inputs must be >= 1, got {num_inputs}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not (slop >= 0 and math.isfinite(slop)):
            raise ValueError(f"slop must be a finite number of seconds >= 0, got {slop}")
        self.num_inputs = int(num_inputs)
        self.queue_size = int(queue_size)
        self.slop = float(slop)
        self._slop_ns = round(float(slop) * 1e9)
        self.allow_headerless = bool(allow_headerless)
        self._now = now
        self._queues: list[dict[int, Any]] = [{} for _ in range(self.num_inputs)]
        self._callbacks: list[tuple[Callable[..., Any], tuple]] = []
        self._lock = threading.Lock()
        self._counts = {"received": 0, "emitted_sets": 0, "dropped_overflow": 0, "dropped_duplicate": 0,
                        "dropped_headerless": 0}
        if callback is not None:
            self.register_callback(callback)

    def register_callback(self, callback: Callable[..., Any], *args: Any) -> int:
        """``callback(msg_0, ..., msg_{n-1}, *args)`` for every synchronised set; returns a connection index."""
        self._callbacks.append((callback, args))
        return len(self._callbacks) - 1

    registerCallback = register_callback  # message_filters' spelling

    def add(self, index: int, stamp: float | None, msg: Any) -> bool:
        """Offer ``msg`` (stamp in seconds) on input ``index``; returns True when it completed a set."""
        if not 0 <= index < self.num_inputs:
            raise IndexError(f"input index {index} out of range for {self.num_inputs} inputs")
        if stamp is None:
            if not self.allow_headerless:
                with self._lock:
                    self._counts["received"] += 1
                    self._counts["dropped_headerless"] += 1
                return False
            stamp = self._now()
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"message stamp must be finite seconds, got {stamp}")
        t = round(stamp * 1e9)
        matched: list[Any] | None = None
        with self._lock:
            self._counts["received"] += 1
            mine = self._queues[index]
            if t in mine:
                self._counts["dropped_duplicate"] += 1  # same stamp again: the newer message wins
            mine[t] = msg
            while len(mine) > self.queue_size:
                del mine[min(mine)]
                self._counts["dropped_overflow"] += 1
            matched = self._match(index, t)
            if matched is not None:
                self._counts["emitted_sets"] += 1
        if matched is None:
            return False
        for cb, args in list(self._callbacks):
            cb(*matched, *args)
        return True

    def _match(self, index: int, t: int) -> list[Any] | None:
        """The first set containing the new stamp ``t`` on ``index`` (caller holds the lock); removes it."""
        candidates: list[list[int]] = []
        for i, q in enumerate(self._queues):
            if i == index:
                continue
            near = sorted((abs(s - t), s) for s in q if abs(s - t) <= self._slop_ns)
            if not near:
                return None  # an input has nothing within slop: no set can form now
            candidates.append([s for _, s in near])
        for combo in itertools.product(*candidates):
            stamps = list(combo)
            stamps.insert(index, t)
            if max(stamps) - min(stamps) < self._slop_ns:
                msgs = [self._queues[i].pop(s) for i, s in enumerate(stamps)]
                return msgs
        return None

    def pending(self) -> list[int]:
        """Messages waiting in each input's queue."""
        with self._lock:
            return [len(q) for q in self._queues]

    def stats(self) -> dict[str, int]:
        """Counters: received, emitted_sets, dropped_overflow, dropped_duplicate, dropped_headerless, pending."""
        with self._lock:
            return {**self._counts, "pending": sum(len(q) for q in self._queues)}

    @property
    def dropped(self) -> int:
        """Messages that left a queue without being part of a set."""
        with self._lock:
            c = self._counts
            return c["dropped_overflow"] + c["dropped_duplicate"] + c["dropped_headerless"]

    def reset(self) -> None:
        """Forget queued messages (e.g. after a ROS time jump); counters are kept."""
        with self._lock:
            for q in self._queues:
                q.clear()
