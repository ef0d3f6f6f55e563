"""The object map: everything the robot has seen, fused across windows, with stable ids.

    m = ObjectMap(MapConfig(), map_frame="map")
    update = m.integrate(snapshot)          # one SceneSnapshot per window
    m.objects                                # [MapObject], sorted by id
    m.query("red mug")                       # [MapMatch], PE3R global min-max over map objects

One window (``integrate``), when it is metric in the map frame (``snapshot.scale_known`` and
``snapshot.frame_id == map_frame``) and ``config.enabled``:

1. *detections*: the window's scene objects, voxelised (:mod:`.detections`);
2. *stuff*: each stuff detection is fused into the map object of its class (one per class, created
   with a new id the first time the class is seen);
3. *things*: optimal one-to-one association of thing detections with map things (:mod:`.association`);
   matched → fused (:mod:`.fusion`), unmatched → new things with new ids;
4. *forgetting*: every map thing not matched in this window whose place the window sees (in view, in
   range, not occluded by what the window's depth shows, and large enough in the images for a detection
   to be expected: :mod:`.visibility`) gets ``misses += 1``; a matched one gets ``misses = 0``; a thing
   reaching ``misses >= remove_after_misses`` is removed (it was moved or taken away). A thing out of
   view, out of range, occluded or too small in the images is untouched: never removed for not being seen;
5. *merging*: map things with the same label that overlap by ``merge_overlap`` or more (at least one
   of them changed in this window) become one; the older id (earlier ``first_seen``, then smaller id)
   survives; repeated until no pair is left;
6. *bounds*: over ``max_objects`` things, the least observed go first, then the longest unseen
   (smallest ``last_seen``), then the newest (largest id).

Otherwise (no metric map-frame pose, or ``enabled`` False) fusion across windows is impossible: the
map holds the latest window only (its objects replace the map's, with new ids) and the update says
``fused=False`` (``metric=False`` when the poses were the reason), with a note the first time — except
that a map already fused from metric windows is never replaced by a window without a metric pose (TF
missing for a moment is no evidence about the room): that window is skipped (``metric=False``,
``fused=True``, a note the first time in a row).

Ids come from one counter: never reused, also after removal, merging, clear() and save/load.
Thread safety: one writer at a time (a lock); readers (``objects``, ``query``, ``stats``) take the
published state, a new immutable view per update, without waiting.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from .association import KeyCache, associate
from .config import MapConfig
from .detections import Detection, window_detections
from .fusion import fuse_detections, merge_overlapping, new_object, refit
from .map_object import MapObject
from .map_scene import map_scene
from .relabel import relabel_objects
from .query import query_vector, rank
from .results import MapMatch, MapUpdate, MapView
from .visibility import seen_places

DEFAULT_LOGIT_SCALE = 1 / 0.07  # CLIP's; used when the text encoder does not say


class ObjectMap:
    """A persistent object map in ``map_frame`` (see the module docstring for the rules)."""

    def __init__(self, config: MapConfig | None = None, map_frame: str = "map") -> None:
        if not isinstance(map_frame, str) or not map_frame:
            raise ValueError(f"map_frame must be a non-empty frame name, got {map_frame!r}")
        self.map_frame = map_frame
        self._config = dataclasses.replace(config or MapConfig()).validate()  # a private copy
        self._lock = threading.RLock()
        self._next_id = 1
        self._vocabulary: tuple[str, ...] = ()
        self._stuff: frozenset[str] = frozenset()
        self._prototypes: torch.Tensor | None = None
        self._text_encoder: Any = None
        self._logit_scale = DEFAULT_LOGIT_SCALE
        self._reset_content()

    def _reset_content(self) -> None:
        self._objects: dict[int, MapObject] = {}
        self._windows = 0
        self._frame_id = self.map_frame
        self._fused_mode: bool | None = None  # None until the first window
        self._cameras: Any = None  # the latest window's views (without depth), for the map file
        self._stamp = math.nan
        self._keys = KeyCache()
        self._noted: set[str] = set()
        view = getattr(self, "_view", None)
        self._publish(0 if view is None else view.version + 1)

    def _publish(self, version: int) -> None:
        """Make the current state what readers see (one attribute assignment: atomic for readers)."""
        objs = tuple(self._objects[k] for k in sorted(self._objects))
        emb = np.stack([o.embedding for o in objs]).astype(np.float32) if objs else np.zeros((0, 0), np.float32)
        emb.setflags(write=False)
        self._keys.prune(objs)
        aux = emb.nbytes + self._keys.nbytes
        if self._cameras is not None:
            aux += sum(a.nbytes for a in (self._cameras.extrinsics, self._cameras.intrinsics, self._cameras.stamps)
                       if a is not None)
        if self._prototypes is not None:
            aux += self._prototypes.numel() * self._prototypes.element_size()
        self._view = MapView(version, objs, emb, self._vocabulary, self._stuff, self._prototypes, self._text_encoder,
                           self._logit_scale, self._frame_id, self._fused_mode is not False, self._windows,
                           self._stamp, self._next_id, self._cameras, int(aux))

    # ----------------------------------------------------------------------------- reading
    @property
    def objects(self) -> list[MapObject]:
        """The map objects sorted by id (a new list; the objects are immutable)."""
        return list(self._view.objects)

    @property
    def version(self) -> int:
        return self._view.version

    @property
    def config(self) -> MapConfig:
        return dataclasses.replace(self._config)

    @property
    def frame_id(self) -> str:
        """The frame of the objects: ``map_frame``, or the latest window's frame while the map is not fused."""
        return self._view.frame_id

    @property
    def fused(self) -> bool:
        """True while the map fuses windows in ``map_frame`` (False: it holds the latest window only)."""
        return self._view.fused

    @property
    def stamp(self) -> float:
        """Stamp (s) of the latest window integrated (NaN before the first)."""
        return self._view.stamp

    @property
    def cameras(self) -> Any:
        """The latest window's cameras (extrinsics, intrinsics, stamps; no depth), in ``frame_id``."""
        return self._view.cameras

    @property
    def vocabulary(self) -> tuple[str, ...]:
        return self._view.vocabulary

    @property
    def stuff(self) -> frozenset[str]:
        return self._view.stuff

    @property
    def prototypes(self) -> torch.Tensor | None:
        """``[K, D]`` unit text embeddings of the vocabulary (None before the first window)."""
        return self._view.prototypes

    @property
    def text_encoder(self) -> Any:
        """The latest window's text encoder (used by text queries)."""
        return self._view.text_encoder

    @property
    def logit_scale(self) -> float:
        return self._view.logit_scale

    @property
    def next_id(self) -> int:
        """The id the next new object will get (ids are never reused)."""
        return self._view.next_id

    def object_by_id(self, object_id: int) -> MapObject:
        for o in self._view.objects:
            if o.id == object_id:
                return o
        raise KeyError(f"no map object with id {object_id}")

    def stats(self) -> dict[str, Any]:
        """Counts and memory of the published state: objects, things, stuff classes, points, bytes (numpy and
        torch data held: points, colours, weights, embeddings, geometry, query matrix, caches, cameras), windows."""
        v = self._view
        things = sum(o.is_thing for o in v.objects)
        return {"objects": len(v.objects), "things": things, "stuff_classes": len(v.objects) - things,
                "points": int(sum(o.point_count for o in v.objects)),
                "bytes": int(sum(o.nbytes for o in v.objects) + v.aux_bytes), "windows": v.windows,
                "next_id": v.next_id, "version": v.version, "frame_id": v.frame_id, "fused": v.fused}

    # ---------------------------------------------------------------------------- queries
    def query(self, text_or_embedding: str | torch.Tensor | np.ndarray, text_encoder: Any = None,
              max_results: int = 5, min_score: float = 0.0, min_relevance: float = 0.0) -> list[MapMatch]:
        """Map objects ranked by relevance: cosine with the query, min-max normalised over all map objects (PE3R),
        then ``score >= min_score`` and calibrated ``relevance >= min_relevance`` (:mod:`eps3d_ros.panoptic.relevance`;
        0 keeps every object); ``text_encoder`` (or the one of the latest window) embeds a text query."""
        view = self._view
        encoder = text_encoder or view.text_encoder
        t = query_vector(text_or_embedding, encoder)
        text = text_or_embedding.strip() if isinstance(text_or_embedding, str) else None
        return rank(view.objects, view.embeddings, t, max_results, min_score, min_relevance, text, view.vocabulary,
                    encoder, view.prototypes, view.logit_scale)

    def to_scene(self, text_encoder: Any = None):
        """The map as a panoptic :class:`~eps3d_ros.panoptic.Scene` (see :mod:`.map_scene`); the same ids."""
        v = self._view
        if v.prototypes is None:
            raise ValueError("the map has not integrated any window yet: nothing to make a scene of")
        return map_scene(v.objects, v.vocabulary, v.stuff, v.prototypes, text_encoder or v.text_encoder,
                         {"frame_id": v.frame_id, "stamp": v.stamp, "map": True, "windows": v.windows,
                          "fused": v.fused})

    # --------------------------------------------------------------------------- changing
    def set_config(self, config: MapConfig) -> MapUpdate:
        """Swap in a new configuration (validated; a private copy). Point budgets, voxel sizes and
        ``max_objects`` apply at once; association, forgetting and merging rules from the next window."""
        config = dataclasses.replace(config).validate()
        with self._lock:
            self._config = config
            t0 = time.perf_counter()
            changed = []
            for k, o in list(self._objects.items()):
                new = refit(o, config)
                if new is not o:
                    self._objects[k] = new
                    changed.append(k)
            dropped = self._enforce_max_objects()
            return self._finish(updated=changed, removed=dropped, timing={"total": time.perf_counter() - t0})

    def clear(self) -> MapUpdate:
        """Empty the map (ids keep counting; vocabulary and text encoder are kept)."""
        with self._lock:
            removed = sorted(self._objects)
            self._reset_content()
            return self._finish(removed=removed)

    def relabel(self, vocabulary: Sequence[str], stuff: Sequence[str], prototypes: torch.Tensor | np.ndarray,
                logit_scale: float | None = None) -> MapUpdate:
        """Labels under a new vocabulary from the fused embeddings, no network (see :mod:`.relabel`).

        ``prototypes [K, D]``: unit text embeddings of ``vocabulary`` in the map's text space."""
        vocab = tuple(str(v).strip() for v in vocabulary)
        if not vocab or any(not v for v in vocab) or len(set(vocab)) != len(vocab):
            raise ValueError(f"vocabulary must be non-empty, without empty or duplicate names: {list(vocabulary)}")
        protos = torch.as_tensor(np.asarray(prototypes) if not isinstance(prototypes, torch.Tensor) else prototypes
                                 ).detach().float().cpu()
        if protos.dim() != 2 or protos.shape[0] != len(vocab):
            raise ValueError(f"prototypes must be [{len(vocab)}, D] (one per class), got {list(protos.shape)}")
        with self._lock:
            t0 = time.perf_counter()
            update = self._relabel(vocab, frozenset(s.strip() for s in stuff), protos, logit_scale)
            return self._finish(**update, timing={"total": time.perf_counter() - t0})

    def integrate(self, snapshot: Any) -> MapUpdate:
        """Fuse one window (a :class:`~eps3d_ros.pipeline.SceneSnapshot`) into the map (module docstring)."""
        for name in ("scene", "frame_id", "stamp", "scale_known"):
            if not hasattr(snapshot, name):
                raise TypeError(f"integrate() takes a SceneSnapshot; {type(snapshot).__name__} has no {name!r}")
        scene = snapshot.scene
        stamp = float(snapshot.stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"snapshot stamp must be a finite number of seconds, got {snapshot.stamp}")
        with self._lock:
            t = {"start": time.perf_counter()}
            notes: list[str] = []
            cfg = self._config
            metric = bool(snapshot.scale_known) and snapshot.frame_id == self.map_frame
            if not metric and cfg.enabled and self._fused_mode and self._objects:
                # a fused map stays: one window without a metric pose is no evidence about the room
                self._note("skipped", f"map: a window in {snapshot.frame_id!r} "
                                      f"({'metric' if snapshot.scale_known else 'scale unknown'}) cannot be put in "
                                      f"{self.map_frame!r}: not fused, the map keeps its {len(self._objects)} objects",
                           notes)
                return self._finish(metric=False, fused=True, notes=notes, stamp=stamp,
                                    timing={"total": time.perf_counter() - t["start"]})
            self._noted.discard("skipped")
            dets = window_detections(scene, cfg)  # first: bad input fails before the map changes
            relabelled = self._adopt_vocabulary(scene, notes)
            t["detections"] = time.perf_counter()
            if metric and cfg.enabled:
                changes = self._fuse_window(dets, snapshot, stamp, notes, t)
            else:
                changes = self._replace_with_window(dets, snapshot, stamp, metric, notes)
            if relabelled:  # the map was relabelled to the window's vocabulary before fusing
                changes["updated"] = set(changes.get("updated", ())) | set(relabelled["updated"])
                changes["merged"] = {**relabelled["merged"], **changes.get("merged", {})}
            self._windows += 1
            self._stamp = stamp
            cams = getattr(snapshot, "cameras", None)
            self._cameras = None if cams is None else dataclasses.replace(cams, depth=None)  # depth: not kept
            end = time.perf_counter()
            stages, prev = {}, t["start"]
            for k in ("detections", "association", "fusion", "visibility", "merging", "bounds"):
                if k in t:
                    stages[k] = t[k] - prev
                    prev = t[k]
            stages["total"] = end - t["start"]
            return self._finish(**changes, metric=metric, fused=metric and cfg.enabled, notes=notes, timing=stages,
                                stamp=stamp)

    # -------------------------------------------------------------------------- internals
    def _new_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def _note(self, kind: str, text: str, notes: list[str]) -> None:
        if kind not in self._noted:
            self._noted.add(kind)
            notes.append(text)

    def _adopt_vocabulary(self, scene: Any, notes: list[str]) -> dict[str, Any]:
        """Take the window's vocabulary; relabel the map first when it differs (the changes, else {})."""
        vocab, stuff = tuple(scene.vocabulary), frozenset(scene.stuff)
        protos = scene.prototypes.detach().float().cpu()
        if self._objects and protos.shape[1] != self._prototypes.shape[1]:
            raise ValueError(f"the window's text space has {protos.shape[1]} dimensions but the map's has "
                             f"{self._prototypes.shape[1]}: use the same text encoder, or clear() the map first")
        enc = getattr(scene, "text_encoder", None)
        if enc is not None:
            self._text_encoder = enc
            self._logit_scale = float(getattr(getattr(enc, "config", None), "logit_scale", DEFAULT_LOGIT_SCALE))
        if self._prototypes is None or not self._objects:
            self._vocabulary, self._stuff, self._prototypes = vocab, stuff, protos
            return {}
        if vocab != self._vocabulary or stuff != self._stuff:
            notes.append(f"map: the window's vocabulary differs from the map's: map objects relabelled to "
                         f"{list(vocab)} (stuff {sorted(stuff)}) from their fused embeddings")
            return self._relabel(vocab, stuff, protos, None)
        self._prototypes = protos  # same classes: the newest prototypes (identical for the same encoder)
        return {}

    def _relabel(self, vocab: tuple[str, ...], stuff: frozenset[str], protos: torch.Tensor,
                 logit_scale: float | None) -> dict[str, Any]:
        if self._prototypes is not None and protos.shape[1] != self._prototypes.shape[1]:
            raise ValueError(f"prototypes have {protos.shape[1]} dimensions but the map's text space has "
                             f"{self._prototypes.shape[1]}")
        scale = self._logit_scale if logit_scale is None else float(logit_scale)
        objs, merged, changed = relabel_objects(self._objects, vocab, stuff, protos, scale, self._config)
        self._objects = objs
        self._vocabulary, self._stuff, self._prototypes = vocab, stuff, protos
        return {"updated": changed, "merged": merged}

    def _replace_with_window(self, dets: list[Detection], snapshot: Any, stamp: float, metric: bool,
                             notes: list[str]) -> dict[str, Any]:
        """No fusion possible (or wanted): the map becomes this window, with new ids."""
        if not self._config.enabled:
            why = "map.enabled is false"
        elif not snapshot.scale_known:
            why = f"the window's scale is unknown (alignment {getattr(snapshot.alignment, 'method', '?')})"
        else:
            why = f"the window is in frame {snapshot.frame_id!r}, not the map frame {self.map_frame!r} (no TF pose)"
        if self._fused_mode is not False:
            self._noted.discard("fused")
            self._note("latest", f"map: {why}: windows cannot be fused, the map holds the latest window only "
                                 "(object ids are new each window)", notes)
        self._fused_mode = False
        removed = sorted(self._objects)
        self._objects = {}
        for d in dets:
            o = new_object(d, self._new_id(), stamp, self._config)
            self._objects[o.id] = o
        self._frame_id = snapshot.frame_id
        return {"added": sorted(self._objects), "removed": removed}

    def _fuse_window(self, dets: list[Detection], snapshot: Any, stamp: float, notes: list[str],
                     t: dict[str, float]) -> dict[str, Any]:
        cfg = self._config
        removed: list[int] = []
        if self._fused_mode is False:
            removed = sorted(self._objects)  # they are the last unfused window, maybe in another frame
            self._objects = {}
            self._noted.discard("latest")
            self._note("fused", f"map: metric poses in {self.map_frame!r} again: fusing windows from now on", notes)
        self._fused_mode = True
        self._frame_id = self.map_frame

        # association: stuff by class, things by optimal assignment
        stuff_by_label = {o.label: o for o in self._objects.values() if not o.is_thing}
        things = [o for o in self._objects.values() if o.is_thing]
        pairs: list[tuple[MapObject, Detection]] = []
        fresh: list[Detection] = []
        for d in dets:
            if not d.is_thing:
                if d.label in stuff_by_label:
                    pairs.append((stuff_by_label[d.label], d))
                else:
                    fresh.append(d)
        matches = associate(dets, things, cfg, self._keys)
        matched_det = {m.detection for m in matches}
        by_id = {o.id: o for o in things}
        pairs += [(by_id[m.object_id], dets[m.detection]) for m in matches]
        fresh += [d for k, d in enumerate(dets) if d.is_thing and k not in matched_det]
        t["association"] = time.perf_counter()

        updated = set()
        for o in fuse_detections(pairs, stamp, cfg):
            self._objects[o.id] = o
            updated.add(o.id)
        added = set()
        for d in fresh:
            o = new_object(d, self._new_id(), stamp, cfg)
            self._objects[o.id] = o
            added.add(o.id)
        t["fusion"] = time.perf_counter()

        # forgetting: seen but not detected
        cams = getattr(snapshot, "cameras", None)
        if cams is None:
            self._note("no_cameras", "map: windows without cameras: objects that were moved away cannot be "
                                     "forgotten (no evidence that their place is seen)", notes)
        candidates = [o for o in self._objects.values() if o.is_thing and o.id not in updated and o.id not in added]
        seen = seen_places(candidates, cams, cfg, np.asarray(snapshot.scene.means)) if cams is not None \
            else np.zeros(len(candidates), bool)
        missed = []
        for o, s in zip(candidates, seen):
            if not s:
                continue
            if o.misses + 1 >= cfg.remove_after_misses:
                del self._objects[o.id]
                removed.append(o.id)
            else:
                self._objects[o.id] = dataclasses.replace(o, misses=o.misses + 1)
                missed.append(o.id)
        t["visibility"] = time.perf_counter()

        merged = merge_overlapping(self._objects, updated | added, cfg, self._keys)
        t["merging"] = time.perf_counter()
        removed += self._enforce_max_objects()
        t["bounds"] = time.perf_counter()
        return {"added": added, "updated": updated, "merged": merged, "removed": removed, "missed": missed}

    def _enforce_max_objects(self) -> list[int]:
        things = [o for o in self._objects.values() if o.is_thing]
        excess = len(things) - self._config.max_objects
        if excess <= 0:
            return []
        things.sort(key=lambda o: (o.observations, o.last_seen, -o.id))
        drop = [o.id for o in things[:excess]]
        for k in drop:
            del self._objects[k]
        return drop

    def _finish(self, added=(), updated=(), merged=None, removed=(), missed=(), metric: bool = True,
                fused: bool = True, notes=(), timing=None, stamp: float = math.nan) -> MapUpdate:
        """Publish a new view and describe the update (ids that came and went within it are left out)."""
        merged = dict(merged or {})
        live = set(self._objects)
        added_s = set(added) & live
        gone = set(removed) | set(merged)
        born_and_gone = set(added) - live
        merged = {k: v for k, v in merged.items() if k not in born_and_gone}
        removed_l = sorted(set(removed) - born_and_gone - set(merged))
        updated_s = (set(updated) | set(merged.values())) & live - added_s
        objs = tuple(self._objects[k] for k in sorted(self._objects))
        changed = bool(added_s or updated_s or merged or removed_l or missed or gone)
        version = self._view.version + 1 if changed or objs != self._view.objects else self._view.version
        self._publish(version)
        return MapUpdate(added=tuple(sorted(added_s)), updated=tuple(sorted(updated_s)),
                         merged=MappingProxyType(dict(sorted(merged.items()))), removed=tuple(removed_l),
                         missed=tuple(sorted(set(missed) & live)), metric=metric, fused=fused, notes=tuple(notes),
                         timing=MappingProxyType(dict(timing or {})), version=version, stamp=stamp)

    # ------------------------------------------------------------------------- file state
    def _restore(self, objects: Sequence[MapObject], *, next_id: int, windows: int, frame_id: str, fused: bool,
                 stamp: float, vocabulary: Sequence[str], stuff: Sequence[str], prototypes: torch.Tensor,
                 text_encoder: Any, cameras: Any, logit_scale: float) -> None:
        """Load a saved state (used by :func:`~eps3d_ros.io.map_file.load_map`)."""
        with self._lock:
            self._reset_content()
            ids = [o.id for o in objects]
            if len(set(ids)) != len(ids):
                raise ValueError("map state has duplicate object ids")
            if ids and next_id <= max(ids):
                raise ValueError(f"map state's next id {next_id} is not above its largest object id {max(ids)}")
            self._objects = {o.id: o for o in objects}
            self._next_id = int(next_id)
            self._windows = int(windows)
            self._frame_id = frame_id
            self._fused_mode = bool(fused) if windows else None
            self._stamp = float(stamp)
            self._vocabulary, self._stuff = tuple(vocabulary), frozenset(stuff)
            self._prototypes = prototypes.detach().float().cpu()
            self._text_encoder = text_encoder
            self._cameras = cameras
            self._logit_scale = float(logit_scale)
            self._publish(self._view.version + 1)
