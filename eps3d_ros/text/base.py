"""A text encoder's common part: a thread-safe LRU cache per text, batching, and class prototypes from prompt
templates. An implementation gives :meth:`CachedTextEncoder._embed` (texts → unit rows) and sets ``dim``.

Shapes: K texts or classes, D the embedding width.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..devices import resolve_device
from .config import TextEncoderConfig

log = logging.getLogger(__name__)

__all__ = ["CachedTextEncoder"]


class CachedTextEncoder:
    """Base of text encoders (see the module docstring); satisfies :class:`~eps3d_ros.text.TextEncoder`."""

    def __init__(self, config: TextEncoderConfig, dim: int) -> None:
        config.templates = list(config.templates)
        self.config = config.validate()
        self.device = resolve_device(config.device, "text.device")
        self.dim = int(dim)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()  # text -> [D]
        self._hits = 0
        self._misses = 0

    def _embed(self, texts: list[str]) -> torch.Tensor:
        """Unit embeddings ``[k, D]`` of ``texts`` on :attr:`device` (called under ``torch.inference_mode``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ encoding
    def encode(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Unit embeddings ``[K, D]`` float32 on ``config.device`` of the (stripped) texts, in order.

        Thread-safe: the lock guards the cache only, so a long vocabulary encoding does not block a
        query from another thread. Texts are encoded ``batch_size`` at a time; CPU kernels round by
        batch shape, so a text's embedding can differ in the last bits (~1e-7) with the batch it was
        first encoded in (``batch_size=1`` makes results independent of call grouping).
        """
        texts = _clean_texts(texts, what="query text")
        rows: dict[str, torch.Tensor] = {}
        missing: list[str] = []
        with self._lock:
            for t in dict.fromkeys(texts):  # one look-up per distinct text
                hit = self._cache.get(t)
                if hit is None:
                    missing.append(t)
                    self._misses += 1
                else:
                    self._cache.move_to_end(t)
                    rows[t] = hit
                    self._hits += 1
        for i in range(0, len(missing), self.config.batch_size):
            chunk = missing[i:i + self.config.batch_size]
            with torch.inference_mode():
                emb = self._embed(chunk)  # [k, D]
            new = {t: e.clone() for t, e in zip(chunk, emb)}  # normal tensors (outside inference mode)
            rows.update(new)
            with self._lock:
                for t, row in new.items():
                    self._store(t, row)
        return torch.stack([rows[t] for t in texts])  # [K, D]; never aliases the cache

    def prototypes(self, class_names: Sequence[str]) -> torch.Tensor:
        """Unit class prototypes ``[K, D]``: per template embeddings, averaged and re-normalised."""
        if isinstance(class_names, str):
            raise TypeError("class_names must be a sequence of names, not one string")
        names = _clean_texts(class_names, what="class name")
        if len(set(names)) < len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            log.warning("duplicate class names %s: argmax between them is arbitrary", dupes)
        templates = self.config.templates
        if len(templates) == 1:
            return self.encode([templates[0].format(n) for n in names])
        total = torch.zeros(len(names), self.dim, device=self.device)
        for template in templates:
            total += self.encode([template.format(n) for n in names])
        return F.normalize(total / len(templates), dim=-1)

    def probabilities(self, features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """``softmax(logit_scale * cos(features, prototypes))``: features ``[..., D]``, prototypes ``[K, D]``
        -> ``[..., K]``. Neither needs to be normalised; a zero feature gives the uniform distribution."""
        if prototypes.ndim != 2 or features.ndim < 1 or features.shape[-1] != prototypes.shape[-1]:
            raise ValueError(f"features [..., D] and prototypes [K, D] must share D; got {tuple(features.shape)} "
                             f"and {tuple(prototypes.shape)}")
        if prototypes.shape[0] == 0:
            raise ValueError("no prototypes: the vocabulary is empty")
        if not features.is_floating_point():
            features = features.float()
        prototypes = prototypes.to(device=features.device, dtype=features.dtype)
        cos = F.normalize(features, dim=-1) @ F.normalize(prototypes, dim=-1).T  # [..., K]
        return torch.softmax(self.config.logit_scale * cos, dim=-1)

    # ------------------------------------------------------------------ cache
    def cache_info(self) -> dict:
        with self._lock:
            return {"hits": self._hits, "misses": self._misses, "size": len(self._cache),
                    "maxsize": self.config.cache_size}

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._hits = self._misses = 0

    def _store(self, text: str, row: torch.Tensor) -> None:
        if self.config.cache_size <= 0:
            return
        self._cache[text] = row
        self._cache.move_to_end(text)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)



def _clean_texts(texts: str | Sequence[str], what: str) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise ValueError(f"empty {what} list: give at least one text")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{what} at index {i} must be a string, got {type(t).__name__}")
        t = t.strip()
        if not t:
            raise ValueError(f"empty {what} at index {i}: texts must not be empty or whitespace only")
        out.append(t)
    return out
