"""Gaussian adapter: raw per-pixel (or per-voxel) parameters → panoptic 3D Gaussians.

Raw layout per Gaussian (147 channels in the release): ``[opacity logit (1), scale (3),
rotation xyzw (4), SH (3 * (d+1)^2, colour-major), semantic (Cs), instance (Ci)]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..conventions import covariance_from_scale_rotation
from .config import GaussianConfig
from .outputs import Gaussians


def sh_degree_mask(sh_degree: int) -> Tensor:
    """``[(d+1)^2]``: 1 for degree 0, ``0.1 * 0.25^l`` for the coefficients of degree l >= 1."""
    mask = torch.ones((sh_degree + 1) ** 2)
    for deg in range(1, sh_degree + 1):
        mask[deg**2:(deg + 1) ** 2] = 0.1 * 0.25**deg
    return mask


class GaussianAdapter(nn.Module):
    def __init__(self, cfg: GaussianConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("sh_mask", sh_degree_mask(cfg.sh_degree), persistent=False)

    def opacity_exponent(self, global_step: int) -> float:
        om = self.cfg.opacity_mapping
        progress = min(global_step / max(om.warm_up, 1), 1.0)
        return 2.0 ** (om.initial + progress * (om.final - om.initial))

    def forward(self, means: Tensor, raw: Tensor, global_step: int = 0) -> Gaussians:
        """means ``[B, N, 3]``, raw ``[B, N, 1 + 3 + 4 + 3*(d+1)^2 + Cs + Ci]`` → :class:`Gaussians`."""
        cfg = self.cfg
        n_sh = cfg.num_sh
        o = 8 + 3 * n_sh
        p = torch.sigmoid(raw[..., 0])
        e = self.opacity_exponent(global_step)
        # Same expression as the reference, so e == 1 reproduces its rounding exactly.
        opacities = 0.5 * (1 - (1 - p) ** e + p ** (1 / e))
        scales = torch.clamp(cfg.scale_multiplier * F.softplus(raw[..., 1:4]), max=cfg.scale_max)
        q = raw[..., 4:8]
        rotations = q / (q.norm(dim=-1, keepdim=True) + 1e-8)
        harmonics = raw[..., 8:o].reshape(*raw.shape[:-1], 3, n_sh) * self.sh_mask
        semantics = raw[..., o:o + cfg.semantic_dim]
        instances = raw[..., o + cfg.semantic_dim:o + cfg.semantic_dim + cfg.instance_dim]
        return Gaussians(
            means=means,
            opacities=opacities,
            scales=scales,
            rotations=rotations,
            covariances=covariance_from_scale_rotation(scales, rotations),
            harmonics=harmonics,
            semantics=semantics,
            instances=instances,
        )


def sh_degree_from_channels(n: int) -> int:
    d = int(round(math.sqrt(n / 3))) - 1
    if 3 * (d + 1) ** 2 != n:
        raise ValueError(f"{n} SH channels is not 3 * (d+1)^2")
    return d
