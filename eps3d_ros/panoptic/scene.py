"""The queryable panoptic scene: labelled Gaussians, objects, and text queries.

A :class:`Scene` is immutable (read-only arrays, frozen dataclasses), so one snapshot can be
queried from several threads while the next one is built. Changing the vocabulary builds a new
scene from the stored features (:func:`~eps3d_ros.panoptic.build.relabel_scene`) without running the network.

Query scores follow PE3R: cosine between the text embedding and each object's pooled embedding,
min-max normalised over all objects of the scene (the ranking). Whether an object matches at all is its
calibrated *relevance* (:mod:`.relevance`): ``>= min_relevance`` (``config.relevance_threshold``, 0.5 unless the
model recommends another) or it is left out.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..text import TextEncoder
from .config import PanopticConfig
from .geometry import OrientedBox
from .relevance import query_relevance
from .semantic_space import SemanticSpace

UNKNOWN = -1


@dataclass(frozen=True)
class SceneObject:
    id: int  # instance id (1..M) for things; stuff segments get ids after the things
    label: str
    label_id: int  # index into the scene vocabulary
    is_thing: bool
    score: float  # weighted mean probability of ``label`` over the object's Gaussians
    centroid: np.ndarray  # [3] weighted mean position
    aabb_min: np.ndarray  # [3]
    aabb_max: np.ndarray  # [3]
    obb: OrientedBox
    num_points: int
    embedding: np.ndarray  # [D] unit vector in the text space (PE3R area-weighted slerp of its Gaussians)
    indices: np.ndarray  # [num_points] indices of its Gaussians in the scene arrays


@dataclass(frozen=True)
class SplatParams:
    """The rest of each Gaussian, for rendering and export (read-only arrays, N rows)."""

    scales: np.ndarray  # [N, 3] float32 standard deviations
    rotations: np.ndarray  # [N, 4] float32 unit quaternions, xyzw
    harmonics: np.ndarray  # [N, 3, (d+1)^2] float32 SH coefficients [colour, coefficient]

    def __post_init__(self) -> None:
        for a in (self.scales, self.rotations, self.harmonics):
            a.setflags(write=False)


@dataclass(frozen=True)
class QueryMatch:
    object: SceneObject
    score: float  # min-max normalised over the scene's objects, in [0, 1] (the ranking)
    similarity: float  # raw cosine
    relevance: float = float("nan")  # calibrated, in (0, 1): >= 0.5 the text fits it better than any alternative


@dataclass(frozen=True, eq=False)
class Scene:
    """Panoptic Gaussians of one prediction. Arrays are per Gaussian, ``N`` rows, read-only."""

    means: np.ndarray  # [N, 3] float32, frame of the prediction (first camera, up to scale unless rescaled)
    opacities: np.ndarray  # [N] float32
    colors: np.ndarray  # [N, 3] float32 RGB in [0, 1] from the SH DC term
    weights: np.ndarray  # [N] float32 pooling/vote weight
    semantic_features: np.ndarray  # [N, Cs] float32, before the expansion into the text space
    instance_features: np.ndarray  # [N, Ci] float32
    cluster_ids: np.ndarray  # [N] int64 raw instance clusters (0 = none), before labelling
    labels: np.ndarray  # [N] int64 per-Gaussian class (index into vocabulary; -1 unknown)
    label_scores: np.ndarray  # [N] float32 probability of that class
    instance_ids: np.ndarray  # [N] int64 object id of things (0 = stuff, noise or dropped)
    objects: tuple[SceneObject, ...]
    vocabulary: tuple[str, ...]
    stuff: frozenset[str]
    prototypes: torch.Tensor  # [K, D] unit text embeddings of the vocabulary
    space: SemanticSpace
    config: PanopticConfig
    text_encoder: TextEncoder | None = field(default=None, repr=False)
    metadata: dict[str, Any] = field(default_factory=dict)
    splats: SplatParams | None = None  # scales, rotations, SH (None when built from bare points)

    def __post_init__(self) -> None:
        for name in ("means", "opacities", "colors", "weights", "semantic_features", "instance_features",
                     "cluster_ids", "labels", "label_scores", "instance_ids"):
            getattr(self, name).setflags(write=False)

    # --------------------------------------------------------------------------------- basics
    @property
    def num_gaussians(self) -> int:
        return int(self.means.shape[0])

    def object_by_id(self, object_id: int) -> SceneObject:
        for o in self.objects:
            if o.id == object_id:
                return o
        raise KeyError(f"no object with id {object_id}")

    def panoptic_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-Gaussian ``(class [N], instance [N])``: members of a thing take their object's class."""
        sem = self.labels.copy()
        for o in self.objects:
            if o.is_thing:
                sem[o.indices] = o.label_id
        return sem, self.instance_ids.copy()

    def label_name(self, label: int) -> str:
        return "unknown" if label == UNKNOWN else self.vocabulary[label]

    # -------------------------------------------------------------------------------- queries
    def text_embedding(self, text: str | torch.Tensor) -> torch.Tensor:
        """Unit embedding ``[D]`` of a query text (through the scene's encoder, cached there)."""
        if isinstance(text, torch.Tensor):
            if text.shape != (self.space.dim,):
                raise ValueError(f"a query embedding must be [{self.space.dim}], got {tuple(text.shape)}")
            return torch.nn.functional.normalize(text.float(), dim=0)
        if not isinstance(text, str) or not text.strip():
            raise ValueError("empty query text: give an object description such as 'red mug'")
        if self.text_encoder is None:
            raise RuntimeError("this scene has no text encoder: pass an embedding, or build it with one")
        return self.text_encoder.encode([text.strip()])[0].float().cpu()

    def similarities(self, text: str | torch.Tensor) -> np.ndarray:
        """Raw cosines ``[M]`` between the query and each object's embedding."""
        t = self.text_embedding(text).numpy()
        if not self.objects:
            return np.zeros(0, dtype=np.float32)
        emb = np.stack([o.embedding for o in self.objects])
        return emb @ t

    def query(self, text: str | torch.Tensor, max_results: int = 5, min_score: float = 0.0,
              min_relevance: float | None = None) -> list[QueryMatch]:
        """Objects ranked by relevance to ``text``: scores min-max normalised over all objects (PE3R), kept when
        ``score >= min_score`` and ``relevance >= min_relevance`` (None: ``config.relevance_threshold``; 0 keeps
        every object). An empty list: no object matches ``text``."""
        if max_results < 1:
            raise ValueError(f"max_results must be >= 1, got {max_results}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score is a normalised score in [0, 1], got {min_score}")
        if min_relevance is None:
            min_relevance = self.config.relevance_threshold
        if not 0.0 <= min_relevance <= 1.0:
            raise ValueError(f"min_relevance is a relevance in [0, 1], got {min_relevance}")
        t = self.text_embedding(text)
        if not self.objects:
            return []
        emb = np.stack([o.embedding for o in self.objects])
        sims = emb @ t.numpy()
        scores = _minmax(sims)
        rel = query_relevance(emb, t.numpy(), text if isinstance(text, str) else None, self.vocabulary,
                              self.text_encoder, self.prototypes)
        order = np.argsort(-scores, kind="stable")
        out = [QueryMatch(self.objects[i], float(scores[i]), float(sims[i]), float(rel[i])) for i in order
               if scores[i] >= min_score and rel[i] >= min_relevance]
        return out[:max_results]

    def relevance(self, text: str | torch.Tensor) -> np.ndarray:
        """Per-Gaussian relevance ``[N]`` in [0, 1] (global min-max of cosines), for heatmaps."""
        t = self.text_embedding(text)
        if self.num_gaussians == 0:
            return np.zeros(0, dtype=np.float32)
        cos = self.space.cosine(_shared_tensor(self.semantic_features), t[None])[:, 0]
        return _minmax(cos.numpy()).astype(np.float32)


def _shared_tensor(a: np.ndarray) -> torch.Tensor:
    """A tensor sharing a read-only array's memory (only read here; a copy would cost 4 N Cs bytes per query)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(a))


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi - lo < 1e-12:  # one object, or all equally similar: nothing to rank them by
        return np.ones_like(x, dtype=np.float64)
    return (x - lo) / (hi - lo)
