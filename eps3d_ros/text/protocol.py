"""What the rest of the package needs from a text encoder: the :class:`TextEncoder` protocol.

The panoptic stage labels Gaussians with :meth:`TextEncoder.prototypes` of the vocabulary, queries embed
their text with :meth:`TextEncoder.encode`, model folders check :meth:`~TextEncoder.encode` against their
fingerprint, scene files record :attr:`~TextEncoder.config`. Any object with these members works; a new kind
is made available to settings and model folders with :func:`eps3d_ros.text.register_text_encoder`
(:class:`eps3d_ros.text.CachedTextEncoder` gives the cache and the templates for free).

Shapes: K texts or classes, D the embedding width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from .config import TextEncoderConfig

__all__ = ["TextEncoder"]


@runtime_checkable
class TextEncoder(Protocol):
    """Texts into unit embeddings of one text space: the space the model's semantic features are compared in."""

    config: TextEncoderConfig  # what built it (its ``logit_scale`` turns cosines into class probabilities)
    dim: int  # D

    def encode(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Unit embeddings ``[K, D]`` float32 of the texts, in order (thread-safe)."""
        ...

    def prototypes(self, class_names: Sequence[str]) -> torch.Tensor:
        """Unit class prototypes ``[K, D]`` (the config's prompt templates, averaged)."""
        ...
