"""Files in and out: scene files, 3DGS PLY export, PNG figures, frames from image folders, rosbag2s and datasets.

    from eps3d_ros.io import save_scene, load_scene, write_gaussian_ply, write_figures, frames_from_images

* :mod:`.scene_file`: the versioned scene file (safetensors + JSON header) and ``SceneFile`` / ``Cameras``;
* :mod:`.ply`: the 3D Gaussian splatting PLY layout (+ ``label`` / ``instance``), writer and reader;
* :mod:`.figures`: RGB / semantic / instance renders of the views with a legend (Pillow);
* :mod:`.frame_sources`, :mod:`.image_folder`, :mod:`.bag_frames`, :mod:`.dataset_frames`: frames from image
  folders, rosbag2s and dataset scenes, fitted to the network by the intake of :mod:`eps3d_ros.frames.intake`.

Names are imported on first use, so ``import eps3d_ros.io`` stays light (no torch until needed).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "scene_file": ["FORMAT", "FORMAT_VERSION", "Cameras", "SceneFile", "SceneFileError", "save_scene", "load_scene",
                   "read_scene_header", "attach_text_encoder", "cameras_from_prediction", "reconstruct_scene_file"],
    "ply": ["PlyGaussians", "write_gaussian_ply", "read_ply", "read_gaussian_ply"],
    "figures": ["ViewImages", "render_views", "colorize_labels", "legend_image", "overview_image", "write_figures"],
    "frame_sources": ["FrameSourceError", "FrameSet"],
    "image_folder": ["guess_intrinsics", "read_calibration", "read_intrinsics", "scale_intrinsics", "list_images",
                     "frames_from_images"],
    "bag_frames": ["frames_from_bag"],
    "dataset_frames": ["frames_from_dataset"],
    "map_file": ["save_map", "load_map"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
