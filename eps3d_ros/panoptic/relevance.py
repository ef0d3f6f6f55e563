"""Calibrated query relevance: does an object match a text at all, not only "which object matches best"?

The ranking score of a query is PE3R's min-max normalisation of cosines over the scene's objects, so the best
object always scores 1.0, whatever the text ("a flying saucer" included). The *relevance* has an absolute
meaning instead. For an object embedding ``e`` and the query ``q`` it compares the query with the
*alternatives* the scene knows — LERF's canonical phrases ("object", "things", "stuff", "texture") and the
vocabulary's class names the query does not name — as LERF does, pairwise, keeping the worst case::

    relevance = min_n  exp(s cos(e, q)) / (exp(s cos(e, q)) + exp(s cos(e, n)))
              = sigmoid(s * (cos(e, q) - max_n cos(e, n)))

with ``s`` the text encoder's logit scale (the one the labels' softmax uses). ``relevance >= 0.5``: the
query describes the object at least as well as anything else the scene has words for; below 0.5 a generic
phrase or another class fits it better. :data:`DEFAULT_MIN_RELEVANCE` (0.5, the setting
``panoptic.min_relevance``) is the default threshold of every answer (the node's ``~/query_objects``,
``eps3d query``), and a query none of whose objects reaches it is answered "no object matches".

Which classes a query *names* (and so are not its competitors) is decided on the words: a class name that
appears in the text as whole words, singular or with a plural "s"/"es" ("red mug" and "mugs" name "mug"; "mug
on the table" names both). A paraphrase that names no class ("something to sit on") competes with every class
name: with a real CLIP it matches a chair only where it describes the chair better than the word "chair" —
the conservative side of the trade (a robot acts on matches). The text space is the text encoder's; with the
demo model's text tower (seeded random weights) only class names mean something, and the relevance of other
phrases is a fact about that random space, not about language (see README, "Queries that find nothing").

Shapes: M objects, K negatives, D the text-space width.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CANONICAL_NEGATIVES", "DEFAULT_MIN_RELEVANCE", "named_classes", "negative_texts", "relevance",
           "query_relevance", "no_match_message"]

CANONICAL_NEGATIVES = ("object", "things", "stuff", "texture")  # LERF's canonical phrases
DEFAULT_MIN_RELEVANCE = 0.5
_SAME_TEXT_COSINE = 0.995  # a negative this close to the query in the text space is the query itself


def named_classes(text: str, vocabulary: Sequence[str]) -> list[int]:
    """Indices of the ``vocabulary`` names that ``text`` names: whole words, case-insensitive, plural allowed."""
    t = " ".join(text.lower().split())
    out = []
    for i, name in enumerate(vocabulary):
        n = " ".join(str(name).lower().split())
        if n and re.search(r"(?<![\w])" + re.escape(n) + r"(?:s|es)?(?![\w])", t):
            out.append(i)
    return out


def negative_texts(text: str | None, vocabulary: Sequence[str]) -> list[str]:
    """The phrases a query competes with: the canonical ones and the vocabulary's names it does not name
    (``text`` None, an embedding query: every name)."""
    if text is None:
        return list(dict.fromkeys([*CANONICAL_NEGATIVES, *map(str, vocabulary)]))
    named = set(named_classes(text, vocabulary))
    generic = set(named_classes(text, CANONICAL_NEGATIVES))
    words = [w for i, w in enumerate(CANONICAL_NEGATIVES) if i not in generic]
    words += [str(v) for i, v in enumerate(vocabulary) if i not in named]
    return list(dict.fromkeys(words))


def relevance(embeddings: np.ndarray, query: np.ndarray, negatives: np.ndarray, logit_scale: float) -> np.ndarray:
    """``[M]`` relevance in (0, 1) of unit ``embeddings [M, D]`` for the unit ``query [D]`` against
    ``negatives [K, D]`` (see the module docstring); negatives within a cosine of 0.995 of the query are the
    query itself and left out. No negative left: 1.0 (nothing to compare with)."""
    e = np.asarray(embeddings, np.float64)
    q = np.asarray(query, np.float64).reshape(-1)
    n = np.asarray(negatives, np.float64).reshape(-1, q.shape[0])
    if e.ndim != 2 or e.shape[1] != q.shape[0]:
        raise ValueError(f"embeddings must be [M, {q.shape[0]}], got {list(e.shape)}")
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    n = n[n @ q < _SAME_TEXT_COSINE]
    if e.shape[0] == 0:
        return np.zeros(0, np.float64)
    if n.shape[0] == 0:
        return np.ones(e.shape[0], np.float64)
    margin = e @ q - (e @ n.T).max(axis=1)  # [M]
    return 1.0 / (1.0 + np.exp(-float(logit_scale) * margin))


def query_relevance(embeddings: np.ndarray, query: np.ndarray, text: str | None, vocabulary: Sequence[str],
                    encoder: Any, prototypes: Any = None, logit_scale: float | None = None) -> np.ndarray:
    """``[M]`` relevance of each object for a query: the negatives of :func:`negative_texts` embedded by
    ``encoder`` (as the query is). Without an encoder, the vocabulary's ``prototypes [K, D]`` are the negatives."""
    if logit_scale is None:
        logit_scale = float(getattr(getattr(encoder, "config", None), "logit_scale", 1 / 0.07))
    if encoder is not None:
        words = negative_texts(text, vocabulary)
        negatives = encoder.encode(words).detach().float().cpu().numpy() if words else np.zeros((0, len(query)))
    elif prototypes is not None:
        p = prototypes.detach().float().cpu().numpy() if hasattr(prototypes, "detach") else np.asarray(prototypes)
        keep = [i for i in range(len(vocabulary)) if text is None or i not in set(named_classes(text, vocabulary))]
        negatives = p[keep]
    else:
        negatives = np.zeros((0, len(query)))
    return relevance(embeddings, query, negatives, logit_scale)


def no_match_message(text: str, min_relevance: float, best: Any = None) -> str:
    """``no object matches 'text'``, with the closest object and its relevance when there is one."""
    out = f"no object matches '{text}'"
    if best is not None:
        o = best.object
        out += (f" (closest: #{o.id} '{o.label}', relevance {best.relevance:.2f} < {min_relevance:g}; "
                "min_relevance 0 lists the ranking anyway)")
    return out
