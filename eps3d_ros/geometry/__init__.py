"""Geometry of cameras and poses, without ROS: similarities (Sim(3), Umeyama), the metric alignment of a
prediction, the views of a scene, transforms over time (TF semantics), pose histories and spherical
interpolation of unit vectors.

    from eps3d_ros.geometry import Sim3, umeyama_sim3, metric_alignment, TransformTree, slerp
"""

from .alignment import Alignment, camera_centers, depth_scale_ratio, metric_alignment, transform_gaussians
from .cameras import Cameras, cameras_from_prediction
from .pose_history import PoseHistory
from .similarity import AlignmentError, Sim3, nearest_rotation, umeyama_sim3
from .slerp import slerp, weighted_slerp_pool
from .transform_tree import TransformTree, transform_to_matrix

__all__ = [
    "Alignment",
    "AlignmentError",
    "Cameras",
    "PoseHistory",
    "Sim3",
    "TransformTree",
    "camera_centers",
    "cameras_from_prediction",
    "depth_scale_ratio",
    "metric_alignment",
    "nearest_rotation",
    "slerp",
    "transform_gaussians",
    "transform_to_matrix",
    "umeyama_sim3",
    "weighted_slerp_pool",
]
