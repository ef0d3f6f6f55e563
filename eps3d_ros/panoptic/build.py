"""From a network prediction to a :class:`Scene`: labels, instances, objects.

Steps (each Gaussian is one row):

1. semantic label = argmax over the vocabulary of ``softmax(logit_scale * cos(expand(s), prototype))``,
   computed in the 32-d feature space (:class:`SemanticSpace`); below ``unknown_threshold`` → unknown;
2. instance clusters = HDBSCAN on a seeded subsample of the instance features + nearest centroid;
3. each cluster takes the opacity-weighted majority label of its Gaussians; clusters of stuff classes are
   not instances (stuff is one region per class, defined by the per-Gaussian labels);
4. per object: PE3R-style outlier removal, geometry, and one embedding pooled by area-weighted slerp.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from .clustering import cluster_instances
from .config import PanopticConfig
from .geometry import knn_outliers, oriented_box
from .scene import UNKNOWN, Scene, SceneObject, SplatParams, TextEmbedder
from .semantic_space import SemanticSpace
from .slerp import weighted_slerp_pool

log = logging.getLogger(__name__)

SH_C0 = 0.28209479177387814  # degree-0 real spherical harmonic


def build_scene(
    prediction: Any,
    space: SemanticSpace | Any,
    text_encoder: TextEmbedder,
    config: PanopticConfig | None = None,
    batch_index: int = 0,
    metadata: dict[str, Any] | None = None,
) -> Scene:
    """``prediction``: an :class:`~eps3d_ros.model.EPS3DOutput` or its :class:`~eps3d_ros.model.Gaussians`;
    ``space``: a :class:`SemanticSpace` or the :class:`~eps3d_ros.model.EPS3D` model."""
    cfg = (config or PanopticConfig()).validate()
    if not isinstance(space, SemanticSpace):
        space = SemanticSpace.from_model(space)
    g = getattr(prediction, "gaussians", prediction)
    if not 0 <= batch_index < g.means.shape[0]:
        raise ValueError(f"batch_index {batch_index} out of range for a batch of {g.means.shape[0]}")

    def take(t: torch.Tensor) -> np.ndarray:
        return t[batch_index].detach().float().cpu().numpy()

    means, opac = take(g.means), take(g.opacities)
    sem, ins = take(g.semantics), take(g.instances)
    for name, arr in (("means", means), ("semantic features", sem), ("instance features", ins), ("opacities", opac)):
        if not np.isfinite(arr).all():
            raise ValueError(f"prediction has NaN or infinite Gaussian {name}")
    colors = np.clip(0.5 + SH_C0 * take(g.harmonics[..., 0]), 0.0, 1.0)
    splats = SplatParams(scales=take(g.scales), rotations=take(g.rotations), harmonics=take(g.harmonics))
    weights = _weights(opac, np.sort(splats.scales, axis=-1), cfg.pooling_weight)
    clusters = cluster_instances(torch.from_numpy(ins), torch.from_numpy(opac), cfg.clustering)
    return assemble_scene(
        means=means, opacities=opac, colors=colors, weights=weights, semantic_features=sem, instance_features=ins,
        cluster_ids=clusters.ids.numpy(), space=space, text_encoder=text_encoder, config=cfg,
        metadata={"hdbscan_samples": clusters.sample_size, **(metadata or {})}, splats=splats,
    )


def _weights(opacities: np.ndarray, sorted_scales: np.ndarray, kind: str) -> np.ndarray:
    if kind == "uniform":
        return np.ones_like(opacities)
    if kind == "opacity":
        return opacities.copy()
    # "area": opacity x footprint of the two largest axes (pi s1 s2), normalised to mean 1 for readability.
    area = opacities * np.pi * sorted_scales[:, 2] * sorted_scales[:, 1]
    m = float(area.mean()) if area.size else 1.0
    return (area / m if m > 0 else np.ones_like(area)).astype(np.float32)


def assemble_scene(
    *,
    means: np.ndarray,
    opacities: np.ndarray,
    colors: np.ndarray,
    weights: np.ndarray,
    semantic_features: np.ndarray,
    instance_features: np.ndarray,
    cluster_ids: np.ndarray,
    space: SemanticSpace,
    text_encoder: TextEmbedder,
    config: PanopticConfig,
    metadata: dict[str, Any] | None = None,
    splats: SplatParams | None = None,
) -> Scene:
    """Label, group and summarise already-clustered Gaussians (shared by build and relabelling)."""
    vocab = tuple(v.strip() for v in config.vocabulary)
    stuff = frozenset(s.strip() for s in config.stuff)
    prototypes = text_encoder.prototypes(list(vocab)).float().cpu()
    n = means.shape[0]
    labels = np.full(n, UNKNOWN, dtype=np.int64)
    scores = np.zeros(n, dtype=np.float32)
    if n:
        logit_scale = float(getattr(getattr(text_encoder, "config", None), "logit_scale", 1 / 0.07))
        cos = space.cosine(torch.from_numpy(np.ascontiguousarray(semantic_features)), prototypes)
        prob = torch.softmax(logit_scale * cos, dim=-1)
        best_p, best = prob.max(dim=-1)
        scores = best_p.numpy().astype(np.float32)
        labels = np.where(scores >= config.unknown_threshold, best.numpy(), UNKNOWN).astype(np.int64)
    is_stuff_label = np.array([v in stuff for v in vocab] + [False])  # index -1 → unknown → not stuff

    instance_ids = np.zeros(n, dtype=np.int64)
    objects: list[SceneObject] = []
    next_id = 1
    for k in np.unique(cluster_ids[cluster_ids > 0]):
        members = np.nonzero(cluster_ids == k)[0]
        label = _vote(labels[members], opacities[members], len(vocab))  # opacity-weighted vote
        if label == UNKNOWN or is_stuff_label[label]:
            continue  # stuff is not split into instances; an all-unknown cluster names nothing
        if config.outlier_removal:
            members = members[~knn_outliers(means[members], config.outlier_neighbors, config.outlier_std_ratio)]
        if len(members) < config.min_object_points:
            continue
        obj = _make_object(next_id, label, True, members, vocab, means, weights, labels, scores,
                           semantic_features, space, config)
        objects.append(obj)
        instance_ids[members] = next_id
        next_id += 1
    for label in range(len(vocab)):
        if not is_stuff_label[label]:
            continue
        members = np.nonzero((labels == label) & (instance_ids == 0))[0]
        if len(members) >= config.min_object_points:
            objects.append(_make_object(next_id, label, False, members, vocab, means, weights, labels, scores,
                                        semantic_features, space, config))
            next_id += 1
    return Scene(
        means=means, opacities=opacities, colors=colors, weights=weights, semantic_features=semantic_features,
        instance_features=instance_features, cluster_ids=cluster_ids, labels=labels, label_scores=scores,
        instance_ids=instance_ids, objects=tuple(objects), vocabulary=vocab, stuff=stuff, prototypes=prototypes,
        space=space, config=config, text_encoder=text_encoder, metadata=dict(metadata or {}), splats=splats,
    )


def _vote(labels: np.ndarray, weights: np.ndarray, k: int) -> int:
    known = labels != UNKNOWN
    if not known.any():
        return UNKNOWN
    return int(np.argmax(np.bincount(labels[known], weights=weights[known], minlength=k)))


def _make_object(
    obj_id: int, label: int, is_thing: bool, members: np.ndarray, vocab: tuple[str, ...], means: np.ndarray,
    weights: np.ndarray, labels: np.ndarray, scores: np.ndarray, sem: np.ndarray, space: SemanticSpace,
    config: PanopticConfig,
) -> SceneObject:
    pts = means[members].astype(np.float64)
    w = weights[members].astype(np.float64)
    w_sum = w.sum()
    wn = w / w_sum if w_sum > 0 else np.full(len(w), 1.0 / len(w))
    agree = labels[members] == label
    score = float((wn * np.where(agree, scores[members], 0.0)).sum())
    return SceneObject(
        id=obj_id, label=vocab[label], label_id=label, is_thing=is_thing, score=score,
        centroid=(wn[:, None] * pts).sum(0), aabb_min=pts.min(0), aabb_max=pts.max(0), obb=oriented_box(pts),
        num_points=int(len(members)), embedding=_pool(sem[members], w, space, config), indices=members.copy(),
    )


def _pool(sem: np.ndarray, w: np.ndarray, space: SemanticSpace, config: PanopticConfig) -> np.ndarray:
    """One unit embedding for an object; chunked so that big objects never expand all rows at once."""
    parts, part_w = [], []
    for i in range(0, len(sem), config.pooling_chunk):
        e = space.embed(torch.from_numpy(np.ascontiguousarray(sem[i:i + config.pooling_chunk])))
        wi = torch.from_numpy(w[i:i + config.pooling_chunk]).float()
        if config.pooling == "slerp":
            p, pw = weighted_slerp_pool(e, wi)
        else:
            p, pw = torch.nn.functional.normalize((wi[:, None] * e).sum(0), dim=0), wi.sum()
        parts.append(p)
        part_w.append(pw)
    if len(parts) == 1:
        out = parts[0]
    elif config.pooling == "slerp":
        out, _ = weighted_slerp_pool(torch.stack(parts), torch.stack(part_w))
    else:
        out = torch.nn.functional.normalize((torch.stack(part_w)[:, None] * torch.stack(parts)).sum(0), dim=0)
    return out.numpy().astype(np.float32)
