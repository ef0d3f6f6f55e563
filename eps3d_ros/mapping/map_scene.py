"""The whole map as a panoptic :class:`~eps3d_ros.panoptic.Scene`, so clouds, scene files, ``eps3d
query/export/render`` work on it unchanged.

Each map point becomes a small opaque Gaussian (isotropic, scale = half its object's voxel size,
colour = its fused colour as the DC term). Objects keep their map ids: ``SceneObject.id`` = map id,
``instance_ids`` = map id on things' points (0 on stuff), ``cluster_ids`` = ``instance_ids``.
Semantic features are ``[N, K]``: each point carries its object's class distribution over the
vocabulary (normalised class evidence), and the semantic space maps it through the class prototypes
(``W = prototypes^T``, ``b = 0``), so per-point relevance and relabelling of the scene still work.
Object embeddings are the map objects' fused embeddings: ``Scene.query`` answers as the map does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..conventions import SH_C0
from ..panoptic.config import PanopticConfig
from ..panoptic.scene import UNKNOWN, Scene, SceneObject, SplatParams
from ..panoptic.semantic_space import SemanticSpace
from .map_object import MapObject

MAP_OPACITY = 1.0


def map_scene(objects: Sequence[MapObject], vocabulary: Sequence[str], stuff: frozenset[str],
              prototypes: torch.Tensor, text_encoder: Any = None, metadata: dict[str, Any] | None = None) -> Scene:
    """A :class:`Scene` of ``objects`` (in id order) labelled in ``vocabulary`` with ``prototypes [K, D]``."""
    vocab = tuple(vocabulary)
    if not vocab:
        raise ValueError("the map has no vocabulary yet (no window integrated): nothing to make a scene of")
    protos = prototypes.detach().float().cpu()
    K, D = protos.shape
    index = {name: k for k, name in enumerate(vocab)}
    objs = sorted(objects, key=lambda o: o.id)
    sizes = np.array([o.point_count for o in objs], dtype=np.int64)
    n = int(sizes.sum())
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    owner = np.repeat(np.arange(len(objs)), sizes)  # [N] object position of each point

    label_ids = np.array([index.get(o.label, UNKNOWN) for o in objs], dtype=np.int64)
    dist = np.zeros((len(objs), K), dtype=np.float32)  # class distribution per object
    for i, o in enumerate(objs):
        ev = np.array([max(o.class_evidence.get(name, 0.0), 0.0) for name in vocab])
        if ev.sum() > 0:
            dist[i] = ev / ev.sum()
        elif label_ids[i] >= 0:
            dist[i, label_ids[i]] = 1.0
        else:
            dist[i] = 1.0 / K
    ids = np.array([o.id if o.is_thing else 0 for o in objs], dtype=np.int64)

    def cat(arrs: list[np.ndarray], shape: tuple[int, ...], dtype) -> np.ndarray:
        return np.concatenate(arrs).astype(dtype) if arrs else np.zeros((0, *shape), dtype)

    means = cat([o.points for o in objs], (3,), np.float32)
    colors = cat([o.colors for o in objs], (3,), np.float32)
    pw = cat([o.point_weights for o in objs], (), np.float32)
    weights = (pw / pw.mean()).astype(np.float32) if n and pw.mean() > 0 else np.ones(n, np.float32)
    scales = np.repeat(np.array([o.voxel_size / 2 for o in objs], np.float32), sizes)[:, None].repeat(3, 1) if n \
        else np.zeros((0, 3), np.float32)
    splats = SplatParams(scales=np.ascontiguousarray(scales, dtype=np.float32),
                         rotations=np.tile(np.array([0.0, 0.0, 0.0, 1.0], np.float32), (n, 1)),
                         harmonics=((colors - 0.5) / SH_C0)[:, :, None].astype(np.float32))
    scene_objects = tuple(
        SceneObject(id=o.id, label=o.label, label_id=int(label_ids[i]), is_thing=o.is_thing, score=o.score,
                    centroid=o.centroid, aabb_min=o.aabb_min, aabb_max=o.aabb_max, obb=o.obb, num_points=o.point_count,
                    embedding=o.embedding, indices=np.arange(offsets[i], offsets[i + 1], dtype=np.int64))
        for i, o in enumerate(objs))
    config = PanopticConfig(vocabulary=list(vocab), stuff=sorted(stuff), min_object_points=1, outlier_removal=False)
    return Scene(
        means=means, opacities=np.full(n, MAP_OPACITY, np.float32), colors=colors, weights=weights,
        semantic_features=dist[owner] if n else np.zeros((0, K), np.float32),
        instance_features=np.zeros((n, 1), np.float32), cluster_ids=ids[owner] if n else np.zeros(0, np.int64),
        labels=label_ids[owner] if n else np.zeros(0, np.int64),
        label_scores=np.array([o.score for o in objs], np.float32)[owner] if n else np.zeros(0, np.float32),
        instance_ids=ids[owner] if n else np.zeros(0, np.int64), objects=scene_objects, vocabulary=vocab,
        stuff=frozenset(stuff), prototypes=protos, space=SemanticSpace(protos.T.contiguous(), torch.zeros(D)),
        config=config, text_encoder=text_encoder, metadata=dict(metadata or {}), splats=splats)
