"""Text queries over map objects, ranked as PE3R ranks: cosine with the query embedding, min-max normalised
over ALL map objects (so a score is relative to the whole map), then thresholded; an object matches at all when
its calibrated relevance (:mod:`eps3d_ros.panoptic.relevance`) reaches ``min_relevance``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..panoptic.relevance import query_relevance
from .map_object import MapObject
from .results import MapMatch


def query_vector(text_or_embedding: str | torch.Tensor | np.ndarray, encoder: Any = None) -> np.ndarray:
    """``[D]`` float32 query: a text through ``encoder`` (its ``encode([text])``), or an embedding as it is."""
    if isinstance(text_or_embedding, str):
        if not text_or_embedding.strip():
            raise ValueError("empty query text: give an object description such as 'red mug'")
        if encoder is None:
            raise RuntimeError("the map has no text encoder: pass text_encoder=, or query with an embedding")
        return encoder.encode([text_or_embedding.strip()])[0].detach().float().cpu().numpy()
    if isinstance(text_or_embedding, torch.Tensor):
        text_or_embedding = text_or_embedding.detach().cpu().numpy()
    return np.asarray(text_or_embedding, dtype=np.float32).reshape(-1)


def rank(objects: Sequence[MapObject], embeddings: np.ndarray, query: np.ndarray, max_results: int = 5,
         min_score: float = 0.0, min_relevance: float = 0.0, text: str | None = None,
         vocabulary: Sequence[str] = (), encoder: Any = None, prototypes: Any = None,
         logit_scale: float | None = None) -> list[MapMatch]:
    """The best ``max_results`` of ``objects`` (rows of ``embeddings [M, D]``) for ``query [D]`` with
    ``score >= min_score`` and ``relevance >= min_relevance``, best first (ties: object order). The relevance
    compares ``query`` (the embedding of ``text``, None for an embedding query) with the canonical phrases and
    the ``vocabulary``'s names, embedded by ``encoder`` (else the vocabulary's ``prototypes``)."""
    if max_results < 1:
        raise ValueError(f"max_results must be >= 1, got {max_results}")
    if not 0.0 <= min_score <= 1.0:
        raise ValueError(f"min_score is a normalised score in [0, 1], got {min_score}")
    if not 0.0 <= min_relevance <= 1.0:
        raise ValueError(f"min_relevance is a relevance in [0, 1], got {min_relevance}")
    if not len(objects):
        return []
    if query.shape != (embeddings.shape[1],):
        raise ValueError(f"a query embedding must be [{embeddings.shape[1]}] (the map's text space), "
                         f"got {list(query.shape)}")
    n = float(np.linalg.norm(query))
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError("the query embedding is zero or not finite")
    q = query / n
    sims = embeddings @ q  # [M] raw cosines (rows are unit)
    lo, hi = float(sims.min()), float(sims.max())
    scores = (sims - lo) / (hi - lo) if hi - lo >= 1e-12 else np.ones_like(sims, dtype=np.float64)
    rel = query_relevance(embeddings, q, text, vocabulary, encoder, prototypes, logit_scale)
    order = np.argsort(-scores, kind="stable")
    out = [MapMatch(objects[i], float(scores[i]), float(sims[i]), float(rel[i])) for i in order
           if scores[i] >= min_score and rel[i] >= min_relevance]
    return out[:max_results]
