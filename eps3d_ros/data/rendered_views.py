"""What a rendered synthetic scene and a rendered sequence share: sizes, camera poses, world points.

A mixin for dataclasses with ``rgb [V, H, W, 3]``, ``depth [V, H, W]`` (camera z in metres, 0 where nothing
is hit), ``intrinsics [V, 3, 3]`` (pixels), ``extrinsics [V, 3, 4]`` (camera-from-world, OpenCV) and
``pixel_offset`` (where pixel centres lie: ``u + pixel_offset``).
"""

from __future__ import annotations

import numpy as np
import torch

from eps3d_ros.conventions import extrinsics_to_poses

__all__ = ["RenderedViews"]


class RenderedViews:
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: np.ndarray
    extrinsics: np.ndarray
    pixel_offset: float

    @property
    def height(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[2])

    @property
    def poses(self) -> np.ndarray:
        """Camera-to-world ``[V, 4, 4]`` float32."""
        return extrinsics_to_poses(torch.from_numpy(self.extrinsics).double()).numpy().astype(np.float32)

    @property
    def valid(self) -> np.ndarray:
        """``[V, H, W]`` bool: pixels that hit a surface (``depth > 0``)."""
        return self.depth > 0

    def world_points(self, view: int) -> np.ndarray:
        """World points ``[H, W, 3]`` (float64) of ``view``'s pixels through the stored (float32) camera; NaN
        where nothing is hit."""
        K = self.intrinsics[view].astype(np.float64)
        E = self.extrinsics[view].astype(np.float64)
        R, t = E[:, :3], E[:, 3]
        u = np.arange(self.width, dtype=np.float64) + self.pixel_offset
        v = np.arange(self.height, dtype=np.float64) + self.pixel_offset
        pix = np.stack([*np.meshgrid(u, v, indexing="xy"), np.ones((self.height, self.width))], -1)
        cam = (pix @ np.linalg.inv(K).T) * self.depth[view].astype(np.float64)[..., None]
        world = (cam - t) @ R  # R^T (x_cam - t)
        world[self.depth[view] <= 0] = np.nan
        return world
