"""Recorded RGB-D sequences in the Redwood / Open3D layout (``color/*.jpg``, ``depth/*.png``, poses).

Layout: ``color/NNNNN.jpg`` (RGB), ``depth/NNNNN.png`` (16-bit, millimetres, 0 = no measurement),
``camera_primesense.json`` (``intrinsic_matrix`` column-major 3x3), ``trajectory.log`` (Open3D .log:
per frame a line ``i j n`` then a 4x4 camera-to-world matrix, OpenCV optical axes, metres) and
``rgbd.match`` (depth/colour pairs). Conventions as in :mod:`eps3d_ros.conventions`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RgbdSequence:
    rgb: np.ndarray  # [S, H, W, 3] uint8
    depth: np.ndarray  # [S, H, W] float32 metres, NaN = no measurement
    K: np.ndarray  # [3, 3] pixels
    poses: np.ndarray  # [S, 4, 4] camera-to-world
    stamps: np.ndarray  # [S] seconds (frame index / fps)

    @property
    def extrinsics(self) -> np.ndarray:
        """Camera-from-world ``[S, 3, 4]``."""
        import torch

        from ..conventions import poses_to_extrinsics

        return poses_to_extrinsics(torch.from_numpy(self.poses)).numpy()

    def world_points(self, view: int) -> np.ndarray:
        """Measured depth of one view unprojected to the world ``[H, W, 3]`` (NaN where no measurement)."""
        H, W = self.depth.shape[1:]
        v, u = np.mgrid[0:H, 0:W].astype(np.float64)
        d = self.depth[view].astype(np.float64)
        K = self.K
        cam = np.stack([(u - K[0, 2]) * d / K[0, 0], (v - K[1, 2]) * d / K[1, 1], d], axis=-1)
        P = self.poses[view]
        return cam @ P[:3, :3].T + P[:3, 3]


def read_trajectory_log(path: str | Path) -> np.ndarray:
    """Open3D ``.log`` → ``[S, 4, 4]`` camera-to-world matrices."""
    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    if len(rows) % 5:
        raise ValueError(f"{path}: expected blocks of 5 lines (header + 4x4), got {len(rows)} lines")
    return np.array([[[float(x) for x in r] for r in rows[i + 1:i + 5]] for i in range(0, len(rows), 5)])


def load_rgbd_sequence(root: str | Path, fps: float = 30.0, depth_scale: float = 0.001) -> RgbdSequence:
    from PIL import Image

    root = Path(root)
    if not (root / "rgbd.match").is_file():
        raise FileNotFoundError(f"{root}: no rgbd.match (expected the Redwood/Open3D RGB-D layout)")
    pairs = [line.split() for line in (root / "rgbd.match").read_text().splitlines() if line.strip()]
    rgb = np.stack([np.asarray(Image.open(root / c).convert("RGB")) for _, c in pairs])
    raw = np.stack([np.asarray(Image.open(root / d)) for d, _ in pairs]).astype(np.float32)
    depth = np.where(raw > 0, raw * depth_scale, np.nan).astype(np.float32)
    intr = json.loads((root / "camera_primesense.json").read_text())
    K = np.asarray(intr["intrinsic_matrix"], dtype=np.float64).reshape(3, 3).T  # stored column-major
    poses = read_trajectory_log(root / "trajectory.log")
    if len(poses) != len(pairs):
        raise ValueError(f"{root}: {len(poses)} poses for {len(pairs)} frames")
    if rgb.shape[1:3] != depth.shape[1:]:
        raise ValueError(f"{root}: colour {rgb.shape[1:3]} and depth {depth.shape[1:]} sizes differ")
    return RgbdSequence(rgb=rgb, depth=depth, K=K, poses=poses, stamps=np.arange(len(pairs)) / fps)
