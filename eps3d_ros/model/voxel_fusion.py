"""Voxel fusion of pixel-aligned Gaussians (optional, ``gaussians.voxelize``).

Points are quantised to ``round(p / voxel_size)`` (half to even); each occupied voxel gets the
softmax-weighted (over its members' confidence logits) mean of the members' positions and raw
parameters. Voxels come out sorted lexicographically by integer key. The opacity *logit* is
averaged, before the sigmoid.
"""

from __future__ import annotations

import torch
from torch import Tensor


def voxel_fuse(points: Tensor, feats: Tensor, conf: Tensor, voxel_size: float) -> tuple[Tensor, Tensor]:
    """points ``[N, 3]``, feats ``[N, F]``, conf ``[N]`` → voxel points ``[Nv, 3]``, voxel feats ``[Nv, F]``."""
    if not (points.shape[0] == feats.shape[0] == conf.shape[0]):
        raise ValueError(f"voxel_fuse: mismatched counts {points.shape[0]}, {feats.shape[0]}, {conf.shape[0]}")
    vs = torch.tensor(voxel_size, dtype=points.dtype, device=points.device)
    keys = torch.round(points / vs).to(torch.int32)
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    nv = int(inverse.max()) + 1 if inverse.numel() else 0
    cmax = torch.full((nv,), float("-inf"), dtype=conf.dtype, device=conf.device)
    cmax = cmax.scatter_reduce(0, inverse, conf, reduce="amax", include_self=True)
    w = torch.exp(conf - cmax[inverse])
    wsum = torch.zeros(nv, dtype=conf.dtype, device=conf.device).index_add(0, inverse, w)
    w = w / (wsum[inverse] + 1e-6)
    vpts = torch.zeros(nv, 3, dtype=points.dtype, device=points.device).index_add(0, inverse, w[:, None] * points)
    vfeats = torch.zeros(nv, feats.shape[1], dtype=feats.dtype, device=feats.device).index_add(
        0, inverse, w[:, None] * feats
    )
    return vpts, vfeats
