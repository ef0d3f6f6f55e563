"""Text queries over map objects, ranked as PE3R ranks: cosine with the query embedding, min-max normalised
over ALL map objects (so a score is relative to the whole map), then thresholded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

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
         min_score: float = 0.0) -> list[MapMatch]:
    """The best ``max_results`` of ``objects`` (rows of ``embeddings [M, D]``) for ``query [D]`` with
    ``score >= min_score``, best first (ties: object order)."""
    if max_results < 1:
        raise ValueError(f"max_results must be >= 1, got {max_results}")
    if not 0.0 <= min_score <= 1.0:
        raise ValueError(f"min_score is a normalised score in [0, 1], got {min_score}")
    if not len(objects):
        return []
    if query.shape != (embeddings.shape[1],):
        raise ValueError(f"a query embedding must be [{embeddings.shape[1]}] (the map's text space), "
                         f"got {list(query.shape)}")
    n = float(np.linalg.norm(query))
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError("the query embedding is zero or not finite")
    sims = embeddings @ (query / n)  # [M] raw cosines (rows are unit)
    lo, hi = float(sims.min()), float(sims.max())
    scores = (sims - lo) / (hi - lo) if hi - lo >= 1e-12 else np.ones_like(sims, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[:max_results]
    return [MapMatch(objects[i], float(scores[i]), float(sims[i])) for i in order if scores[i] >= min_score]
