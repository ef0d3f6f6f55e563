"""Sem2Ins fusion: semantic context refines the instance features.

Channels last: ``ins' = ins + w_1 * fusion(concat(proj_instance(ins), proj_semantic(sem)))`` with
``fusion = Linear(2h, h), ReLU, Linear(h, instance_dim)`` and a learned scalar ``w_1``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Sem2InsFusion(nn.Module):
    def __init__(self, instance_dim: int, semantic_dim: int, hidden_dim: int = 32, w_init: float = 0.1) -> None:
        super().__init__()
        self.proj_instance = nn.Linear(instance_dim, hidden_dim)
        self.proj_semantic = nn.Linear(semantic_dim, hidden_dim)
        self.fusion = nn.Sequential(nn.Linear(2 * hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, instance_dim))
        self.w_1 = nn.Parameter(torch.tensor(float(w_init)))

    def forward(self, instance: Tensor, semantic: Tensor) -> Tensor:
        """Maps ``[B, S, C, H, W]`` (channels in dim 2) → refined instance maps of the same shape."""
        ins = instance.movedim(2, -1)
        sem = semantic.movedim(2, -1)
        fused = self.fusion(torch.cat([self.proj_instance(ins), self.proj_semantic(sem)], dim=-1))
        return (ins + self.w_1 * fused).movedim(-1, 2)
