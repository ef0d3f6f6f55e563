"""The EPS3D network: ``from eps3d_ros.model import EPS3D, EPS3DConfig``."""

from .checkpoint import CheckpointError, LoadReport
from .config import ConfigError, EPS3DConfig, list_presets
from .eps3d import EPS3D
from .inspection import inspect_checkpoint
from .outputs import EPS3DOutput, Gaussians

__all__ = [
    "EPS3D",
    "EPS3DConfig",
    "EPS3DOutput",
    "Gaussians",
    "ConfigError",
    "CheckpointError",
    "LoadReport",
    "inspect_checkpoint",
    "list_presets",
]
