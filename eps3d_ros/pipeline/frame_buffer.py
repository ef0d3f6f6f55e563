"""A bounded, thread-safe buffer of synchronized frames of one or several cameras, and the choice of windows.

Frames are kept in stamp order, whichever camera they come from: streams of several cameras may arrive
interleaved (each camera's frames in its own order) and hardware-synchronised cameras give frames with equal
stamps; both are accepted. Admission rules (each refusal or drop has a reason string the node can log, and is
counted):

* ``stale``: a frame older than ``newest - max_frame_age`` (the newest of any camera) is refused; ``aged_out``:
  buffered frames that fall behind when a newer frame arrives leave (the normal course of a stream);
* ``out_of_order``: a frame older than the last accepted one *of its camera* is refused (a camera's stamps go
  forward); ``duplicate``: the same stamp as its camera's last accepted one;
* ``future``: a frame stamped more than ``max_future_stamp`` seconds after ``now`` (the caller's clock,
  when it gives one) is refused — accepted, it would make every real frame after it "out of order";
* ``overflow``: when more than ``buffer_size`` frames, or more than ``max_buffer_mb`` of image data, are held
  (frames are held at the network's size, so this bounds big windows), the oldest frame of the camera that
  holds the most leaves: a fast camera never pushes a slow camera's frames out;
* ``size_change``: an image size different from its camera's previous frames (a camera reconfigured) is
  accepted and noted; cameras of different sizes are normal. A window of mixed sizes is brought to one network
  size by the intake (:mod:`eps3d_ros.frames.intake`), so nothing is dropped. Each frame keeps its own K;
* ``time_jump``: after ``time_jump_frames`` consecutive frames of one camera stamped ``max_frame_age`` before
  that camera's own last frame, the clock evidently went back (a looping bag, a restarted simulator): the
  buffer resets and takes the frame. ``~/reset`` (:meth:`~eps3d_ros.pipeline.session.Session.reset`) empties
  it by hand.

Windows: :meth:`FrameBuffer.select_window`, by the rules of :func:`~eps3d_ros.frames.intake.select_window`
(each camera's newest frame and keyframes by turns, ``window_size`` views in all).
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections import Counter
from dataclasses import dataclass

from ..settings.tree import PipelineConfig
from ..frames.frame import Frame
from ..frames.intake import select_window

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
        self._frames: list[tuple[float, int, Frame]] = []  # (stamp, arrival, frame), in stamp order
        self._arrival = itertools.count()
        self._lock = threading.Lock()
        self._dropped: Counter[str] = Counter()
        self._accepted = 0
        self._windows = 0
        self._since_window = 0
        self._stale_run: Counter[str] = Counter()  # per camera
        self._last: dict[str, float] = {}  # per camera: the last accepted stamp (survives drops; cleared by reset)
        self._size: dict[str, tuple[int, int]] = {}  # per camera: the size of its last accepted frame
        self._newest: float | None = None  # the newest stamp accepted, of any camera
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
            refused = self._refusal(frame, now)
            if isinstance(refused, AddResult):
                return refused
            reason, message = refused
            cam = frame.camera
            old = self._size.get(cam)
            if old is not None and old != frame.size and not reason:
                reason, message = "size_change", (f"image size{_of(cam)} changed from {old[0]}x{old[1]} to "
                                                  f"{frame.height}x{frame.width}: windows fit both to one network size")
            bisect.insort(self._frames, (frame.stamp, next(self._arrival), frame), key=lambda e: (e[0], e[1]))
            self._last[cam], self._size[cam] = frame.stamp, frame.size
            self._newest = frame.stamp if self._newest is None else max(self._newest, frame.stamp)
            self._accepted += 1
            self._since_window += 1
            self._bytes += _nbytes(frame)
            while self._frames and self._frames[0][0] < self._newest - cfg.max_frame_age:
                self._bytes -= _nbytes(self._frames.pop(0)[2])
                self._dropped["aged_out"] += 1
            while len(self._frames) > 1 and (len(self._frames) > cfg.buffer_size
                                             or self._bytes > cfg.max_buffer_mb * 2**20):
                self._bytes -= _nbytes(self._frames.pop(self._overflow_victim())[2])
                self._dropped["overflow"] += 1
            return AddResult(True, reason, message)

    def _refusal(self, frame: Frame, now: float | None) -> AddResult | tuple[str, str]:
        """A refusal, or ``(reason, message)`` of an accepted frame that reset the buffer (caller holds the lock)."""
        cfg = self.config
        cam, stamp = frame.camera, frame.stamp
        if now is not None and stamp > now + cfg.max_future_stamp:
            self._dropped["future"] += 1
            return AddResult(False, "future", f"frame{_of(cam)} at {stamp:.3f} s is {stamp - now:.3f} s ahead of the "
                             f"clock ({now:.3f} s), more than pipeline.max_future_stamp {cfg.max_future_stamp:g} s "
                             "(a wrong stamp, or use_sim_time not set?)")
        last, newest = self._last.get(cam), self._newest
        if last is not None and stamp < last - cfg.max_frame_age:  # its own stamps went back: a time jump?
            self._stale_run[cam] += 1
            if self.time_jump_frames and self._stale_run[cam] >= self.time_jump_frames:
                run = self._stale_run[cam]
                n = self._clear("time_jump")
                return "time_jump", (f"time{_of(cam)} went back from {last:.3f} s to {stamp:.3f} s ({run} frames in a "
                                     f"row): dropped {n} buffered frames")
            return self._stale(stamp, last, cam)
        self._stale_run[cam] = 0
        if newest is not None and stamp < newest - cfg.max_frame_age:
            return self._stale(stamp, newest, cam)
        if last is not None and stamp == last:
            self._dropped["duplicate"] += 1
            return AddResult(False, "duplicate", f"frame{_of(cam)} at {stamp:.3f} s has the same stamp as the last one")
        if last is not None and stamp < last:
            self._dropped["out_of_order"] += 1
            return AddResult(False, "out_of_order", f"frame{_of(cam)} at {stamp:.3f} s is older than the last "
                             f"accepted one ({last:.3f} s)")
        return "", ""

    def _stale(self, stamp: float, newest: float, cam: str) -> AddResult:
        self._dropped["stale"] += 1
        return AddResult(False, "stale", f"frame{_of(cam)} at {stamp:.3f} s is {newest - stamp:.3f} s older than the "
                         f"newest ({newest:.3f} s), more than max_frame_age {self.config.max_frame_age} s")

    def _overflow_victim(self) -> int:
        """Index of the oldest frame of the camera holding the most frames (caller holds the lock)."""
        counts = Counter(e[2].camera for e in self._frames)
        most = max(counts.values())
        return next(i for i, e in enumerate(self._frames) if counts[e[2].camera] == most)

    def _clear(self, reason: str) -> int:
        n = len(self._frames)
        self._frames.clear()
        self._bytes = 0
        self._dropped[reason] += n
        self._since_window = 0
        self._last.clear()
        self._size.clear()
        self._stale_run.clear()
        self._newest = None
        return n

    def reset(self) -> None:
        """Drop every frame (counted as ``reset``) and forget the last stamps (e.g. after a time jump)."""
        with self._lock:
            self._clear("reset")

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
        """Up to ``window_size`` (default ``config.window_size``) views, oldest → newest, chosen by
        :func:`~eps3d_ros.frames.intake.select_window`. Resets :attr:`frames_since_window`."""
        cfg = self.config
        v = cfg.window_size if window_size is None else int(window_size)
        if v < 1:
            raise ValueError(f"window_size must be >= 1, got {v}")
        with self._lock:
            if not self._frames:
                raise EmptyBufferError("no frames buffered: no synchronized image (and depth) received yet, "
                                       "or all were refused (see the buffer stats)")
            frames = [e[2] for e in self._frames]
            self._since_window = 0
            self._windows += 1
        return select_window(frames, v, cfg.keyframe_min_interval, cfg.keyframe_min_translation,
                             cfg.keyframe_min_rotation)

    # --------------------------------------------------------------------------------- views
    def frames(self) -> list[Frame]:
        """A copy of the buffered frames, oldest → newest."""
        with self._lock:
            return [e[2] for e in self._frames]

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def stats(self) -> dict:
        """``size``, ``capacity``, ``fill`` (0..1), ``accepted``, ``dropped`` {reason: n}, ``dropped_total``,
        ``frames_since_window``, ``windows``, ``newest_stamp``, ``cameras`` {camera: frames held}."""
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
                "newest_stamp": self._frames[-1][0] if self._frames else None,
                "cameras": dict(Counter(e[2].camera for e in self._frames)),
            }


def _of(camera: str) -> str:
    return f" of camera '{camera}'" if camera else ""


def _nbytes(frame: Frame) -> int:
    return frame.rgb.nbytes + (frame.depth.nbytes if frame.depth is not None else 0)
