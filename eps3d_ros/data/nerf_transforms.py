"""A capture described by an instant-ngp / nerfstudio ``transforms.json``.

Keys read (both tools' spellings)::

    fl_x, fl_y, cx, cy, w, h            shared pinhole intrinsics; ``camera_angle_x`` (+ ``camera_angle_y``)
                                        instead of focal lengths (instant-ngp, NeRF); any of them may be
                                        repeated per frame (nerfstudio's per-frame cameras)
    camera_model, k1, k2, k3, k4, p1, p2   OPENCV_FISHEYE is refused; small OPENCV distortion is used as
                                        pinhole with a note (undistort first for exact geometry)
    frames[]: file_path                 image path relative to the JSON's folder (an extension-less path
                                        gets .png, as the NeRF synthetic scenes do)
              transform_matrix          4x4 camera-to-world, OpenGL camera axes (x right, y up, z back)
              depth_file_path (nerfstudio) / depth_path (instant-ngp)   optional integer depth image
    depth_unit_scale_factor (nerfstudio, default 0.001) / integer_depth_scale (instant-ngp)  metres per unit

Both tools sample pixel ``(u, v)`` at ``(u + 0.5, v + 0.5)`` (COLMAP's convention); the intrinsics are moved
to OpenCV pixel centres by :func:`eps3d_ros.conventions.intrinsics_for_pixel_indices` and the poses to OpenCV
axes by :func:`~eps3d_ros.conventions.opengl_to_opencv_poses`. The world frame is the file's: metric when the
capture was (ARKit, Polycam, Record3D, a robot), up to scale for a COLMAP-only capture (instant-ngp's own
``scale``/``offset`` are run-time normalisations and are not applied).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eps3d_ros.conventions import intrinsics_for_pixel_indices, opengl_to_opencv_poses

from .dataset_scene import (
    DatasetError,
    SceneReader,
    check_intrinsics,
    check_pose,
    image_size,
    natural_key,
    read_depth_png,
    read_rgb,
    resample_nearest,
)

__all__ = ["TransformsScene", "TRANSFORMS_NAME"]

TRANSFORMS_NAME = "transforms.json"
_INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y")


class TransformsScene(SceneReader):
    """The frames of one ``transforms.json`` (see the module docstring)."""

    dataset = "transforms"

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / TRANSFORMS_NAME
        super().__init__(path.parent.parent, path.parent.name)
        self.path = path
        if not path.is_file():
            raise DatasetError(path, "missing file")
        try:
            t = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DatasetError(path, f"not valid JSON ({e})") from None
        if not isinstance(t, dict) or not isinstance(t.get("frames"), list) or not t["frames"]:
            raise DatasetError(path, "needs a non-empty 'frames' list")
        self._check_model(t)
        self._shared = {k: t[k] for k in _INTRINSIC_KEYS if k in t}
        self._depth_scale = float(t.get("depth_unit_scale_factor", t.get("integer_depth_scale", 0.001)))
        frames = []
        for n, f in enumerate(t["frames"]):
            if not isinstance(f, dict) or "file_path" not in f:
                raise DatasetError(f"{path} frames[{n}]", "needs file_path and transform_matrix")
            frames.append(f)
        frames.sort(key=lambda f: natural_key(str(f["file_path"])))
        self._frames = frames
        self.frame_ids = [Path(str(f["file_path"])).stem for f in frames]
        self._sizes: dict[int, tuple[int, int]] = {}

    def _check_model(self, t: dict[str, Any]) -> None:
        model = str(t.get("camera_model", "OPENCV")).upper()
        if "FISHEYE" in model:
            raise DatasetError(self.path, f"camera_model {model}: fisheye images must be undistorted first")
        dist = {k: float(t.get(k, 0.0)) for k in ("k1", "k2", "k3", "k4", "p1", "p2")}
        if any(abs(v) > 1e-6 for v in dist.values()):
            self.notes.append(f"lens distortion {', '.join(f'{k}={v:g}' for k, v in dist.items() if v)} is ignored "
                              "(the images are used as pinhole; undistort them for exact geometry)")

    # ------------------------------------------------------------------------------------- files
    def _image_path(self, index: int) -> Path:
        p = self.path.parent / str(self._frames[index]["file_path"])
        if not p.suffix and not p.exists() and p.with_suffix(".png").exists():
            p = p.with_suffix(".png")
        return p

    def _depth_path(self, index: int) -> Path | None:
        f = self._frames[index]
        rel = f.get("depth_file_path", f.get("depth_path"))
        return None if rel is None else self.path.parent / str(rel)

    def files(self, index: int) -> dict[str, Path]:
        out = {"rgb": self._image_path(index), "pose": self.path}
        d = self._depth_path(index)
        if d is not None:
            out["depth"] = d
        return out

    @property
    def has_depth(self) -> bool:
        return any(self._depth_path(i) is not None for i in range(len(self)))

    def _size(self, index: int) -> tuple[int, int]:
        f = self._frames[index]
        if "w" in f and "h" in f:
            return int(f["h"]), int(f["w"])
        if "w" in self._shared and "h" in self._shared:
            return int(self._shared["h"]), int(self._shared["w"])
        if index not in self._sizes:
            self._sizes[index] = image_size(self._image_path(index))
        return self._sizes[index]

    def frame_size(self, index: int) -> tuple[int, int]:
        return self._size(index)

    def intrinsics(self, index: int) -> np.ndarray:
        c = {**self._shared, **{k: v for k, v in self._frames[index].items() if k in _INTRINSIC_KEYS}}
        H, W = self._size(index)
        where = f"{self.path} frames[{self.frame_ids[index]}]"
        try:
            fx = float(c["fl_x"]) if "fl_x" in c else 0.5 * W / math.tan(0.5 * float(c["camera_angle_x"]))
            if "fl_y" in c:
                fy = float(c["fl_y"])
            elif "camera_angle_y" in c:
                fy = 0.5 * H / math.tan(0.5 * float(c["camera_angle_y"]))
            else:
                fy = fx
            K = np.array([[fx, 0.0, float(c.get("cx", W / 2))], [0.0, fy, float(c.get("cy", H / 2))], [0, 0, 1.0]])
        except (KeyError, TypeError, ValueError):
            raise DatasetError(where, "no intrinsics: needs fl_x (or camera_angle_x), shared or per frame") from None
        K = intrinsics_for_pixel_indices(torch.from_numpy(K)).numpy()  # +0.5 pixel centres → OpenCV's
        return check_intrinsics(K, where, (H, W))

    def read_rgb(self, index: int) -> np.ndarray:
        return read_rgb(self._image_path(index), self._size(index))

    def read_pose(self, index: int) -> np.ndarray:
        where = f"{self.path} frames[{self.frame_ids[index]}]"
        m = self._frames[index].get("transform_matrix")
        if m is None:
            raise DatasetError(where, "missing pose (transform_matrix)")
        gl = check_pose(m, where, "transform_matrix")
        return opengl_to_opencv_poses(torch.from_numpy(gl)).numpy()

    def read_depth(self, index: int) -> np.ndarray | None:
        path = self._depth_path(index)
        if path is None:
            return None
        d = read_depth_png(path, self._depth_scale)
        size = self._size(index)
        if d.shape != size:
            H, W = size
            if abs(d.shape[0] / d.shape[1] - H / W) > 0.01 * H / W:
                raise DatasetError(path, f"wrong image size {d.shape[1]}x{d.shape[0]}: not the {W}x{H} colour "
                                         "image's aspect ratio")
            d = resample_nearest(d, size)
        return d
