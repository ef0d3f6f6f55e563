"""ONE inference thread with a one-slot queue: the node never blocks on the network, and never runs two windows at once.

* :meth:`InferenceWorker.submit` puts a window in the slot; a window still waiting there (not
  started) is replaced by the newer one and counted as ``replaced`` — a late reconstruction of
  old frames is worth less than a fresh one;
* the thread takes the slot, runs ``reconstructor.run(frames)`` (or calls the reconstructor when
  it has no ``run``), then ``on_result(snapshot)``; an exception goes to
  ``on_error(exception, frames)`` and the thread keeps serving (exceptions raised by the callbacks
  themselves are logged and swallowed, for the same reason);
* :attr:`latest` is the last snapshot (one reference assignment: atomic for readers).

Callbacks run on the worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .frames import Frame

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
        self._pending: list[Frame] | None = None
        self._running = False
        self._stopping = False
        self._latest: Any = None
        self._stats = {"submitted": 0, "runs": 0, "failures": 0, "replaced": 0, "discarded_on_stop": 0,
                       "last_duration": None, "last_error": None}
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -------------------------------------------------------------------------------- client
    def submit(self, frames: Sequence[Frame]) -> bool:
        """Queue a window (replacing a waiting one); False when the worker is stopped."""
        frames = list(frames)
        if not frames:
            raise ValueError("cannot submit an empty window of frames")
        with self._cv:
            if self._stopping:
                return False
            if self._pending is not None:
                self._stats["replaced"] += 1
            self._pending = frames
            self._stats["submitted"] += 1
            self._cv.notify_all()
        return True

    @property
    def busy(self) -> bool:
        """A window is running or waiting."""
        with self._cv:
            return self._running or self._pending is not None

    @property
    def running(self) -> bool:
        """A window is being reconstructed right now."""
        with self._cv:
            return self._running

    @property
    def latest(self) -> Any:
        """The last successful snapshot (None before the first)."""
        return self._latest

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stats(self) -> dict:
        """``submitted, runs, failures, replaced, discarded_on_stop, last_duration`` (s), ``last_error`` (str), ``busy``."""
        with self._cv:
            return {**self._stats, "busy": self._running or self._pending is not None}

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing runs or waits; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._running and self._pending is None, timeout)

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Refuse new windows, drop a waiting one, let a running one finish, join; True when the thread ended."""
        with self._cv:
            self._stopping = True
            if self._pending is not None:
                self._pending = None
                self._stats["discarded_on_stop"] += 1
            self._cv.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -------------------------------------------------------------------------------- thread
    def _loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._stopping or self._pending is not None)
                if self._stopping:
                    self._cv.notify_all()
                    return
                frames, self._pending = self._pending, None
                self._running = True
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
                    self._latest = result
                else:
                    self._stats["failures"] += 1
                    self._stats["last_error"] = f"{type(error).__name__}: {error}"
            if error is None:
                self._call(self._on_result, result)
            else:
                self._call(self._on_error, error, frames)
            with self._cv:
                self._running = False
                self._cv.notify_all()

    def _call(self, fn: Callable[..., None] | None, *args: Any) -> None:
        if fn is None:
            if args and isinstance(args[0], Exception):
                log.error("reconstruction failed: %s: %s", type(args[0]).__name__, args[0])
            return
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a broken callback must not kill the thread
            log.exception("inference worker callback %s raised", getattr(fn, "__name__", fn))
