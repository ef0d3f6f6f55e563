"""The reference's 2D mode: panoptic label maps of views, from rendered feature maps (for evaluation).

The Gaussians' semantic and instance features are rendered into each view. Per pixel, the
semantic map is expanded into the text space (the decoder's 1x1 conv, applied at full resolution)
and labelled by the most similar prototype; the instance maps of all views are clustered together
(the clusterer on a seeded subsample of pixels, nearest centroid for the rest), so one object keeps one
id across views. Pixels that the Gaussians do not cover (alpha < ``min_alpha``) are unlabelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..render import render_gaussians
from .clustering import ClusteringConfig, cluster_instances
from .scene import UNKNOWN
from .semantic_space import SemanticSpace


@dataclass(frozen=True)
class PanopticViews:
    semantic: np.ndarray  # [S, H, W] int64 vocabulary index, -1 = not covered / unknown
    instance: np.ndarray  # [S, H, W] int64, 0 = none, consistent across views
    alpha: np.ndarray  # [S, H, W] float32 rendered opacity


def render_panoptic_views(
    gaussians,
    extrinsics: Tensor,  # [S, 3, 4] camera-from-world
    intrinsics: Tensor,  # [S, 3, 3] pixels
    height: int,
    width: int,
    space: SemanticSpace,
    prototypes: Tensor,  # [K, D] unit text embeddings
    clustering: ClusteringConfig | None = None,
    batch_index: int = 0,
    min_alpha: float = 0.5,
    backend: str = "auto",
) -> PanopticViews:
    """Label maps of the views; ``gaussians`` is an :class:`~eps3d_ros.model.Gaussians` (batch ``batch_index``)."""
    b = batch_index
    sem, ins = gaussians.semantics[b].float(), gaussians.instances[b].float()
    feats = torch.cat([sem, ins], dim=-1)  # [N, Cs + Ci]
    with torch.no_grad():
        out = render_gaussians(
            gaussians.means[b].float(), gaussians.opacities[b].float(), feats, extrinsics.float(),
            intrinsics.float(), width, height, covariances=gaussians.covariances[b].float(), backend=backend,
        )
    alpha = out.alphas[..., 0].cpu()  # [S, H, W]
    fmap = out.features.cpu()  # [S, H, W, Cs + Ci]
    covered = alpha >= min_alpha
    cs = sem.shape[-1]
    semantic = torch.full(alpha.shape, UNKNOWN, dtype=torch.int64)
    if covered.any():
        cos = space.cosine(fmap[covered][:, :cs], prototypes)
        semantic[covered] = cos.argmax(dim=-1)
    flat_ins = fmap[..., cs:].reshape(-1, fmap.shape[-1] - cs)
    # Coverage (0/1) stands in for opacity, so uncovered pixels are never clustered.
    clusters = cluster_instances(flat_ins, covered.reshape(-1).float(), clustering or ClusteringConfig(min_opacity=0.5))
    instance = clusters.ids.reshape(alpha.shape)
    return PanopticViews(semantic.numpy(), instance.numpy(), alpha.numpy().astype(np.float32))

