"""Cosines between per-Gaussian semantic features and CLIP text embeddings, without 512-d copies.

The decoder's feature expansion is affine per Gaussian, ``e = W x + b`` (``W [512, 32]``). The cosine
with a unit text embedding ``t`` is ``(x·(W^T t) + b·t) / |W x + b|`` and the norm only needs the
32x32 Gram matrix: ``|Wx + b|^2 = x^T (W^T W) x + 2 (W^T b)·x + b·b``. So labelling a million
Gaussians against K prototypes costs ``[N, 32] @ [32, K]`` instead of materialising ``[N, 512]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SemanticSpace:
    """The expansion ``x [.., Cs] → W x + b [.., D]`` into the text space (D = 512 for CLIP ViT-B-32)."""

    weight: Tensor  # [D, Cs]
    bias: Tensor  # [D]

    @classmethod
    def from_model(cls, model) -> "SemanticSpace":
        """From an :class:`eps3d_ros.model.EPS3D` (its ``decoder.feature_expansion`` 1x1 conv)."""
        conv = model.decoder.feature_expansion[1]
        return cls(conv.weight.detach()[:, :, 0, 0].float().cpu(), conv.bias.detach().float().cpu())

    @property
    def dim(self) -> int:
        return int(self.weight.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.weight.shape[1])

    def embed(self, x: Tensor, normalize: bool = True) -> Tensor:
        """``[..., Cs]`` → ``[..., D]`` (unit length when ``normalize``)."""
        self._check(x)
        e = x.float() @ self.weight.T + self.bias
        return torch.nn.functional.normalize(e, dim=-1) if normalize else e

    def norms(self, x: Tensor) -> Tensor:
        """``|W x + b|`` for ``x [N, Cs]`` → ``[N]``, through the Gram matrix."""
        self._check(x)
        x = x.float()
        gram = self.weight.T @ self.weight  # [Cs, Cs]
        wb = self.weight.T @ self.bias  # [Cs]
        sq = ((x @ gram) * x).sum(-1) + 2 * (x @ wb) + self.bias @ self.bias
        return sq.clamp(min=0).sqrt()

    def cosine(self, x: Tensor, text: Tensor, chunk: int = 262144) -> Tensor:
        """Cosines ``[N, K]`` between features ``x [N, Cs]`` and unit text embeddings ``text [K, D]``."""
        self._check(x)
        if text.dim() != 2 or text.shape[1] != self.dim:
            raise ValueError(f"text embeddings must be [K, {self.dim}], got {tuple(text.shape)}")
        t = torch.nn.functional.normalize(text.float(), dim=-1)
        proj, offset = self.weight.T @ t.T, self.bias @ t.T  # [Cs, K], [K]
        out = []
        for i in range(0, max(x.shape[0], 1), chunk):
            xi = x[i:i + chunk].float()
            out.append((xi @ proj + offset) / self.norms(xi).clamp(min=1e-12)[:, None])
        return torch.cat(out) if out else x.new_zeros(0, t.shape[0])

    def _check(self, x: Tensor) -> None:
        if x.shape[-1] != self.feature_dim:
            raise ValueError(f"semantic features must have {self.feature_dim} channels, got shape {tuple(x.shape)}")
        # A finite sum means no NaN/inf anywhere (they propagate); only an overflowing sum needs the full test.
        if not (bool(torch.isfinite(x.float().sum())) or bool(torch.isfinite(x).all())):
            raise ValueError("semantic features contain NaN or infinite values")
