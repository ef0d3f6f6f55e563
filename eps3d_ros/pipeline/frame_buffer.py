"""A bounded, thread-safe buffer of synchronized frames, and the choice of keyframe windows.

Admission rules (each refusal or drop has a reason string the node can log, and is counted):

* ``stale``: a frame older than ``newest - max_frame_age`` is refused; ``aged_out``: buffered frames that
  fall behind ``newest - max_frame_age`` when a newer frame arrives leave (the normal course of a stream);
* ``out_of_order``: a frame older than the last accepted one is refused (windows are built from a
  time-ordered buffer); ``duplicate``: same stamp as the last accepted one;
* ``future``: a frame stamped more than ``max_future_stamp`` seconds after ``now`` (the caller's clock,
  when it gives one) is refused — accepted, it would make every real frame after it "out of order";
* ``overflow``: the oldest frames leave when more than ``buffer_size`` are held, or more than
  ``max_buffer_mb`` of image data (frames are held at the network's size, so this bounds big windows);
* ``size_change``: an image size different from the buffered frames' (a camera reconfigured, or two
  cameras) is accepted and noted; a window of mixed sizes is brought to one network size by the
  intake (:mod:`eps3d_ros.frames.intake`), so nothing is dropped. Each frame keeps its own K;
* ``time_jump``: after ``time_jump_frames`` consecutive ``stale`` refusals the clock evidently went
  back (a looping bag, a restarted simulator): the buffer resets and takes the frame. ``~/reset``
  (:meth:`~eps3d_ros.pipeline.session.Session.reset`) empties it by hand.

Keyframes: :meth:`FrameBuffer.select_window`, by the rules of :func:`~eps3d_ros.frames.intake.select_keyframes`.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass

from ..settings.tree import PipelineConfig
from ..frames.frame import Frame
from ..frames.intake import select_keyframes

__all__ = ["AddResult", "EmptyBufferError", "FrameBuffer", "DROP_REASONS"]

DROP_REASONS = ("stale", "future", "out_of_order", "duplicate", "aged_out", "overflow", "size_change", "time_jump",
                "reset")


class EmptyBufferError(LookupError):
    """A window was requested but no frame is buffered."""


@dataclass(frozen=True)
class AddResult:
    accepted: bool
    reason: str = ""  # refusal reason, or what accepting it caused ("size_change", "time_jump"); "" = plain accept
    message: str = ""  # one log line

    def __bool__(self) -> bool:
        return self.accepted


class FrameBuffer:
    def __init__(self, config: PipelineConfig, time_jump_frames: int = 3) -> None:
        self.config = config.validate()
        self.time_jump_frames = int(time_jump_frames)  # 0 disables the automatic reset
        self._frames: deque[Frame] = deque()
        self._lock = threading.Lock()
        self._dropped: Counter[str] = Counter()
        self._accepted = 0
        self._windows = 0
        self._since_window = 0
        self._stale_run = 0
        self._last_stamp: float | None = None  # survives overflow/staleness drops; cleared by reset
        self._bytes = 0  # image data held

    # ------------------------------------------------------------------------------ admission
    def add(self, frame: Frame) -> bool:
        """Buffer ``frame``; False when refused (see :meth:`offer` for the reason)."""
        return self.offer(frame).accepted

    def offer(self, frame: Frame, now: float | None = None) -> AddResult:
        """Buffer ``frame`` and say what happened; ``now``: the current time on the stamps' clock, if known."""
        if not isinstance(frame, Frame):
            raise TypeError(f"expected a Frame, got {type(frame).__name__}")
        cfg = self.config
        with self._lock:
            reason, message = "", ""
            if now is not None and frame.stamp > now + cfg.max_future_stamp:
                self._dropped["future"] += 1
                return AddResult(False, "future", f"frame at {frame.stamp:.3f} s is {frame.stamp - now:.3f} s ahead "
                                 f"of the clock ({now:.3f} s), more than pipeline.max_future_stamp "
                                 f"{cfg.max_future_stamp:g} s (a wrong stamp, or use_sim_time not set?)")
            last = self._last_stamp
            if last is not None and frame.stamp < last - cfg.max_frame_age:
                self._stale_run += 1
                if not (self.time_jump_frames and self._stale_run >= self.time_jump_frames):
                    self._dropped["stale"] += 1
                    return AddResult(False, "stale", f"frame at {frame.stamp:.3f} s is {last - frame.stamp:.3f} s older "
                                     f"than the newest ({last:.3f} s), more than max_frame_age {cfg.max_frame_age} s")
                n = self._clear("time_jump")
                reason, message = "time_jump", (f"time went back from {last:.3f} s to {frame.stamp:.3f} s "
                                                f"({self._stale_run} frames in a row): dropped {n} buffered frames")
                last = None
            elif last is not None and frame.stamp == last:
                self._stale_run = 0
                self._dropped["duplicate"] += 1
                return AddResult(False, "duplicate", f"frame at {frame.stamp:.3f} s has the same stamp as the last one")
            elif last is not None and frame.stamp < last:
                self._stale_run = 0
                self._dropped["out_of_order"] += 1
                return AddResult(False, "out_of_order", f"frame at {frame.stamp:.3f} s is older than the last "
                                 f"accepted one ({last:.3f} s)")
            self._stale_run = 0
            if self._frames and self._frames[-1].size != frame.size and not reason:
                old = self._frames[-1].size
                reason, message = "size_change", (f"image size changed from {old[0]}x{old[1]} to "
                                                  f"{frame.height}x{frame.width}: windows fit both to one network size")
            self._frames.append(frame)
            self._last_stamp = frame.stamp
            self._accepted += 1
            self._since_window += 1
            while self._frames and self._frames[0].stamp < frame.stamp - cfg.max_frame_age:
                self._bytes -= _nbytes(self._frames.popleft())
                self._dropped["aged_out"] += 1
            self._bytes += _nbytes(frame)
            while len(self._frames) > 1 and (len(self._frames) > cfg.buffer_size
                                             or self._bytes > cfg.max_buffer_mb * 2**20):
                self._bytes -= _nbytes(self._frames.popleft())
                self._dropped["overflow"] += 1
            return AddResult(True, reason, message)

    def _clear(self, reason: str) -> int:
        n = len(self._frames)
        self._frames.clear()
        self._bytes = 0
        self._dropped[reason] += n
        self._since_window = 0
        self._last_stamp = None
        return n

    def reset(self) -> None:
        """Drop every frame (counted as ``reset``) and forget the last stamp (e.g. after a time jump)."""
        with self._lock:
            self._clear("reset")
            self._stale_run = 0

    # ------------------------------------------------------------------------------- windows
    @property
    def frames_since_window(self) -> int:
        """Frames accepted since the last :meth:`select_window`."""
        with self._lock:
            return self._since_window

    def ready(self) -> bool:
        """True when ``every_n_frames`` (> 0) frames arrived since the last window and one is buffered."""
        n = self.config.every_n_frames
        with self._lock:
            return n > 0 and bool(self._frames) and self._since_window >= n

    def select_window(self, window_size: int | None = None) -> list[Frame]:
        """Up to ``window_size`` (default ``config.window_size``) keyframes, oldest → newest, chosen by
        :func:`~eps3d_ros.frames.intake.select_keyframes`. Resets :attr:`frames_since_window`."""
        cfg = self.config
        v = cfg.window_size if window_size is None else int(window_size)
        if v < 1:
            raise ValueError(f"window_size must be >= 1, got {v}")
        with self._lock:
            if not self._frames:
                raise EmptyBufferError("no frames buffered: no synchronized image (and depth) received yet, "
                                       "or all were refused (see the buffer stats)")
            frames = list(self._frames)
            self._since_window = 0
            self._windows += 1
        return select_keyframes(frames, v, cfg.keyframe_min_interval, cfg.keyframe_min_translation,
                                cfg.keyframe_min_rotation)

    # --------------------------------------------------------------------------------- views
    def frames(self) -> list[Frame]:
        """A copy of the buffered frames, oldest → newest."""
        with self._lock:
            return list(self._frames)

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def stats(self) -> dict:
        """``size``, ``capacity``, ``fill`` (0..1), ``accepted``, ``dropped`` {reason: n}, ``dropped_total``,
        ``frames_since_window``, ``windows``, ``newest_stamp``."""
        with self._lock:
            return {
                "size": len(self._frames),
                "capacity": self.config.buffer_size,
                "fill": len(self._frames) / self.config.buffer_size,
                "bytes": self._bytes,
                "accepted": self._accepted,
                "dropped": {r: int(self._dropped[r]) for r in DROP_REASONS},
                "dropped_total": int(sum(self._dropped.values())),
                "frames_since_window": self._since_window,
                "windows": self._windows,
                "newest_stamp": self._frames[-1].stamp if self._frames else None,
            }


def _nbytes(frame: Frame) -> int:
    return frame.rgb.nbytes + (frame.depth.nbytes if frame.depth is not None else 0)
