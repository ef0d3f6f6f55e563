"""Panoptic inference: from predicted Gaussians to a labelled, queryable scene.

    scene = build_scene(prediction, model, create_text_encoder(), PanopticConfig(vocabulary=[...]))
    scene.query("red mug")   # ranked objects with centroids and boxes
"""

from .build import build_scene, relabel_scene
from .clustering import ClusteringConfig, InstanceClusters, cluster_instances
from .config import PanopticConfig
from .geometry import OrientedBox
from .scene import QueryMatch, Scene, SceneObject, SplatParams
from .semantic_space import SemanticSpace
from ..geometry.slerp import slerp, weighted_slerp_pool
from .views2d import PanopticViews, render_panoptic_views

__all__ = [
    "build_scene",
    "relabel_scene",
    "ClusteringConfig",
    "InstanceClusters",
    "cluster_instances",
    "PanopticConfig",
    "OrientedBox",
    "QueryMatch",
    "Scene",
    "SceneObject",
    "SplatParams",
    "SemanticSpace",
    "slerp",
    "weighted_slerp_pool",
    "PanopticViews",
    "render_panoptic_views",
]
