"""What the map answers: the outcome of one update, query matches, and the state readers see."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from .map_object import MapObject


@dataclass(frozen=True)
class MapUpdate:
    """What one :meth:`ObjectMap.integrate` (or relabel/clear/load) changed. Ids are map ids.

    An id created and merged away or dropped within the same update is in none of the lists (it
    never existed outside the map; ids are still never reused)."""

    added: tuple[int, ...] = ()  # new objects
    updated: tuple[int, ...] = ()  # existing objects fused with a detection, or grown by a merge / relabel
    merged: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))  # absorbed id → surviving id
    removed: tuple[int, ...] = ()  # gone for another reason than merging (forgotten, over max_objects, replaced)
    missed: tuple[int, ...] = ()  # things whose place was seen without a detection (misses + 1, still in the map)
    metric: bool = True  # the window was metric in the map frame (always True for relabel/clear/load)
    fused: bool = True  # the window was fused with the map; False: the map now holds this window only
    notes: tuple[str, ...] = ()  # lines for the log (each kind of remark is made once per map, until clear())
    timing: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))  # seconds per stage + total
    version: int = 0  # the map's version after the update (one more per update that changed something)
    stamp: float = float("nan")  # the window's stamp (s)


@dataclass(frozen=True)
class MapMatch:
    object: MapObject
    score: float  # min-max normalised over all map objects, in [0, 1] (PE3R; the ranking)
    similarity: float  # raw cosine between the query and the object's embedding
    relevance: float = float("nan")  # calibrated, in (0, 1) (panoptic/relevance.py); >= min_relevance: a match


@dataclass(frozen=True, eq=False)
class MapView:
    """What readers see: one immutable, consistent state per map version (published after each change)."""

    version: int
    objects: tuple[MapObject, ...]  # sorted by id
    embeddings: np.ndarray  # [M, D] float32, rows in the order of ``objects`` (the query matrix)
    vocabulary: tuple[str, ...]
    stuff: frozenset[str]
    prototypes: torch.Tensor | None  # [K, D]
    text_encoder: Any
    logit_scale: float
    frame_id: str
    fused: bool
    windows: int
    stamp: float
    next_id: int
    cameras: Any
    aux_bytes: int  # numpy/torch bytes held besides the objects (query matrix, voxel-key cache, cameras, prototypes)
