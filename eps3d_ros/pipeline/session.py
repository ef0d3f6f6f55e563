"""A perception session without ROS: frames in, one persistent object map out.

    session = Session.from_model_dir("models/demo_tiny", **{"pipeline.window_size": 4})
    for frame in frames:                       # pipeline.frames.Frame: rgb, K, depth, camera-to-map pose
        session.offer(frame)                   # buffered; every pipeline.every_n_frames a window is queued
    session.wait_idle(60)                      # every queued window reconstructed and fused
    session.map.objects                        # [MapObject]: stable ids, labels, centroids in the map frame
    session.query("red mug", max_results=3)    # [MapMatch], from the map
    session.save_map("room.eps3d"); session.close()

What a session owns, and the rules it keeps:

* the **cameras' way in** (:attr:`inputs`, :class:`~eps3d_ros.pipeline.camera_inputs.CameraInputs`): per camera
  the rate limit, the depth decision (frames held while it is open, not dropped) and the wait for a transform;
  the node hands frames over with :meth:`take`, and they go on in each camera's order (:meth:`pump`);
* the **frame buffer**: frames are fitted to the network's size as they are offered (the intake, aspect
  kept), so it never holds camera resolution; several cameras' frames interleave in one buffer, and each window
  takes ``pipeline.window_size`` views of them (:func:`~eps3d_ros.frames.intake.select_window`);
* **one worker thread** with an ordered job queue: each window is reconstructed
  (``reconstructor.run(frames) -> SceneSnapshot``: the EPS3D :class:`~eps3d_ros.pipeline.Reconstructor`,
  or any object with that method, e.g. the oracle) and fused into the map; relabelling with a new
  vocabulary is a job queued after the windows already submitted, so it can never overwrite a newer
  result with an older relabelled one;
* the **object map** (:class:`~eps3d_ros.mapping.ObjectMap`): every window fused in the map frame, with
  stable ids; without metric poses it holds the latest window only (its update says so, the log once);
* the **input health** (:attr:`health`, :class:`~eps3d_ros.pipeline.input_health.CamerasHealth`): per camera
  what arrived, what was used, held or refused and why, frames without a pose or dropped for a missing
  transform; and the counters of :meth:`stats` (bad input, the last error, the time the listener took to
  publish, ``last_window_views``: how many views of each camera the last window had, e.g. ``head:2 wrist:2``);
* the **runtime configuration**: :meth:`update` swaps in a new config object (the one in use is never
  edited in place); settings outside :data:`~eps3d_ros.settings.tree.RUNTIME_SETTINGS` need a new
  session and are returned as pending;
* :meth:`reset` empties buffer, map and scene at once; a window that was running finishes but its
  result is dropped (counted as ``dropped_after_reset``), so an old scene never comes back.

``on_update(SessionUpdate)`` is called on the worker thread after each fused window, relabelling,
reset or map load; ``on_error(message)`` after a failed window. Both are never called after
:meth:`close` began. Thread-safe: frames may be offered from one thread while others query.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.map_file import load_map, save_map
from ..mapping import MapMatch, MapUpdate, ObjectMap
from ..panoptic.build import relabel_scene
from ..settings.dotted import get_dotted, set_dotted
from ..settings.tree import AUTO, RUNTIME_SETTINGS, Eps3dConfig, config_leaves
from .camera_inputs import CameraInputs
from .frame_buffer import AddResult, FrameBuffer
from .input_health import CamerasHealth
from ..frames.frame import Frame
from ..frames.intake import enlargement, prepare_frame, views_per_camera
from .reconstruct import Cancelled, SceneSnapshot
from .worker import InferenceWorker

__all__ = ["Session", "SessionUpdate", "ConfigChange"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class SessionUpdate:
    """What changed, for publishers: the map's state after one window, relabelling, reset or load."""

    kind: str  # "window" | "relabel" | "reset" | "load"
    map_update: MapUpdate | None  # None after a reset of an empty map
    snapshot: SceneSnapshot | None  # the latest window's snapshot (None after a reset or a load)
    timings: Mapping[str, float]  # seconds: the window's stages + "fusion"; empty otherwise


@dataclass(frozen=True)
class ConfigChange:
    applied: tuple[str, ...]  # settings now in use
    pending: tuple[str, ...]  # settings that need a new session (the node: a reconfigure)


class Session:
    """See the module docstring. ``reconstructor``: anything with ``run(frames) -> SceneSnapshot`` (and, for
    text queries and relabelling, a ``text_encoder``); a ``config`` attribute on it is kept in step."""

    def __init__(self, config: Eps3dConfig, reconstructor: Any,
                 on_update: Callable[[SessionUpdate], None] | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        if not callable(getattr(reconstructor, "run", None)):
            raise TypeError(f"reconstructor must have a run(frames) method, got {type(reconstructor).__name__}")
        self._config = _checked(copy.deepcopy(config))
        if not self._config.pipeline.image_height:
            box = getattr(reconstructor, "input_box", None)
            if not box:
                raise ValueError("pipeline.image_height/width are 0 and the reconstructor has no input_box: "
                                 "give the network size")
            self._config.pipeline.image_height, self._config.pipeline.image_width = box
        self.reconstructor = reconstructor
        self._on_update = on_update
        self._on_error = on_error
        self.buffer = FrameBuffer(self._config.pipeline)
        self._map = ObjectMap(self._config.map, map_frame=self._config.output.map_frame)
        self._lock = threading.Lock()  # fusion, reset, relabel and load take turns
        self._generation = 0  # bumped by reset: results of windows started before it are dropped
        self._snapshot: SceneSnapshot | None = None
        self._closing = False
        self._stats = {"windows": 0, "failures": 0, "dropped_after_reset": 0, "bad_input": 0, "last_error": "",
                       "last_fusion_s": 0.0, "publish_s": 0.0, "last_window_views": ""}
        self.inputs = CameraInputs(self._config)
        self._pump_lock = threading.Lock()  # frames leave the cameras' queues for the buffer in order
        self._lookup: Callable[[str, float], Any] | None = None
        self._transforms_seen: Callable[[], bool] = lambda: False
        self._now: Callable[[], float | None] = lambda: None
        self._last_note: dict[str, float] = {}
        self.last_offer: AddResult | None = None
        self._running_cancel = threading.Event()  # set to abandon the window being reconstructed
        self._worker = InferenceWorker(self._run_window, self._window_done, self._window_failed)

    @classmethod
    def from_model_dir(cls, path: str | Path, **overrides: Any) -> "Session":
        """A session on the model folder ``path`` (see :mod:`eps3d_ros.model.bundle`), with ``overrides`` as
        dotted settings (``**{"pipeline.window_size": 4}``) or per section (``pipeline={"window_size": 4}``)."""
        from .loading import load_reconstructor

        config = Eps3dConfig()
        config.model.weights = str(path)
        flat: dict[str, Any] = {}
        for key, value in overrides.items():
            if isinstance(value, Mapping):
                flat.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        set_dotted(config, flat)
        reconstructor = load_reconstructor(config)
        return cls(reconstructor.config, reconstructor)

    # ------------------------------------------------------------------------------------ reading
    @property
    def config(self) -> Eps3dConfig:
        """The configuration in use (do not edit it: pass a new one to :meth:`update`)."""
        return self._config

    @property
    def map(self) -> ObjectMap:
        return self._map

    @property
    def snapshot(self) -> SceneSnapshot | None:
        """The latest window's reconstruction (None before the first, and after a reset or a load)."""
        return self._snapshot

    @property
    def scale_known(self) -> bool:
        """Is the map metric? Always when it fuses windows in the map frame; else as its latest window."""
        if self._map.fused:
            return True
        snap = self._snapshot
        return bool(snap is not None and snap.scale_known)

    @property
    def text_encoder(self) -> Any:
        return getattr(self.reconstructor, "text_encoder", None)

    def query(self, text: str, max_results: int = 5, min_score: float = 0.0,
              min_relevance: float | None = None) -> list[MapMatch]:
        """Map objects ranked by relevance to ``text`` (PE3R global min-max over the map's objects) whose calibrated
        relevance reaches ``min_relevance`` (None: ``panoptic.min_relevance`` in force); empty: no object matches."""
        if min_relevance is None:
            min_relevance = self._config.panoptic.relevance_threshold
        return self._map.query(text, text_encoder=self.text_encoder, max_results=max_results, min_score=min_score,
                               min_relevance=min_relevance)

    def stats(self) -> dict[str, Any]:
        """For diagnostics: buffer, worker, map and session counters."""
        out = {f"buffer_{k}": v for k, v in self.buffer.stats().items()}
        out.update({f"worker_{k}": v for k, v in self._worker.stats().items()})
        out.update({f"map_{k}": v for k, v in self._map.stats().items()})
        out.update(self.inputs.stats())
        out.update(self._stats)
        return out

    @property
    def health(self) -> CamerasHealth:
        """The input health of every camera."""
        return self.inputs.health

    # ------------------------------------------------------------------------------------ frames
    def watch_inputs(self, topics: Mapping[str, Mapping[str, str]] | None = None,
                     lookup: Callable[[str, float], Any] | None = None,
                     transforms_seen: Callable[[], bool] | None = None,
                     now: Callable[[], float | None] | None = None) -> CameraInputs:
        """Start the cameras' inputs afresh (the node: on activate): ``topics`` {camera: {"rgb" | "info" | "depth":
        resolved name}} (default the settings' names); ``lookup(frame_id, stamp)``: the camera-to-map pose or None,
        asked again for frames waiting for their transform; ``transforms_seen()``: whether any transform has
        arrived; ``now()``: the current time on the stamps' clock (None while unknown). Returns the inputs."""
        self.inputs = CameraInputs(self._config, {k: dict(v) for k, v in (topics or {}).items()})
        self._lookup = lookup
        self._transforms_seen = transforms_seen or (lambda: False)
        self._now = now or (lambda: None)
        return self.inputs

    def take(self, camera: str, frame: Frame, held: bool = False) -> None:
        """A frame of ``camera`` that :meth:`CameraInput.decide <eps3d_ros.pipeline.camera_inputs.CameraInput.decide>`
        let through (``held``: while its depth decision is open); it goes on once nothing keeps it (:meth:`pump`)."""
        if self._closing:
            return
        if frame.camera != camera:
            frame = dataclasses.replace(frame, camera=camera)
        frame = prepare_frame(frame, (self._config.pipeline.image_height, self._config.pipeline.image_width))
        self.inputs[camera].put(frame, held)
        self.pump()

    def pump(self) -> int:
        """Offer every frame the cameras' queues release now (their depth decided, their pose found or given up);
        the node also calls it from a timer. Returns how many were offered."""
        with self._pump_lock:
            frames = self.inputs.ready(self._lookup, bool(self._transforms_seen()), self._config.output.map_frame)
            for f in frames:
                self.offer(f, self._now())
        return len(frames)

    def offer(self, frame: Frame, now: float | None = None) -> bool:
        """Fit ``frame`` to the network size, buffer it, and queue a window every ``every_n_frames``; False when it
        was refused (:attr:`last_offer` says why) or the session is closed. ``now``: the current time on the
        stamps' clock (the node's), to refuse stamps from the future."""
        if self._closing:
            return False
        health = self.health.camera(frame.camera)
        (health.without_pose if frame.pose is None else health.with_pose)(frame.frame_id)
        box = (self._config.pipeline.image_height, self._config.pipeline.image_width)
        try:
            prepared = prepare_frame(frame, box)
        except ValueError as e:  # too small to hold anything: refused, counted, said
            result = self.last_offer = AddResult(False, "too_small", str(e))
            health.refused(result.reason, result.message)
            self._note("buffer:too_small", result.message, logging.WARNING, every_s=5.0)
            return False
        factor = enlargement(frame.height, frame.width, prepared.height, prepared.width)
        if factor > 1.0:
            self._note("enlarged", f"frames of {frame.width}x{frame.height} are enlarged {factor:.1f}x to "
                                   f"{prepared.width}x{prepared.height} (WxH) for the network: no detail is gained, "
                                   "only memory and time (pipeline.image_height / image_width set the box)",
                       logging.WARNING, every_s=600.0)
        result = self.buffer.offer(prepared, now)
        self.last_offer = result
        if result.accepted:
            health.used(frame.stamp)
            self.inputs.note_pose(frame)
        else:
            health.refused(result.reason, result.message)
        if result.message:
            self._note(f"buffer:{result.reason}", result.message, logging.WARNING, every_s=5.0)
        if result.accepted and self.buffer.ready():
            self._worker.submit(self.buffer.select_window())
        return result.accepted

    def refuse_input(self, message: str, camera: str = "") -> None:
        """Input that could not become a frame (an unsupported encoding, a camera_info that does not fit the
        image ...): counted as ``bad_input``, kept as the last error, reported to the camera's input health."""
        self._stats["bad_input"] += 1
        self._stats["last_error"] = message
        self.health.camera(camera).refused("bad_input", message)

    def record_publish(self, seconds: float) -> None:
        """How long the listener took to publish the latest update (for diagnostics)."""
        self._stats["publish_s"] = float(seconds)

    def reconstruct_now(self) -> tuple[bool, str]:
        """Queue a window of the buffered frames now (``~/reconstruct``): ``(queued, message)``."""
        if self._closing:
            return False, "the session is closed"
        self.inputs.give_up_waiting_for_depth()  # a window now: frames held for the depth decision go without
        self.pump()
        if not len(self.buffer):
            return False, "no frames buffered yet"
        frames = self.buffer.select_window()
        self._worker.submit(frames)
        return True, f"reconstruction of {len(frames)} keyframes queued"

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued window is reconstructed and fused (and queued jobs done); False on timeout."""
        return self._worker.wait_idle(timeout)

    # ------------------------------------------------------------------------------- changing
    def reset(self) -> None:
        """Forget frames, map and scene now; a window still running is dropped when it finishes."""
        with self._lock:
            self._generation += 1
            self._running_cancel.set()  # the window being reconstructed is dropped anyway: stop it early
            self._worker.discard_waiting()
            self.buffer.reset()
            update = self._map.clear()
            self._snapshot = None
        log.info("session reset: frames, map and scene cleared")
        self._publish(SessionUpdate("reset", update, None, {}))

    def update(self, config: Eps3dConfig) -> ConfigChange:
        """Swap in ``config`` for what may change at runtime; return what was applied and what is pending.

        A new vocabulary (or stuff list, or unknown threshold) relabels the latest scene and the map on the
        worker thread, after the windows already queued."""
        new = copy.deepcopy(config)
        for name, auto in AUTO.items():  # left to the model folder: what it filled in stays
            if get_dotted(new, name) == auto:
                set_dotted(new, {name: get_dotted(self._config, name)})
        new = _checked(new)
        old_leaves, new_leaves = config_leaves(self._config), config_leaves(new)
        changed = {k for k in new_leaves if new_leaves[k] != old_leaves[k]}
        live = changed & RUNTIME_SETTINGS
        pending = changed - live
        if live:
            merged = copy.deepcopy(self._config)
            set_dotted(merged, {k: new_leaves[k] for k in live})
            _checked(merged)
            self._config = merged  # readers holding the old object keep a consistent one
            self.buffer.config = merged.pipeline
            if hasattr(self.reconstructor, "config"):
                self.reconstructor.config = merged
            if any(k.startswith("map.") for k in live):
                self._map.set_config(merged.map)
            if live & {"panoptic.vocabulary", "panoptic.stuff", "panoptic.unknown_threshold"}:
                self._worker.call(self._relabel)
        return ConfigChange(tuple(sorted(live)), tuple(sorted(pending)))

    def save_map(self, path: str | Path, info: dict[str, Any] | None = None, replace: str = "map") -> Path:
        """Write the map (a scene file with the map's state; see :mod:`eps3d_ros.io.map_file`); ``info``: what
        it was built from, for the file's header; ``replace``: which existing file may be replaced ("map": only a
        map file, "scene": any eps3d scene file; never another file)."""
        return save_map(path, self._map, info, replace)

    def load_map(self, path: str | Path) -> ObjectMap:
        """Replace the map with a saved one (same ids, labels, centroids); new windows fuse into it."""
        loaded = load_map(path, config=self._config.map, text_encoder=self.text_encoder)
        if loaded.map_frame != self._config.output.map_frame:
            raise ValueError(f"{path} is a map in '{loaded.map_frame}' but this session maps into "
                             f"'{self._config.output.map_frame}' (output.map_frame)")
        with self._lock:
            self._generation += 1  # a window running now belongs to the map that was replaced
            self._map = loaded
            self._snapshot = None
        log.info("map loaded from %s: %d objects", path, len(loaded.objects))
        self._publish(SessionUpdate("load", None, None, {}))
        return loaded

    def close(self, timeout: float | None = 10.0) -> bool:
        """Stop taking frames, drop queued work, abandon a running window (a reconstructor with ``run(frames,
        cancel)`` stops at its next network block or stage; another finishes, unpublished); True when the
        worker ended within ``timeout``."""
        if not self._closing:
            log.info("session closing: no more frames; queued windows dropped, a running one abandoned")
        self._closing = True
        self._running_cancel.set()
        return self._worker.stop(timeout)

    # ---------------------------------------------------------------------------- worker side
    def _run_window(self, frames: list[Frame]) -> tuple[int, SceneSnapshot, str]:
        with self._lock:
            generation = self._generation
            self._running_cancel = cancel = threading.Event()
            if self._closing:
                cancel.set()
        views = " ".join(f"{c}:{n}" for c, n in views_per_camera(frames).items())
        run = self.reconstructor.run
        if "cancel" in inspect.signature(run).parameters:
            return generation, run(frames, cancel=cancel), views
        return generation, run(frames), views

    def _window_done(self, result: tuple[int, SceneSnapshot, str]) -> None:
        generation, snap, views = result
        with self._lock:
            if self._closing or generation != self._generation:
                self._stats["dropped_after_reset"] += 1
                return
            t0 = time.perf_counter()
            update = self._map.integrate(snap)
            fusion = time.perf_counter() - t0
            self._snapshot = snap
            self._stats["windows"] += 1
            self._stats["last_fusion_s"] = fusion
            self._stats["last_window_views"] = views
        for note in update.notes:
            log.warning("%s", note)
        if snap.alignment.warning:
            self._note("alignment", snap.alignment.warning, logging.WARNING, every_s=60.0)  # also in diagnostics
        log.info("window of %d views (%s) at %.3f s: %d objects in '%s' (%s), map %d objects (+%d, %d updated, %d "
                 "merged, %d removed) in %.2f s + fusion %.3f s", len(snap.window_stamps), views, snap.stamp,
                 len(snap.scene.objects), snap.frame_id, "metric" if snap.scale_known else "scale unknown",
                 len(self._map.objects), len(update.added), len(update.updated), len(update.merged),
                 len(update.removed), snap.timings.get("total", float("nan")), fusion)
        self._publish(SessionUpdate("window", update, snap, {**snap.timings, "fusion": fusion}))

    def _window_failed(self, error: Exception, frames: list[Frame]) -> None:
        if isinstance(error, Cancelled):
            self._stats["dropped_after_reset"] += 1  # abandoned by reset() or close(): not a failure
            return
        message = f"reconstruction of {len(frames)} frames failed: {type(error).__name__}: {error}"
        self._stats["failures"] += 1
        self._stats["last_error"] = message
        log.error("%s", message)
        if self._on_error is not None and not self._closing:
            self._on_error(message)

    def _relabel(self) -> None:
        """The latest scene and the map under the configuration's vocabulary (on the worker thread)."""
        p = self._config.panoptic
        encoder = self.text_encoder
        if encoder is None:
            log.error("relabelling needs a text encoder: the reconstructor has none")
            return
        with self._lock:
            snap = self._snapshot
            if snap is not None:
                scene = relabel_scene(snap.scene, p.vocabulary, stuff=p.stuff, text_encoder=encoder)
                self._snapshot = snap = dataclasses.replace(snap, scene=scene)
            update = None
            if self._map.prototypes is not None:
                protos = encoder.prototypes(list(p.vocabulary)).float().cpu()
                update = self._map.relabel(p.vocabulary, p.stuff, protos)
        log.info("relabelled with vocabulary %s", list(p.vocabulary))
        self._publish(SessionUpdate("relabel", update, snap, {}))

    def _publish(self, update: SessionUpdate) -> None:
        if self._on_update is None or self._closing:
            return
        try:
            self._on_update(update)
        except Exception:  # noqa: BLE001 - a broken listener must not stop the session
            log.exception("session listener failed on a %s update", update.kind)

    def _note(self, key: str, message: str, level: int, every_s: float) -> None:
        """Log ``message`` at most every ``every_s`` seconds per ``key``."""
        now = time.monotonic()
        if now - self._last_note.get(key, -float("inf")) >= every_s:
            self._last_note[key] = now
            log.log(level, "%s", message)


def _checked(config: Eps3dConfig) -> Eps3dConfig:
    """Validate what a session uses (the model section belongs to whoever built the reconstructor)."""
    for part in (config.panoptic, config.input, config.pipeline, config.output, config.map):
        part.validate()
    return config
