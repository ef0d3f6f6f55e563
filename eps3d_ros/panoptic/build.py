"""From a network prediction to a :class:`Scene`: labels, instances, objects.

Steps (each Gaussian is one row):

1. semantic label = argmax over the vocabulary of ``softmax(logit_scale * cos(expand(s), prototype))``,
   computed in the 32-d feature space (:class:`SemanticSpace`); below ``unknown_threshold`` → unknown;
2. instance clusters = the clusterer (``panoptic.clustering.algorithm``, HDBSCAN by default) on a seeded subsample
   of the instance features + nearest centroid;
3. each cluster takes the opacity-weighted majority label of its Gaussians; clusters of stuff classes are
   not instances (stuff is one region per class, defined by the per-Gaussian labels);
4. per object: PE3R-style outlier removal, geometry, and one embedding pooled by area-weighted slerp.

Labels and instance clustering run on the prediction's device (torch); outlier removal (one k-d tree for
all objects), votes and pooling (all objects at once, in the 33-d coefficient space of the expansion,
:mod:`.pooling`) are vectorised over objects on the CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..conventions import SH_C0
from ..text import TextEncoder
from .clustering import cluster_instances
from .clustering import warm_up as cluster_warm_up
from .config import PanopticConfig
from .geometry import grouped_knn_outliers, grouped_neighbours, oriented_box
from .merging import merge_clusters
from .pooling import pool_embeddings
from .scene import UNKNOWN, Scene, SceneObject, SplatParams
from .semantic_space import SemanticSpace
from .timing import StageClock

log = logging.getLogger(__name__)



def build_scene(
    prediction: Any,
    space: SemanticSpace | Any,
    text_encoder: TextEncoder,
    config: PanopticConfig | None = None,
    batch_index: int = 0,
    metadata: dict[str, Any] | None = None,
    timings: dict[str, float] | None = None,
) -> Scene:
    """``prediction``: an :class:`~eps3d_ros.model.EPS3DOutput` or its :class:`~eps3d_ros.model.Gaussians`;
    ``space``: a :class:`SemanticSpace` or the :class:`~eps3d_ros.model.EPS3D` model. ``timings``: seconds
    per step are added to it (``gather``, ``labels``, the clustering's steps, ``votes``, ``outliers``,
    ``pooling``, ``objects``)."""
    g = getattr(prediction, "gaussians", prediction)
    # The stage's float32/float64 maths must not be cast to half precision by a caller's autocast.
    with torch.autocast(device_type=g.means.device.type, enabled=False):
        return _build(g, space, text_encoder, config, batch_index, metadata, timings)


def _build(g: Any, space: SemanticSpace | Any, text_encoder: TextEncoder, config: PanopticConfig | None,
           batch_index: int, metadata: dict[str, Any] | None, timings: dict[str, float] | None) -> Scene:
    cfg = (config or PanopticConfig()).validate()
    if not isinstance(space, SemanticSpace):
        space = SemanticSpace.from_model(space)
    if not 0 <= batch_index < g.means.shape[0]:
        raise ValueError(f"batch_index {batch_index} out of range for a batch of {g.means.shape[0]}")

    def take(t: torch.Tensor) -> np.ndarray:
        return t[batch_index].detach().float().cpu().numpy()

    clock = StageClock(timings, g.means.device)

    means, opac = take(g.means), take(g.opacities)
    sem, ins = take(g.semantics), take(g.instances)
    for name, arr in (("means", means), ("semantic features", sem), ("instance features", ins), ("opacities", opac)):
        if not np.isfinite(arr).all():
            raise ValueError(f"prediction has NaN or infinite Gaussian {name}")
    colors = np.clip(0.5 + SH_C0 * take(g.harmonics[..., 0]), 0.0, 1.0)
    splats = SplatParams(scales=take(g.scales), rotations=take(g.rotations), harmonics=take(g.harmonics))
    weights = _weights(opac, np.sort(splats.scales, axis=-1), cfg.pooling_weight)
    clock.stop("gather")
    labelled = label_gaussians(g.semantics[batch_index].detach().float(), space, text_encoder, cfg)
    clock.stop("labels")
    clusters = cluster_instances(g.instances[batch_index].detach().float(), g.opacities[batch_index].detach().float(),
                                 cfg.clustering, timings)
    return assemble_scene(
        means=means, opacities=opac, colors=colors, weights=weights, semantic_features=sem, instance_features=ins,
        cluster_ids=clusters.ids.numpy(), space=space, text_encoder=text_encoder, config=cfg,
        metadata={"clustered_samples": clusters.sample_size, **(metadata or {})}, splats=splats, labelled=labelled,
        timings=timings,
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


def label_gaussians(semantic_features: torch.Tensor, space: SemanticSpace, text_encoder: TextEncoder,
                    config: PanopticConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-Gaussian ``(labels [N] int64, scores [N] float32)`` on the features' device: the most probable
    class of ``softmax(logit_scale * cos)`` (``-1`` = unknown below ``config.unknown_threshold``)."""
    vocab = [v.strip() for v in config.vocabulary]
    n = semantic_features.shape[0]
    if n == 0:
        return np.full(0, UNKNOWN, dtype=np.int64), np.zeros(0, dtype=np.float32)
    dev = semantic_features.device
    prototypes = text_encoder.prototypes(vocab).float().to(dev)
    logit_scale = float(getattr(getattr(text_encoder, "config", None), "logit_scale", 1 / 0.07))
    on_dev = SemanticSpace(space.weight.to(dev), space.bias.to(dev))
    logits = logit_scale * on_dev.cosine(semantic_features.float(), prototypes)
    top, best = logits.max(dim=-1)
    best_p = 1.0 / torch.exp(logits - top[:, None]).sum(-1)  # the softmax at its argmax (4x less work)
    scores = best_p.cpu().numpy().astype(np.float32)
    labels = np.where(scores >= config.unknown_threshold, best.cpu().numpy(), UNKNOWN).astype(np.int64)
    return labels, scores


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
    text_encoder: TextEncoder,
    config: PanopticConfig,
    metadata: dict[str, Any] | None = None,
    splats: SplatParams | None = None,
    labelled: tuple[np.ndarray, np.ndarray] | None = None,
    timings: dict[str, float] | None = None,
) -> Scene:
    """Label, group and summarise already-clustered Gaussians (shared by build and relabelling).
    ``labelled``: ``(labels, scores)`` already computed by :func:`label_gaussians` (else computed here)."""
    clock = StageClock(timings)
    vocab = tuple(v.strip() for v in config.vocabulary)
    stuff = frozenset(s.strip() for s in config.stuff)
    prototypes = text_encoder.prototypes(list(vocab)).float().cpu()
    if labelled is None:
        labels, scores = label_gaussians(torch.from_numpy(np.ascontiguousarray(semantic_features)), space,
                                         text_encoder, config)
    else:
        labels, scores = labelled
    clock.stop("labels")
    is_stuff_label = np.array([v in stuff for v in vocab] + [False])  # index -1 → unknown → not stuff

    groups, instance_ids = _object_groups(means, opacities, instance_features, cluster_ids, labels,
                                          is_stuff_label, len(vocab), config, clock)
    clock.stop("votes")
    embeddings = _pool_objects(groups, semantic_features, weights, space, config)
    clock.stop("pooling")
    objects = tuple(_make_object(i + 1, label, is_thing, members, core, vocab, means, weights, labels, scores, emb)
                    for i, ((label, is_thing, members, core), emb) in enumerate(zip(groups, embeddings)))
    clock.stop("objects")
    return Scene(
        means=means, opacities=opacities, colors=colors, weights=weights, semantic_features=semantic_features,
        instance_features=instance_features, cluster_ids=cluster_ids, labels=labels, label_scores=scores,
        instance_ids=instance_ids, objects=objects, vocabulary=vocab, stuff=stuff, prototypes=prototypes,
        space=space, config=config, text_encoder=text_encoder, metadata=dict(metadata or {}), splats=splats,
    )


def _object_groups(means: np.ndarray, opacities: np.ndarray, instance_features: np.ndarray, cluster_ids: np.ndarray,
                   labels: np.ndarray, is_stuff_label: np.ndarray, num_labels: int, config: PanopticConfig,
                   clock: StageClock) -> tuple[list[tuple[int, bool, np.ndarray, np.ndarray]], np.ndarray]:
    """``([(label, is_thing, members, core)] in object id order, instance id per Gaussian)``: things from the
    clusters (outliers removed, over-split ones merged), then one region per stuff class."""
    # Things: one object per cluster whose opacity-weighted majority label is a known thing class.
    n = means.shape[0]
    instance_ids = np.zeros(n, dtype=np.int64)
    cids = np.asarray(cluster_ids, dtype=np.int64)
    clusters = np.unique(cids[cids > 0])
    slot = np.searchsorted(clusters, cids)  # cluster index of each clustered Gaussian
    votes = _votes(labels, opacities, np.where(cids > 0, slot, -1), len(clusters), num_labels)
    thing = (votes != UNKNOWN) & ~is_stuff_label[votes]
    member = (cids > 0) & thing[np.minimum(slot, max(len(clusters) - 1, 0))] if len(clusters) else np.zeros(n, bool)
    clock.stop("votes")
    core = member.copy()  # the points an object's geometry comes from (its densest cluster)
    spacing = np.zeros(len(clusters))  # typical point spacing of each cluster (0: unknown)
    if member.any() and (config.outlier_removal or config.core_link_factor > 0 or config.merge_instances):
        idx = np.nonzero(member)[0]
        nb = grouped_neighbours(means[idx], slot[idx], config.outlier_neighbors, workers=torch.get_num_threads())
        inlier = ~nb.outliers(config.outlier_std_ratio) if config.outlier_removal else np.ones(len(idx), bool)
        member[idx[~inlier]] = False
        core[:] = False
        core[idx[nb.densest_component(config.core_link_factor, keep=inlier)]] = True
        spacing[np.unique(slot[idx])] = nb.spacing
    clock.stop("outliers")
    merged = np.arange(len(clusters))  # group of each cluster
    if config.merge_instances and len(clusters) > 1:
        idx = np.nonzero(member)[0]
        merged = merge_clusters(means[idx], instance_features[idx], slot[idx], core[idx],
                                np.where(thing, votes, UNKNOWN), spacing,
                                min_similarity=config.merge_min_similarity, contact_factor=config.merge_contact_factor,
                                min_contact=config.merge_min_contact, workers=torch.get_num_threads())
    clock.stop("merge")
    group = np.where(member, merged[np.minimum(slot, max(len(clusters) - 1, 0))], -1) if len(clusters) else \
        np.full(n, -1, dtype=np.int64)
    num_groups = int(merged.max()) + 1 if len(clusters) else 0
    counts = np.bincount(group[member], minlength=num_groups)
    group_label = np.full(num_groups, UNKNOWN, dtype=np.int64)
    group_label[merged[thing]] = votes[thing]  # merged clusters share one label
    kept = [g for g in range(num_groups) if group_label[g] != UNKNOWN and counts[g] >= config.min_object_points]
    groups: list[tuple[int, bool, np.ndarray, np.ndarray]] = []  # (label, is_thing, members, core) in id order
    if kept:
        order = np.argsort(np.where(member, group, num_groups), kind="stable")
        start = np.concatenate([[0], np.cumsum(counts)])
        for g in kept:
            members = order[start[g]:start[g + 1]]
            groups.append((int(group_label[g]), True, members, members[core[members]]))
            instance_ids[members] = len(groups)
    # Stuff: one region per stuff class, of the Gaussians that no thing took.
    for label in range(num_labels):
        if not is_stuff_label[label]:
            continue
        members = np.nonzero((labels == label) & (instance_ids == 0))[0]
        if len(members) >= config.min_object_points:
            groups.append((label, False, members, members))
    return groups, instance_ids


def _votes(labels: np.ndarray, weights: np.ndarray, slot: np.ndarray, clusters: int, k: int) -> np.ndarray:
    """Opacity-weighted majority label ``[clusters]`` of each cluster (``slot`` -1 = not clustered); a
    cluster whose Gaussians are all unknown votes ``UNKNOWN``. Ties: the smaller label."""
    if clusters == 0:
        return np.zeros(0, dtype=np.int64)
    ok = (slot >= 0) & (labels != UNKNOWN)
    table = np.bincount(slot[ok] * k + labels[ok], weights=weights[ok], minlength=clusters * k).reshape(clusters, k)
    known = np.bincount(slot[ok], minlength=clusters) > 0
    return np.where(known, np.argmax(table, axis=1), UNKNOWN).astype(np.int64)


def _pool_objects(groups: list[tuple[int, bool, np.ndarray, np.ndarray]], sem: np.ndarray, weights: np.ndarray,
                  space: SemanticSpace, config: PanopticConfig) -> np.ndarray:
    """``[M, D]`` float32: every object's embedding in one pass (see :mod:`.pooling`)."""
    if not groups:
        return np.zeros((0, space.dim), dtype=np.float32)
    members = np.concatenate([g[2] for g in groups])
    segments = np.repeat(np.arange(len(groups)), [len(g[2]) for g in groups])
    out = pool_embeddings(torch.from_numpy(np.ascontiguousarray(sem[members])),
                          torch.from_numpy(np.ascontiguousarray(weights[members])), torch.from_numpy(segments),
                          len(groups), space, config.pooling, config.pooling_chunk)
    return out.numpy()


def _make_object(
    obj_id: int, label: int, is_thing: bool, members: np.ndarray, core: np.ndarray, vocab: tuple[str, ...],
    means: np.ndarray, weights: np.ndarray, labels: np.ndarray, scores: np.ndarray, embedding: np.ndarray,
) -> SceneObject:
    """Score from all ``members``; centroid and boxes from ``core`` (its densest cluster; all members if empty)."""
    w = weights[members].astype(np.float64)
    w_sum = w.sum()
    wn = w / w_sum if w_sum > 0 else np.full(len(w), 1.0 / len(w))
    agree = labels[members] == label
    score = float((wn * np.where(agree, scores[members], 0.0)).sum())
    geo = core if len(core) else members
    pts = means[geo].astype(np.float64)
    wc = weights[geo].astype(np.float64)
    wc = wc / wc.sum() if wc.sum() > 0 else np.full(len(wc), 1.0 / len(wc))
    return SceneObject(
        id=obj_id, label=vocab[label], label_id=label, is_thing=is_thing, score=score,
        centroid=(wc[:, None] * pts).sum(0), aabb_min=pts.min(0), aabb_max=pts.max(0), obb=oriented_box(pts),
        num_points=int(len(members)), embedding=embedding, indices=members.copy(),
    )


def relabel_scene(scene: Scene, vocabulary: Sequence[str], stuff: Sequence[str] | None = None,
                  text_encoder: TextEncoder | None = None) -> Scene:
    """The same Gaussians labelled with another vocabulary (no network run, same instance clusters); ``stuff``
    and ``text_encoder`` default to the scene's."""
    cfg = PanopticConfig(**{**scene.config.__dict__, "vocabulary": list(vocabulary),
                            "stuff": list(scene.stuff if stuff is None else stuff)}).validate()
    encoder = text_encoder or scene.text_encoder
    if encoder is None:
        raise RuntimeError("relabelling needs a text encoder")
    return assemble_scene(
        means=scene.means, opacities=scene.opacities, colors=scene.colors, weights=scene.weights,
        semantic_features=scene.semantic_features, instance_features=scene.instance_features,
        cluster_ids=scene.cluster_ids, space=scene.space, text_encoder=encoder, config=cfg,
        metadata=scene.metadata, splats=scene.splats,
    )


def warm_up(config: PanopticConfig | None = None, device: str | torch.device = "cpu") -> None:
    """Pay the stage's one-off costs (imports, first kernel calls and allocations) before the first window:
    clustering of seeded random features on ``device`` with ``config``'s backend, outlier removal and
    pooling of random objects."""
    cfg = config or PanopticConfig()
    cluster_warm_up(cfg.clustering, device)
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(600, 3, generator=g).double().numpy()
    grouped_knn_outliers(pts, np.arange(600) % 3, cfg.outlier_neighbors, cfg.outlier_std_ratio,
                         workers=torch.get_num_threads())
    space = SemanticSpace(torch.randn(512, 32, generator=g), torch.randn(512, generator=g))
    pool_embeddings(torch.randn(600, 32, generator=g), torch.rand(600, generator=g), torch.arange(600) % 3, 3, space,
                    cfg.pooling, cfg.pooling_chunk)
