"""EPS3D's training losses, as the paper defines them, plus the optional geometry terms.

Every function is pure (tensors in, a scalar tensor out) and states its shapes. Shape legend: C
rendered cameras, S input views, H/W image size, h/w semantic-map size, D feature width, N Gaussians.

* :func:`rgb_loss` — L1 between splat-rendered views and the images, optionally mixed with an SSIM
  term ``(1 - SSIM) / 2`` (the usual 3DGS mix ``(1 - λ) L1 + λ (1 - SSIM) / 2``).
* :func:`semantic_loss` — ``1 - cos`` between the rendered, expanded semantic map and the teacher's
  per-pixel text-aligned features (LSeg in the paper), over the pixels the teacher labels.
* :func:`instance_infonce` — single-view InfoNCE on rendered instance features: each pixel is pulled
  to the centroid of its teacher mask and pushed from the other masks' centroids of the *same view*
  (``softmax(cos(f, μ_k) / τ)``, cross-entropy to its own mask). Mask ids only group pixels, so the
  loss is invariant to any relabelling of the teacher's ids and needs no cross-view consistency.
* :func:`ins2sem_loss` — M random anchor Gaussians, their top-K neighbours by instance-feature
  cosine, ``1 - cos`` of the neighbours' semantic features to the anchor's.
* :func:`depth_loss`, :func:`camera_loss` — optional geometry supervision where depth / poses exist
  (not part of the paper's total; the release distils geometry from VGGT instead).

:class:`LossConfig` holds the weights; the defaults of the four paper terms are the paper's
``w1..w4 = 0.1, 1e-3, 0.1, 1e-4``; every other term is off (weight 0) unless configured.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "LossConfig",
    "rgb_loss",
    "ssim",
    "semantic_loss",
    "semantic_ce_loss",
    "instance_infonce",
    "ins2sem_loss",
    "depth_loss",
    "camera_loss",
    "total_loss",
    "LOSS_NAMES",
]

# Order of the terms in logs and in ``total_loss``.
LOSS_NAMES = ("rgb", "instance", "semantic", "ins2sem", "depth", "camera", "direct_semantic", "direct_instance",
              "semantic_ce", "direct_semantic_ce", "direct_rgb")


@dataclass
class LossConfig:
    """Loss weights and parameters. ``total = Σ weight * term`` over the terms with a non-zero weight."""

    rgb: float = 0.1  # w1 (paper)
    instance: float = 1e-3  # w2 (paper)
    semantic: float = 0.1  # w3 (paper)
    ins2sem: float = 1e-4  # w4 (paper)
    depth: float = 0.0  # optional: L1 of the depth head against (scale-normalised) ground-truth depth
    camera: float = 0.0  # optional: L1 of the camera head's pose encodings against ground-truth cameras
    # Optional, NOT in the paper: the semantic / instance terms on the per-pixel head outputs of the
    # input views directly (no splatting). Cheap; useful when rendering is the bottleneck (CPU).
    direct_semantic: float = 0.0
    direct_instance: float = 0.0
    # the RGB term on the per-pixel colours (DC) of the input views' Gaussians, no splatting: teaches
    # colours on every step; opacity and size still need the rendered term
    direct_rgb: float = 0.0
    # The direct instance term over all input views at once (one InfoNCE per window instead of per
    # view). Only for teachers whose mask ids agree across views (the synthetic ground truth), NOT
    # for per-view SAM masks; it makes the instance features of one object agree across views.
    direct_instance_cross_view: bool = False
    # Optional, NOT in the paper: where the teacher gives class ids (the synthetic ground truth), a
    # cross-entropy over the prototype table, softmax(scale * cos(feature, prototypes)) — LSeg's own
    # training objective and exactly the rule that labels at run time. 1 - cos alone barely separates
    # classes whose prototypes are close (cos 0.8-0.93 for the demo's random text tower).
    semantic_ce: float = 0.0  # on the rendered semantic maps
    direct_semantic_ce: float = 0.0  # on the per-pixel head outputs
    semantic_ce_scale: float = 1 / 0.07  # the run-time logit scale (TextEncoderConfig.logit_scale)
    semantic_ce_balanced: bool = False  # every class present in a step weighs the same (small objects)
    ssim: float = 0.0  # λ of the SSIM part of the RGB term (0 = plain L1)
    temperature: float = 0.1  # τ of the instance InfoNCE
    instance_pixels: int = 4096  # pixels sampled per view for the InfoNCE (0 = all)
    # pixels (of the x0.5 semantic maps, all input views together) sampled for the direct semantic
    # terms; 0 = all. The 512-d expansion and its cosines dominate a CPU step otherwise.
    semantic_pixels: int = 0
    ins2sem_anchors: int = 64  # M
    ins2sem_neighbors: int = 16  # K
    min_alpha: float = 0.5  # rendered pixels more transparent than this get no semantic / instance loss
    camera_gamma: float = 0.6  # weight of earlier camera-head iterations: gamma^(n-1-i)
    # First step of a term ({term: step}; absent = 0), e.g. a geometry phase (depth, camera) before the
    # semantic and instance terms join.
    start: dict[str, int] = field(default_factory=dict)

    def validate(self) -> "LossConfig":
        for name in LOSS_NAMES:
            if getattr(self, name) < 0:
                raise ValueError(f"loss.{name} weight must be >= 0, got {getattr(self, name)}")
        if not self.semantic_ce_scale > 0:
            raise ValueError(f"loss.semantic_ce_scale must be > 0, got {self.semantic_ce_scale}")
        if not self.temperature > 0:
            raise ValueError(f"loss.temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.ssim <= 1.0:
            raise ValueError(f"loss.ssim must be in [0, 1], got {self.ssim}")
        if self.ins2sem_anchors < 1 or self.ins2sem_neighbors < 1:
            raise ValueError("loss.ins2sem_anchors (M) and loss.ins2sem_neighbors (K) must be >= 1")
        if self.semantic_pixels < 0:
            raise ValueError("loss.semantic_pixels must be >= 0 (0 = all pixels)")
        if self.instance_pixels < 0:
            raise ValueError("loss.instance_pixels must be >= 0 (0 = all pixels)")
        if not 0.0 <= self.min_alpha < 1.0:
            raise ValueError("loss.min_alpha must be in [0, 1)")
        for name, first in self.start.items():
            if name not in LOSS_NAMES or not isinstance(first, int) or first < 0:
                raise ValueError(f"loss.start needs {{term: first step >= 0}} with terms from {LOSS_NAMES}, got "
                                 f"{name!r}: {first!r}")
        if not 0.0 < self.camera_gamma <= 1.0:
            raise ValueError("loss.camera_gamma must be in (0, 1]")
        return self

    def weights(self, step: int | None = None) -> dict[str, float]:
        """``{term: weight}``; at ``step``, terms that start later (``start``) weigh 0."""
        return {name: float(getattr(self, name)) if step is None or step >= self.start.get(name, 0) else 0.0
                for name in LOSS_NAMES}


# ------------------------------------------------------------------------------------------ RGB
def _gaussian_window(size: int, sigma: float, channels: int, ref: Tensor) -> Tensor:
    x = torch.arange(size, dtype=ref.dtype, device=ref.device) - (size - 1) / 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of images ``[C, 3, H, W]`` in [0, 1] (Gaussian window, constants of Wang et al. 2004).

    The window shrinks to the image when the image is smaller than ``window``; borders are zero-padded.
    """
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"ssim needs two [C, 3, H, W] tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    window = min(window, a.shape[-1], a.shape[-2])
    window -= 1 - window % 2  # odd
    ch = a.shape[1]
    w = _gaussian_window(window, sigma, ch, a)
    pad = window // 2

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, w, padding=pad, groups=ch)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    return s.mean()


def rgb_loss(rendered: Tensor, images: Tensor, ssim_weight: float = 0.0) -> Tensor:
    """``rendered``, ``images`` ``[C, 3, H, W]`` in [0, 1] → ``(1 - λ) L1 + λ (1 - SSIM) / 2``."""
    if rendered.shape != images.shape:
        raise ValueError(f"rendered {tuple(rendered.shape)} and images {tuple(images.shape)} must have one shape")
    l1 = (rendered - images).abs().mean()
    if ssim_weight <= 0:
        return l1
    return (1 - ssim_weight) * l1 + ssim_weight * (1 - ssim(rendered, images)) / 2


# ------------------------------------------------------------------------------------- semantic
def semantic_loss(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean ``1 - cos(pred, target)`` over valid pixels.

    ``pred``, ``target`` ``[C, D, h, w]`` (channels in dim 1); ``valid`` ``[C, h, w]`` bool or a weight in
    [0, 1] (default all). Returns 0 (still attached to ``pred``) when nothing is valid.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have one shape")
    cos = F.cosine_similarity(pred, target.to(pred.dtype), dim=1, eps=1e-8)  # [C, h, w]
    if valid is None:
        return (1 - cos).mean()
    w = valid.to(pred.dtype)
    total = w.sum()
    if total <= 0:
        return pred.sum() * 0.0
    return ((1 - cos) * w).sum() / total


def semantic_ce_loss(pred: Tensor, classes: Tensor, prototypes: Tensor, scale: float = 1 / 0.07,
                     balanced: bool = False) -> Tensor:
    """Cross-entropy of ``softmax_k(scale * cos(pred, prototype_k))`` to ``classes`` (``-1`` = ignored).

    ``pred`` ``[C, D, h, w]``, ``classes`` ``[C, h, w]`` int64, ``prototypes`` ``[K, D]``. With
    ``balanced`` every class present counts equally (the mean over classes of each class's mean
    pixel loss), so small objects weigh as much as the floor. Returns 0 (attached to ``pred``) when
    no pixel has a class.
    """
    if pred.dim() != 4 or classes.shape != (pred.shape[0], *pred.shape[2:]):
        raise ValueError(f"pred must be [C, D, h, w] and classes [C, h, w]; got {tuple(pred.shape)}, "
                         f"{tuple(classes.shape)}")
    keep = classes >= 0
    if not bool(keep.any()):
        return pred.sum() * 0.0
    feats = F.normalize(pred.permute(0, 2, 3, 1)[keep], dim=-1)  # [P, D]
    logits = scale * feats @ F.normalize(prototypes.to(feats.dtype), dim=-1).T  # [P, K]
    target = classes[keep]
    if not balanced:
        return F.cross_entropy(logits, target)
    counts = torch.bincount(target, minlength=logits.shape[1]).to(logits.dtype)
    weight = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
    return F.cross_entropy(logits, target, weight=weight)  # Σ_c w_c Σ_{p∈c} l_p / Σ_p w_{c(p)}


# ------------------------------------------------------------------------------------- instance
def instance_infonce(
    features: Tensor,
    masks: Tensor,
    temperature: float = 0.1,
    valid: Tensor | None = None,
    max_pixels: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Single-view InfoNCE on instance features, averaged over the views that have >= 2 masks.

    ``features`` ``[C, H, W, D]`` (rendered instance maps, channels last); ``masks`` ``[C, H, W]``
    integer mask ids per view (``0`` = no mask: ignored; ids need not agree across views and any
    permutation gives the same loss); ``valid`` ``[C, H, W]`` bool further restricts the pixels.
    Per view: centroids ``μ_k`` = normalised mean of the unit features of mask ``k``; each pixel's
    loss is the cross-entropy of ``softmax_k(cos(f_p, μ_k) / τ)`` to its own mask. ``max_pixels``
    (> 0) samples that many pixels per view (with ``generator``) for both centroids and the loss.
    A view with fewer than two masks has nothing to contrast and contributes nothing; with no such
    view the loss is 0 (attached to ``features``).
    """
    if features.dim() != 4 or masks.shape != features.shape[:3]:
        raise ValueError(f"features must be [C, H, W, D] and masks [C, H, W]; got {tuple(features.shape)}, "
                         f"{tuple(masks.shape)}")
    unit = F.normalize(features, dim=-1)
    losses = []
    for c in range(features.shape[0]):
        m = masks[c].reshape(-1)
        keep = m != 0
        if valid is not None:
            keep &= valid[c].reshape(-1)
        idx = keep.nonzero().squeeze(1)
        if idx.numel() < 2:
            continue
        if 0 < max_pixels < idx.numel():
            pick = torch.randperm(idx.numel(), generator=generator, device="cpu")[:max_pixels].to(idx.device)
            idx = idx[pick]
        ids, inv = torch.unique(m[idx], return_inverse=True)  # dense 0..K-1: permutation invariant
        k = ids.numel()
        if k < 2:
            continue
        f = unit[c].reshape(-1, unit.shape[-1])[idx]  # [P, D]
        onehot = F.one_hot(inv, k).to(f.dtype)  # [P, K]; a matmul is much faster than index_add on CPU
        centroids = F.normalize(onehot.T @ f, dim=-1)  # [K, D]
        logits = f @ centroids.T / temperature  # [P, K]
        losses.append(F.cross_entropy(logits, inv))
    if not losses:
        return features.sum() * 0.0
    return torch.stack(losses).mean()


def ins2sem_loss(
    instances: Tensor,
    semantics: Tensor,
    num_anchors: int = 64,
    num_neighbors: int = 16,
    valid: Tensor | None = None,
    generator: torch.Generator | None = None,
    expand: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Ins2Sem: ``mean_{m,k} (1 - cos(S_k^m, S_m))`` over M random anchors and their K nearest Gaussians.

    ``instances`` ``[N, Di]``, ``semantics`` ``[N, Ds]``, ``valid`` ``[N]`` bool (e.g. opaque Gaussians;
    default all). ``expand`` maps gathered semantic rows into the text space before the cosine (the
    paper compares 512-d text-space features: pass ``EPS3D.expand_semantic_features``); only the
    ``M (K + 1)`` gathered rows are expanded. Neighbours are the
    top-K by instance cosine among the valid Gaussians, the anchor itself excluded; the selection
    carries no gradient (the instance features only choose), the semantic features of both anchor
    and neighbours are pulled together.
    """
    if instances.dim() != 2 or semantics.dim() != 2 or instances.shape[0] != semantics.shape[0]:
        raise ValueError(f"instances must be [N, Di] and semantics [N, Ds]; got {tuple(instances.shape)}, "
                         f"{tuple(semantics.shape)}")
    pool = torch.arange(instances.shape[0], device=instances.device)
    if valid is not None:
        pool = pool[valid]
    n = pool.numel()
    if n < 2:
        return semantics.sum() * 0.0
    m = min(num_anchors, n)
    k = min(num_neighbors, n - 1)
    pick = torch.randperm(n, generator=generator, device="cpu")[:m].to(pool.device)  # positions in pool
    anchors = pool[pick]
    with torch.no_grad():
        unit = F.normalize(instances[pool].float(), dim=-1)
        sim = unit[pick] @ unit.T  # [M, n]
        sim[torch.arange(m, device=sim.device), pick] = -float("inf")  # not its own neighbour
        nbrs = pool[sim.topk(k, dim=1).indices]  # [M, K]
    s_anchor = semantics[anchors][:, None, :]  # [M, 1, Ds]
    s_nbrs = semantics[nbrs]  # [M, K, Ds]
    if expand is not None:
        s_anchor, s_nbrs = expand(s_anchor), expand(s_nbrs)
    return (1 - F.cosine_similarity(s_nbrs, s_anchor.expand_as(s_nbrs), dim=-1, eps=1e-8)).mean()


# ------------------------------------------------------------------------------------- geometry
def depth_loss(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean ``|pred - target|`` over valid pixels; ``pred``, ``target`` ``[S, H, W]`` in one (normalised) unit."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have one shape")
    if valid is None:
        valid = target > 0
    if not bool(valid.any()):
        return pred.sum() * 0.0
    return (pred - target.to(pred.dtype)).abs()[valid].mean()


def camera_loss(pose_encodings: list[Tensor], target: Tensor, gamma: float = 0.6) -> Tensor:
    """L1 between the camera head's pose encodings ``[S, 9]`` (one per refinement iteration) and ``target [S, 9]``.

    Iteration ``i`` of ``n`` is weighted ``gamma^(n-1-i)`` (the last counts most; weights normalised to
    sum 1). The quaternion part takes the nearer of ``q`` and ``-q`` (both are the same rotation).
    """
    if not pose_encodings:
        raise ValueError("camera_loss needs at least one pose encoding")
    n = len(pose_encodings)
    weights = [gamma ** (n - 1 - i) for i in range(n)]
    total = 0.0
    for w, enc in zip(weights, pose_encodings):
        if enc.shape != target.shape or enc.shape[-1] != 9:
            raise ValueError(f"pose encodings must be [S, 9] like the target, got {tuple(enc.shape)} vs "
                             f"{tuple(target.shape)}")
        t = (enc[..., :3] - target[..., :3]).abs().mean()
        q, qt = enc[..., 3:7], target[..., 3:7]
        r = torch.minimum((q - qt).abs().sum(-1), (q + qt).abs().sum(-1)).mean() / 4
        f = (enc[..., 7:] - target[..., 7:]).abs().mean()
        total = total + w * (t + r + f)
    return total / math.fsum(weights)


def total_loss(terms: dict[str, Tensor], config: LossConfig, step: int | None = None) -> Tensor:
    """``Σ weight * term`` over the computed terms with a non-zero weight (at ``step``: see ``LossConfig.start``)."""
    weights = config.weights(step)
    out = None
    for name, value in terms.items():
        w = weights.get(name, 0.0)
        if w:
            out = w * value if out is None else out + w * value
    if out is None:
        raise ValueError("no loss term with a non-zero weight was computed")
    return out
