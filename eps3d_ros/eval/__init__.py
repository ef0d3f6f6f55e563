"""Metrics EPS3D reports: semantic mIoU / accuracy, instance P/R/F, panoptic PQ/SQ/RQ, cameras, PSNR.

Cameras (``camera``: relative rotation / translation-direction errors) and image fidelity (``image``:
PSNR) take poses and images. Every other metric takes integer label arrays (numpy or torch) of any
shape: 2D maps ``[H, W]``, stacks of views ``[S, H, W]``, or per-point labels ``[N]`` (the 3D variant). ``protocol`` adds EPS3D's 2D
evaluation protocol (nearest resize to 256², 25-pixel border crop) and one-call evaluations.
Each module's docstring lists its definition choices.

Evaluations that run the pipeline (imported from their modules, they load more): :mod:`.model_eval` (a model
folder on held-out synthetic scenes, ``eps3d evaluate``), :mod:`.scene_memory` (the object map over synthetic
robot walks) and :mod:`.oracle` (the ground truth through the real panoptic stage: the memory measured apart
from the network).
"""

from eps3d_ros.eval.camera import relative_pose_errors, rotation_angle_deg
from eps3d_ros.eval.image import psnr
from eps3d_ros.eval.object_match import ObjectMatch, TrueObject, match_objects, true_objects
from eps3d_ros.eval.instance import instance_iou_matrix, instance_prf, match_segments, prf_from_counts
from eps3d_ros.eval.panoptic import panoptic_counts, panoptic_quality, summarize_panoptic
from eps3d_ros.eval.protocol import (
    REFERENCE_BORDER,
    REFERENCE_SIZE,
    evaluate_panoptic_2d,
    evaluate_panoptic_3d,
    reference_protocol,
    resize_nearest,
)
from eps3d_ros.eval.semantic import confusion_matrix, per_class_iou, semantic_accuracy, semantic_miou

__all__ = [
    "ObjectMatch",
    "TrueObject",
    "match_objects",
    "true_objects",
    "relative_pose_errors",
    "rotation_angle_deg",
    "psnr",
    "confusion_matrix",
    "per_class_iou",
    "semantic_miou",
    "semantic_accuracy",
    "instance_iou_matrix",
    "match_segments",
    "instance_prf",
    "prf_from_counts",
    "panoptic_counts",
    "panoptic_quality",
    "summarize_panoptic",
    "REFERENCE_SIZE",
    "REFERENCE_BORDER",
    "resize_nearest",
    "reference_protocol",
    "evaluate_panoptic_2d",
    "evaluate_panoptic_3d",
]
