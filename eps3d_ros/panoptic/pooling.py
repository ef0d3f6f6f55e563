"""Object embeddings of many objects at once, pooled in the coefficient space of the expansion.

A Gaussian's embedding is ``e = W x + b = A z`` with ``A = [W | b]`` (``D x (Cs+1)``, 512 x 33) and
``z = [x; 1]``. Unit-normalising, slerp and weighted sums only ever form linear combinations, so every
intermediate of the pooling stays in the column space of ``A``. With ``A = Q R`` (``Q`` orthonormal
columns, ``R`` 33 x 33), ``y = R z`` has exactly the inner products of ``e = Q y`` (``Q^T Q = I``, the
Gram matrix ``A^T A = R^T R``), so PE3R's area-weighted slerp pooling (:mod:`.slerp`) runs on 33-d
vectors ``y`` and only the pooled result is mapped back, ``e = Q y`` — the same result up to rounding,
with 15x less arithmetic. All objects share each level of the pairwise merge tree (segments).

The order of operations is that of :func:`~.slerp.weighted_slerp_pool` applied per chunk of
``chunk`` members (in the order given) and then to the chunk results with their total weights.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .semantic_space import SemanticSpace
from ..geometry.slerp import slerp

__all__ = ["pool_embeddings"]


def pool_embeddings(
    features: Tensor,  # [N, Cs] semantic features of the members of all objects
    weights: Tensor,  # [N] non-negative
    segments: Tensor,  # [N] int64 object index in 0..M-1, members of an object in pooling order
    count: int,  # M objects, each with at least one member
    space: SemanticSpace,
    method: str = "slerp",
    chunk: int = 65536,
) -> Tensor:
    """Unit embeddings ``[M, D]`` float32 in the text space, one per object."""
    if method not in ("slerp", "mean"):
        raise ValueError(f"unknown pooling {method!r}: use 'slerp' or 'mean'")
    if features.dim() != 2 or weights.shape != features.shape[:1] or segments.shape != features.shape[:1]:
        raise ValueError(f"pool_embeddings needs features [N, Cs], weights [N], segments [N]; got "
                         f"{tuple(features.shape)}, {tuple(weights.shape)}, {tuple(segments.shape)}")
    if chunk < 1:
        raise ValueError("pooling chunk must be >= 1")
    a = torch.cat([space.weight, space.bias[:, None]], 1).double()  # [D, Cs+1]
    q, r = torch.linalg.qr(a)  # [D, Cs+1], [Cs+1, Cs+1]
    n = features.shape[0]
    if count == 0:
        return torch.zeros(0, space.dim)
    rf = r.float()
    y = torch.addmm(rf[:, -1], features.float(), rf[:, :-1].T)  # [N, Cs+1] = R z, float32 as e was
    w = weights.float()
    segments = segments.long()
    # Stable order by object, keeping the given member order inside; then chunks of `chunk` members.
    order = torch.argsort(segments, stable=True)
    y, w, seg = y[order], w[order], segments[order]
    size = torch.bincount(seg, minlength=count)
    if bool((size == 0).any()):
        raise ValueError("pool_embeddings: every object needs at least one member")
    rank = torch.arange(n) - (torch.cumsum(size, 0) - size)[seg]
    chunks_per = (size + chunk - 1) // chunk
    first_chunk = torch.cumsum(chunks_per, 0) - chunks_per
    sub = first_chunk[seg] + rank // chunk  # chunk id, object by object
    nsub = int(chunks_per.sum())
    pool = _slerp_segments if method == "slerp" else _mean_segments
    c, cw = pool(y, w, sub, nsub, normalize_inputs=True)
    owner = torch.repeat_interleave(torch.arange(count), chunks_per)  # [nsub]
    if nsub > count:  # objects of several chunks: pool their chunk results with their weights
        c, cw = pool(c, cw, owner, count, normalize_inputs=False)
    e = c.double() @ q.T
    return (e / e.norm(dim=-1, keepdim=True).clamp_min(1e-12)).float()


def _unit(c: Tensor) -> Tensor:
    return torch.nn.functional.normalize(c, dim=-1)


def _slerp_segments(c: Tensor, w: Tensor, seg: Tensor, count: int, normalize_inputs: bool) -> tuple[Tensor, Tensor]:
    """Per segment, :func:`~.slerp.weighted_slerp_pool`: ``(c [count, K], w [count])``. ``seg`` is sorted
    (contiguous segments)."""
    keep = w > 0
    none_kept = torch.zeros(count, dtype=torch.bool).index_put_((seg,), keep, accumulate=True) == 0
    w = torch.where(none_kept[seg], torch.ones_like(w), w)  # an all-zero-weight segment: all, weight 1
    keep = keep | none_kept[seg]
    c, w, seg = c[keep], w[keep], seg[keep]
    if normalize_inputs:
        c = _unit(c)
    # heaviest first inside each segment (as weighted_slerp_pool)
    order = torch.argsort(w, descending=True, stable=True)
    order = order[torch.argsort(seg[order], stable=True)]
    c, w, seg = c[order], w[order], seg[order]
    while True:
        size = torch.bincount(seg, minlength=count)
        if int(size.max()) <= 1:
            break
        pos = torch.arange(seg.numel()) - (torch.cumsum(size, 0) - size)[seg]
        pairs = size // 2
        ia = torch.nonzero((pos % 2 == 0) & (pos < 2 * pairs[seg]))[:, 0]
        ib = ia + 1
        odd = torch.nonzero((size[seg] % 2 == 1) & (pos == size[seg] - 1))[:, 0]  # the lightest is carried
        wa, wb = w[ia], w[ib]
        merged = slerp(c[ia], c[ib], wb / (wa + wb))
        c_all = torch.cat([merged, c[odd]])
        w_all = torch.cat([wa + wb, w[odd]])
        seg_all = torch.cat([seg[ia], seg[odd]])
        order = torch.argsort(seg_all, stable=True)  # merged pairs first, then the carried one
        c, w, seg = c_all[order], w_all[order], seg_all[order]
    return c, w


def _mean_segments(c: Tensor, w: Tensor, seg: Tensor, count: int, normalize_inputs: bool) -> tuple[Tensor, Tensor]:
    """Per segment, the normalised weighted sum of unit vectors and the total weight."""
    if normalize_inputs:
        c = _unit(c)
    total = torch.zeros(count, c.shape[1], dtype=c.dtype).index_add_(0, seg, w[:, None] * c)
    return _unit(total), torch.zeros(count, dtype=w.dtype).index_add_(0, seg, w)
