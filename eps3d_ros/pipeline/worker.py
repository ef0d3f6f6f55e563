"""ONE inference thread with an ordered job queue: the caller never blocks on the network, and never runs two
windows at once.

* :meth:`InferenceWorker.submit` queues a window; a window still waiting (not started) is dropped for
  the newer one and counted as ``replaced`` — a late reconstruction of old frames is worth less than a
  fresh one;
* :meth:`InferenceWorker.call` queues any other job (relabelling with a new vocabulary, loading a map):
  jobs run strictly in the order they were queued, so a job queued after a window sees that window's
  result — there is no second thread to race with;
* for a window the thread runs ``reconstructor.run(frames)`` (or calls the reconstructor when it has no
  ``run``), then ``on_result(snapshot)``; an exception goes to ``on_error(exception, frames)`` and the
  thread keeps serving (exceptions raised by callbacks and jobs are logged and swallowed, for the same
  reason).

Callbacks and jobs run on the worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ..frames.frame import Frame

__all__ = ["InferenceWorker"]

log = logging.getLogger(__name__)


class InferenceWorker:
    def __init__(
        self,
        reconstructor: Any,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[Exception, list[Frame]], None] | None = None,
        name: str = "eps3d-inference",
    ) -> None:
        run = getattr(reconstructor, "run", reconstructor)
        if not callable(run):
            raise TypeError("reconstructor must have a run(frames) method or be callable")
        self._run = run
        self._on_result = on_result
        self._on_error = on_error
        self._cv = threading.Condition()
        self._jobs: deque[tuple[str, Any]] = deque()  # ("window", frames) | ("call", fn)
        self._running = False
        self._stopping = False
        self._stats = {"submitted": 0, "runs": 0, "failures": 0, "replaced": 0, "discarded_on_stop": 0,
                       "jobs": 0, "last_duration": None, "last_error": None}
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -------------------------------------------------------------------------------- client
    def submit(self, frames: Sequence[Frame]) -> bool:
        """Queue a window (dropping a waiting one); False when the worker is stopped."""
        frames = list(frames)
        if not frames:
            raise ValueError("cannot submit an empty window of frames")
        with self._cv:
            if self._stopping:
                return False
            waiting = [j for j in self._jobs if j[0] == "window"]
            for j in waiting:
                self._jobs.remove(j)
            self._stats["replaced"] += len(waiting)
            self._jobs.append(("window", frames))
            self._stats["submitted"] += 1
            self._cv.notify_all()
        return True

    def call(self, fn: Callable[[], None]) -> bool:
        """Queue ``fn()`` to run on the worker thread after everything queued before it; False when stopped."""
        with self._cv:
            if self._stopping:
                return False
            self._jobs.append(("call", fn))
            self._cv.notify_all()
        return True

    def discard_waiting(self) -> int:
        """Drop every queued job that has not started (a reset); returns how many."""
        with self._cv:
            n = len(self._jobs)
            self._jobs.clear()
            self._stats["discarded"] = self._stats.get("discarded", 0) + n
            self._cv.notify_all()
        return n

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stats(self) -> dict:
        """``submitted, runs, failures, replaced, discarded_on_stop, last_duration`` (s), ``last_error`` (str), ``busy``."""
        with self._cv:
            return {**self._stats, "busy": self._running or bool(self._jobs)}

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing runs or waits; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._running and not self._jobs, timeout)

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Refuse new work, drop what waits, let a running job finish, join; True when the thread ended."""
        with self._cv:
            self._stopping = True
            self._stats["discarded_on_stop"] += len(self._jobs)
            self._jobs.clear()
            self._cv.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -------------------------------------------------------------------------------- thread
    def _loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._stopping or bool(self._jobs))
                if self._stopping:
                    self._cv.notify_all()
                    return
                kind, payload = self._jobs.popleft()
                self._running = True
            try:
                if kind == "window":
                    self._window(payload)
                else:
                    self._call(payload)
                    with self._cv:
                        self._stats["jobs"] += 1
            finally:
                with self._cv:
                    self._running = False
                    self._cv.notify_all()

    def _window(self, frames: list[Frame]) -> None:
        t0 = time.perf_counter()
        result, error = None, None
        try:
            result = self._run(frames)
        except Exception as e:  # noqa: BLE001 - any failure of one window must not end the service
            error = e
        dt = time.perf_counter() - t0
        with self._cv:
            self._stats["last_duration"] = dt
            if error is None:
                self._stats["runs"] += 1
            else:
                self._stats["failures"] += 1
                self._stats["last_error"] = f"{type(error).__name__}: {error}"
        if error is None:
            self._call(self._on_result, result)
        else:
            self._call(self._on_error, error, frames)

    def _call(self, fn: Callable[..., None] | None, *args: Any) -> None:
        if fn is None:
            if args and isinstance(args[0], Exception):
                log.error("reconstruction failed: %s: %s", type(args[0]).__name__, args[0])
            return
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a broken callback must not kill the thread
            log.exception("inference worker callback %s raised", getattr(fn, "__name__", fn))
