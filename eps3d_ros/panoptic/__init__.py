"""Panoptic inference: from predicted Gaussians to a labelled, queryable scene.

    scene = build_scene(prediction, model, create_text_encoder(), PanopticConfig(vocabulary=[...]))
    scene.query("red mug")   # ranked objects with centroids and boxes
"""

from .build import build_scene, relabel_scene
from .clusterers import Clusterer, clusterer_names, create_clusterer, register_clusterer
from .clustering import ClusteringConfig, InstanceClusters, cluster_instances
from .hdbscan_clusterer import HdbscanSettings
from .config import PanopticConfig
from .geometry import OrientedBox
from .scene import QueryMatch, Scene, SceneObject, SplatParams
from .semantic_space import SemanticSpace
from .views2d import PanopticViews, render_panoptic_views

__all__ = [
    "build_scene",
    "relabel_scene",
    "Clusterer",
    "ClusteringConfig",
    "HdbscanSettings",
    "clusterer_names",
    "create_clusterer",
    "register_clusterer",
    "InstanceClusters",
    "cluster_instances",
    "PanopticConfig",
    "OrientedBox",
    "QueryMatch",
    "Scene",
    "SceneObject",
    "SplatParams",
    "SemanticSpace",
    "PanopticViews",
    "render_panoptic_views",
]
