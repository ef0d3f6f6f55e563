"""Area-weighted spherical interpolation of embeddings (PE3R), norm-preserving.

PE3R merges two unit embeddings A, B with weights (areas) a, b by slerp with ``t = b / (a + b)``:
the larger region pulls the result towards its embedding, and the result stays on the unit sphere
(a weighted average would shrink towards the origin and distort cosines). Many embeddings are merged
by a pairwise tree of such slerps, each merge carrying the summed weight on, which is vectorised and
equals PE3R's sequential rule for two inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor


def slerp(a: Tensor, b: Tensor, t: Tensor | float) -> Tensor:
    """Spherical interpolation between unit vectors ``a``, ``b`` ``[..., D]`` at ``t`` ``[...]`` (0 → a, 1 → b)."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.dim() < a.dim():
        t = t[..., None]
    cos = (a * b).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    theta = torch.acos(cos)
    sin = torch.sin(theta)
    # Nearly parallel (or opposite) vectors: sin θ → 0; normalised lerp is the stable limit.
    small = sin.abs() < 1e-6
    safe_sin = torch.where(small, torch.ones_like(sin), sin)
    wa = torch.where(small, 1 - t, torch.sin((1 - t) * theta) / safe_sin)
    wb = torch.where(small, t, torch.sin(t * theta) / safe_sin)
    out = wa * a + wb * b
    norm = out.norm(dim=-1, keepdim=True)
    return torch.where(norm > 1e-12, out / norm.clamp(min=1e-12), a)


def weighted_slerp_pool(embeddings: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Pool ``[N, D]`` embeddings (normalised here) with weights ``[N]`` into one unit vector ``[D]``.

    Returns ``(embedding [D], total weight [])``. Zero-weight rows are ignored; ``N == 0`` is an error.
    The result of pooling chunks and then pooling the chunk results (with their total weights) is a
    valid pooling too, which bounds memory for large objects.
    """
    if embeddings.dim() != 2 or embeddings.shape[0] == 0:
        raise ValueError(f"weighted_slerp_pool needs a non-empty [N, D] tensor, got {tuple(embeddings.shape)}")
    w = torch.ones(embeddings.shape[0], dtype=embeddings.dtype, device=embeddings.device) if weights is None else weights
    if w.shape != embeddings.shape[:1]:
        raise ValueError(f"weights must be [N] = [{embeddings.shape[0]}], got {tuple(w.shape)}")
    if not (torch.isfinite(embeddings).all() and torch.isfinite(w).all()) or (w < 0).any():
        raise ValueError("weighted_slerp_pool: embeddings and weights must be finite, weights non-negative")
    keep = w > 0
    if not keep.any():
        keep = torch.ones_like(keep)
        w = torch.ones_like(w)
    e = torch.nn.functional.normalize(embeddings[keep], dim=-1)
    w = w[keep]
    # Heaviest first, so that merges pair regions of similar weight (as PE3R's area-sorted order).
    order = torch.argsort(w, descending=True, stable=True)
    e, w = e[order], w[order]
    while e.shape[0] > 1:
        if e.shape[0] % 2:  # carry the lightest one to the next round unchanged
            e_odd, w_odd = e[-1:], w[-1:]
            e, w = e[:-1], w[:-1]
        else:
            e_odd = w_odd = None
        a, b = e[0::2], e[1::2]
        wa, wb = w[0::2], w[1::2]
        e = slerp(a, b, wb / (wa + wb))
        w = wa + wb
        if e_odd is not None:
            e, w = torch.cat([e, e_odd]), torch.cat([w, w_odd])
    return e[0], w[0]
