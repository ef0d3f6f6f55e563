"""Data for tests, benchmarks and demos: seeded synthetic tabletop scenes and room sequences with exact ground truth."""

from eps3d_ros.data.scene_layout import (
    CLASS_NAMES,
    COLOURS,
    STUFF_CLASSES,
    THING_CLASSES,
    Box,
    Frustum,
    SceneObject,
    Sphere,
    Surface,
)
from eps3d_ros.data.synthetic import SyntheticScene, SyntheticSequence, generate_scene, generate_sequence, look_at_pose

__all__ = [
    "CLASS_NAMES",
    "COLOURS",
    "STUFF_CLASSES",
    "THING_CLASSES",
    "Box",
    "Frustum",
    "SceneObject",
    "Sphere",
    "Surface",
    "SyntheticScene",
    "SyntheticSequence",
    "generate_scene",
    "generate_sequence",
    "look_at_pose",
]
