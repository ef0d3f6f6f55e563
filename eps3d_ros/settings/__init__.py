"""The run-time settings, one dataclass tree read by the node (one ROS parameter per leaf), the CLI and
``config/eps3d.yaml``: ``model``, ``text``, ``panoptic`` (+ ``clustering``), ``pipeline``, ``output``, ``map``.

    from eps3d_ros.settings import Eps3dConfig
"""

from .tree import (
    AUTO,
    RENAMED,
    RUNTIME_SETTINGS,
    Eps3dConfig,
    ModelSourceConfig,
    OutputConfig,
    PipelineConfig,
    TextSettings,
    config_leaves,
)

__all__ = [
    "AUTO",
    "RENAMED",
    "RUNTIME_SETTINGS",
    "Eps3dConfig",
    "ModelSourceConfig",
    "OutputConfig",
    "PipelineConfig",
    "TextSettings",
    "config_leaves",
]
