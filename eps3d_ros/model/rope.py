"""2-D rotary position embedding of the aggregator (VGGT style).

The head dimension is split in two halves: the first is rotated by the token's row, the second by
its column. Each half uses the rotate-half pairing (``i`` with ``i + d/2``), frequencies
``base^(-2j/d)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RotaryPositionEmbedding2D(nn.Module):
    def __init__(self, frequency: float = 100.0) -> None:
        super().__init__()
        self.frequency = frequency

    def _cos_sin(self, dim: int, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        # float32 tables, as the reference builds them, then gathered per position.
        inv_freq = 1.0 / (self.frequency ** (torch.arange(0, dim, 2, device=positions.device).float() / dim))
        angles = positions.to(inv_freq.dtype)[..., None] * inv_freq  # [..., dim/2]
        angles = torch.cat([angles, angles], dim=-1)  # [..., dim]
        return angles.cos().to(dtype), angles.sin().to(dtype)

    @staticmethod
    def _rotate_half(x: Tensor) -> Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([-x2, x1], dim=-1)

    def _apply_1d(self, x: Tensor, pos: Tensor) -> Tensor:
        cos, sin = self._cos_sin(x.shape[-1], pos, x.dtype)  # [B, N, d]
        cos, sin = cos[:, None], sin[:, None]  # broadcast over heads
        return x * cos + self._rotate_half(x) * sin

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        """x: ``[B, heads, N, head_dim]``; positions: ``[B, N, 2]`` integer (row, col)."""
        rows, cols = x.chunk(2, dim=-1)
        return torch.cat([self._apply_1d(rows, positions[..., 0]), self._apply_1d(cols, positions[..., 1])], dim=-1)


def patch_positions(batch: int, ph: int, pw: int, num_special: int, device: torch.device) -> Tensor:
    """Positions ``[batch, num_special + ph*pw, 2]``: specials at (0, 0), patch (r, c) at (r+1, c+1)."""
    r = torch.arange(ph, device=device)
    c = torch.arange(pw, device=device)
    grid = torch.stack(torch.meshgrid(r, c, indexing="ij"), dim=-1).reshape(-1, 2) + 1
    special = torch.zeros(num_special, 2, dtype=grid.dtype, device=device)
    return torch.cat([special, grid], dim=0)[None].expand(batch, -1, -1)
