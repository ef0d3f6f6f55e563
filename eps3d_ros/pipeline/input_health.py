"""Is the input usable? Per camera and topic counts and rates, and one clear reason when frames arrive but none is used.

One :class:`InputHealth` per camera. The node reports every message it receives (:meth:`InputHealth.received`),
every synchronised frame (:meth:`synchronised`) and what became of it (:meth:`used`, :meth:`refused`,
:meth:`held`, :meth:`without_pose`, :meth:`no_transform`); :meth:`problems` then names what is wrong, by the
topic (and camera) a user must look at:

* colour images arrive but camera_info never does (a remap missing, an uncalibrated camera);
* ``use_depth: true`` and no depth image ever arrives (the node waits for depth);
* colour and camera_info (and depth) arrive but their stamps never match within ``sync_slop``;
* frames are synchronised but every one is refused (stale, from the future, out of order, bad data);
* frames are used but the transforms that do arrive never join their frame to the map frame (a camera
  with no TF at all is not a problem: its scenes are simply in the camera frame);
* frames were dropped after waiting for their transform while other cameras' frames had theirs (the transform
  is named: ``map`` → ``wrist_optical``);
* frames are used but ``every_n_frames`` is 0 and ``~/reconstruct`` is never called.

:class:`CamerasHealth` holds the cameras' ones: totals under the single camera's names (``input_used``,
``input_refused`` ...), each camera's under ``input_<camera>_...``, and the problems of all, each naming its
camera when there are several.

No ROS here: keys are ``rgb``, ``info``, ``depth`` with their resolved topic names given once.
Thread-safe (subscription callbacks and the diagnostics timer run on different threads).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable

__all__ = ["CamerasHealth", "InputHealth"]

RATE_WINDOW_S = 5.0  # rates are counted over this many seconds
GRACE_S = 3.0  # how long something may be missing before it is a problem


class InputHealth:
    """One camera's input. ``label``: how problems name the camera ("" when it is the only one)."""

    def __init__(self, topics: dict[str, str], use_depth: str = "auto", sync_slop: float = 0.05,
                 clock: Callable[[], float] = time.monotonic, label: str = "") -> None:
        self.topics = dict(topics)
        self.label = label
        self.use_depth = use_depth
        self.sync_slop = sync_slop
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._times: dict[str, deque[float]] = {k: deque() for k in (*self.topics, "synced", "used")}
        self._count: Counter[str] = Counter()
        self._last_stamp: dict[str, float] = {}
        self._refused: Counter[str] = Counter()
        self._last_refusal = ""
        self._no_pose: dict[str, int] = {}
        self._no_transform: dict[str, tuple[int, str]] = {}  # frame id -> (frames dropped, map frame)
        self._held = 0
        self._newest_frame_stamp: float | None = None
        self._logged: dict[str, float] = {}

    # --------------------------------------------------------------------------------- events
    def received(self, key: str, stamp: float) -> None:
        self._tick(key)
        with self._lock:
            self._last_stamp[key] = stamp

    def synchronised(self, what: str = "frame") -> None:
        """A matched set: ``"frame"`` goes on to be used (or held until it can be), anything else is a reason it
        was not."""
        self._tick("synced")
        if what != "frame":
            self.refused(what, f"frame not used: {what.replace('_', ' ')}")

    def held(self, count: int) -> None:
        """How many frames wait now (for the depth decision or their transform)."""
        with self._lock:
            self._held = int(count)

    def no_transform(self, frame_id: str, map_frame: str) -> None:
        """A frame in ``frame_id`` was dropped: its transform from ``map_frame`` did not come in time."""
        with self._lock:
            n, _ = self._no_transform.get(frame_id, (0, map_frame))
            self._no_transform[frame_id] = (n + 1, map_frame)
            self._refused["no_transform"] += 1
            self._last_refusal = f"no transform from '{map_frame}' to '{frame_id}'"

    def used(self, stamp: float) -> None:
        self._tick("used")
        with self._lock:
            self._newest_frame_stamp = stamp

    def refused(self, reason: str, message: str = "") -> None:
        with self._lock:
            self._refused[reason] += 1
            self._last_refusal = message or reason

    def without_pose(self, frame_id: str) -> None:
        with self._lock:
            self._no_pose[frame_id] = self._no_pose.get(frame_id, 0) + 1

    def with_pose(self, frame_id: str) -> None:
        with self._lock:
            self._no_pose.pop(frame_id, None)
            self._no_transform.pop(frame_id, None)

    def _tick(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            q = self._times.setdefault(key, deque())
            q.append(now)
            self._count[key] += 1
            while q and q[0] < now - RATE_WINDOW_S:
                q.popleft()

    # ------------------------------------------------------------------------------- reading
    def rates(self) -> dict[str, float]:
        """Messages per second over the last :data:`RATE_WINDOW_S` seconds, per key (and synced / used)."""
        now = self._clock()
        with self._lock:
            span = min(RATE_WINDOW_S, max(now - self._start, 1e-9))
            return {k: sum(1 for t in q if t >= now - RATE_WINDOW_S) / span for k, q in self._times.items()}

    def stats(self) -> dict:
        """For ``/diagnostics``: per topic received count and rate, synced / used counts and rates, refusals by
        reason, frames without a pose per frame id, and the age of the newest used frame's stamp."""
        rates = self.rates()
        with self._lock:
            out = {f"input_{k}_received": self._count[k] for k in self.topics}
            out.update({f"input_{k}_hz": round(rates.get(k, 0.0), 2) for k in self.topics})
            out.update({"input_synced": self._count["synced"], "input_synced_hz": round(rates.get("synced", 0.0), 2),
                        "input_used": self._count["used"], "input_used_hz": round(rates.get("used", 0.0), 2),
                        "input_refused": dict(self._refused), "input_without_pose": dict(self._no_pose),
                        "input_held": self._held})
            newest = self._newest_frame_stamp
        out["input_newest_frame_stamp"] = newest
        return out

    def problems(self, map_frame: str = "map", every_n_frames: int = 1, transforms_seen: bool = True
                 ) -> list[tuple[str, str]]:
        """``[(key, message)]`` of what keeps frames from being used now (key: a stable id to throttle by).
        ``transforms_seen``: whether any transform has arrived at all (else frames without a pose are expected)."""
        now = self._clock()
        rates = self.rates()
        with self._lock:
            recent = {k: bool(q) and q[-1] >= now - GRACE_S for k, q in self._times.items()}
            ever = dict(self._count)
            last = dict(self._last_stamp)
            refused = dict(self._refused)
            last_refusal = self._last_refusal
            no_pose = dict(self._no_pose)
            no_transform = dict(self._no_transform)
        running = now - self._start >= GRACE_S
        t = self.topics
        out: list[tuple[str, str]] = []
        if running and recent.get("rgb") and not recent.get("synced"):
            if not recent.get("info"):
                what = "never" if not ever.get("info") else f"not for {GRACE_S:g} s"
                out.append(("no_camera_info", f"colour images arrive on {t['rgb']} but camera_info on {t['info']} "
                                              f"{what}: no frame can be used without intrinsics (remap "
                                              "rgb/camera_info, or calibrate the camera)"))
            elif self.use_depth == "true" and "depth" in t and not recent.get("depth"):
                out.append(("no_depth", f"waiting for depth on {t['depth']} (pipeline.use_depth: true): no depth "
                                        f"image {'ever' if not ever.get('depth') else f'for {GRACE_S:g} s'}; set "
                                        "pipeline.use_depth to auto to work from colour alone"))
            else:
                keys = [k for k in ("info", "depth") if k in t and k in last and
                        (k != "depth" or self.use_depth == "true")]
                gaps = ", ".join(f"{t[k]} {last[k] - last.get('rgb', last[k]):+.3f} s" for k in keys)
                out.append(("no_sync", f"images on {t['rgb']} never match the other inputs within sync_slop "
                                       f"{self.sync_slop:g} s (latest stamps relative to the colour image: "
                                       f"{gaps or 'none'}): check the stamps, or raise pipeline.sync_slop"))
        rgb_hz, info_hz = rates.get("rgb", 0.0), rates.get("info", 0.0)
        if running and info_hz >= 1.0 and rgb_hz < 0.7 * info_hz:
            out.append(("rgb_loss", f"colour images on {t['rgb']} arrive at {rgb_hz:.1f} Hz but camera_info at "
                                    f"{info_hz:.1f} Hz: {1 - rgb_hz / info_hz:.0%} of the images are lost on the way "
                                    "(large images over best-effort QoS drop fragments: with a camera that publishes "
                                    "reliably, set input_qos to reliable)"))
        if running and recent.get("synced") and not recent.get("used") and refused:
            reasons = ", ".join(f"{r} {n}" for r, n in sorted(refused.items()))
            out.append(("all_refused", f"frames are synchronised but refused ({reasons}); last: {last_refusal}"))
        for frame_id, n in (no_pose.items() if transforms_seen else ()):
            out.append((f"no_pose:{frame_id}", f"{n} frame(s) in '{frame_id}' without a pose: no transform from "
                                               f"'{map_frame}' to '{frame_id}' at their stamps, so their scene stays "
                                               "in the camera frame (publish TF, or the camera_pose topic)"))
        for frame_id, (n, frame) in no_transform.items():
            out.append((f"no_transform:{frame_id}", f"{n} frame(s) in '{frame_id}' dropped: no transform from "
                                                    f"'{frame}' to '{frame_id}' came within input.tf_timeout of "
                                                    "their stamps, while other frames had theirs (publish that "
                                                    "transform; the other cameras go on)"))
        if running and every_n_frames == 0 and recent.get("used") and rates.get("used", 0) > 0:
            out.append(("no_windows", "frames are buffered but pipeline.every_n_frames is 0: nothing is "
                                      "reconstructed until ~/reconstruct is called"))
        if self.label:
            out = [(f"{self.label}:{key}", f"camera '{self.label}': {message}") for key, message in out]
        return out

    def log_problems(self, problems: list[tuple[str, str]], warn: Callable[[str], None], every_s: float = 30.0) -> None:
        """``warn`` each problem once, then again every ``every_s`` seconds while it lasts."""
        now = self._clock()
        for key, message in problems:
            if now - self._logged.get(key, -float("inf")) >= every_s:
                self._logged[key] = now
                warn(message)


class CamerasHealth:
    """The :class:`InputHealth` of every camera (created on first mention; the names as ``input.cameras`` gives
    them, "" for frames of an unnamed camera offered directly)."""

    def __init__(self, cameras: dict[str, dict[str, str]] | None = None, use_depth: dict[str, str] | None = None,
                 sync_slop: float = 0.05, clock: Callable[[], float] = time.monotonic) -> None:
        self._sync_slop, self._clock = sync_slop, clock
        self._lock = threading.Lock()
        self._logged: dict[str, float] = {}
        self._cameras: dict[str, InputHealth] = {}
        cameras = cameras or {}
        for name, topics in cameras.items():
            self._cameras[name] = InputHealth(topics, (use_depth or {}).get(name, "auto"), sync_slop, clock,
                                              label=name if len(cameras) > 1 else "")

    def camera(self, name: str) -> InputHealth:
        with self._lock:
            if name not in self._cameras:
                self._cameras[name] = InputHealth({}, "auto", self._sync_slop, self._clock, label=name)
            return self._cameras[name]

    @property
    def names(self) -> list[str]:
        with self._lock:
            return list(self._cameras)

    # the events of frames offered without a camera name (the CLI, tests) go to the unnamed camera
    def used(self, stamp: float, camera: str = "") -> None:
        self.camera(camera).used(stamp)

    def refused(self, reason: str, message: str = "", camera: str = "") -> None:
        self.camera(camera).refused(reason, message)

    def stats(self) -> dict:
        """Totals over the cameras under the single camera's names (counts summed, refusals merged, the newest
        stamp), and each camera's own values as ``input_<camera>_<name>`` when there are several."""
        with self._lock:
            cams = dict(self._cameras)
        per = {name: h.stats() for name, h in cams.items()}
        out: dict = {}
        for values in per.values():
            for key, v in values.items():
                if isinstance(v, dict):
                    merged = out.setdefault(key, {})
                    for k, n in v.items():
                        merged[k] = merged.get(k, 0) + n
                elif key == "input_newest_frame_stamp":
                    if v is not None:
                        out[key] = max(v, out.get(key) or v)
                    else:
                        out.setdefault(key, None)
                else:
                    out[key] = round(out.get(key, 0) + v, 2)
        named = [n for n in per if n]
        if len(per) > 1 or (named and named != ["camera"]):
            for name, values in per.items():
                out.update({f"input_{name or 'unnamed'}_{k[len('input_'):]}": v for k, v in values.items()})
        return out

    def problems(self, map_frame: str = "map", every_n_frames: int = 1, transforms_seen: bool = True
                 ) -> list[tuple[str, str]]:
        with self._lock:
            cams = list(self._cameras.values())
        out: list[tuple[str, str]] = []
        for h in cams:
            for key, message in h.problems(map_frame, every_n_frames, transforms_seen):
                if key.rsplit(":", 1)[-1] != "no_windows" or not any(k.endswith("no_windows") for k, _ in out):
                    out.append((key, message))
        return out

    def log_problems(self, problems: list[tuple[str, str]], warn: Callable[[str], None], every_s: float = 30.0) -> None:
        """``warn`` each problem once, then again every ``every_s`` seconds while it lasts."""
        now = self._clock()
        for key, message in problems:
            if now - self._logged.get(key, -float("inf")) >= every_s:
                self._logged[key] = now
                warn(message)
