"""The views a scene was reconstructed from, in the scene's frame (what a snapshot, a map and a scene file carry;
a plain value type shared by the pipeline, the object map and the file formats).

Conventions (:mod:`eps3d_ros.conventions`): extrinsics are camera-from-world ``[R | t]`` in the scene
frame with OpenCV axes, in scene units (metres when the scene is metric); intrinsics are pixels of the
network image, pixel ``(u, v)``'s centre at ``(u, v)`` (as ``Frame.K`` / CameraInfo).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Cameras", "cameras_from_prediction"]


@dataclass(frozen=True, eq=False)  # identity equality/hash: numpy fields have no truth value
class Cameras:
    """``S`` views at ``height x width`` (the network's input size)."""

    extrinsics: np.ndarray  # [S, 3, 4] float64 camera-from-world (scene frame), OpenCV axes
    intrinsics: np.ndarray  # [S, 3, 3] float64 pixels at height x width; pixel (u, v)'s centre at (u, v)
    height: int
    width: int
    stamps: np.ndarray | None = None  # [S] float64 seconds, or None
    # [S, H, W] float32 camera z in scene units, NaN where unknown: measured depth where a frame had it,
    # else the network's depth scaled into the scene; None when not kept (e.g. read from an old file)
    depth: np.ndarray | None = None
    # [S, 3, 3] float64: the network's own intrinsics guess when ``intrinsics`` are the calibration (render the
    # network's Gaussians with these to compare with the input images); None when not from a network
    predicted_intrinsics: np.ndarray | None = None

    def __post_init__(self) -> None:
        e = np.asarray(self.extrinsics, dtype=np.float64)
        k = np.asarray(self.intrinsics, dtype=np.float64)
        if e.ndim != 3 or e.shape[1:] != (3, 4):
            raise ValueError(f"camera extrinsics must be [S, 3, 4], got {e.shape}")
        if k.shape != (e.shape[0], 3, 3):
            raise ValueError(f"camera intrinsics must be [{e.shape[0]}, 3, 3], got {k.shape}")
        if int(self.height) < 1 or int(self.width) < 1:
            raise ValueError(f"camera image size must be positive, got {self.height}x{self.width}")
        object.__setattr__(self, "extrinsics", e)
        object.__setattr__(self, "intrinsics", k)
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "width", int(self.width))
        if self.stamps is not None:
            s = np.asarray(self.stamps, dtype=np.float64).reshape(-1)
            if s.shape != (e.shape[0],):
                raise ValueError(f"camera stamps must be [{e.shape[0]}], got {s.shape}")
            object.__setattr__(self, "stamps", s)
        if self.depth is not None:
            d = np.asarray(self.depth, dtype=np.float32)
            if d.shape != (e.shape[0], self.height, self.width):
                raise ValueError(f"camera depth must be [{e.shape[0]}, {self.height}, {self.width}], got {d.shape}")
            object.__setattr__(self, "depth", d)
        if self.predicted_intrinsics is not None:
            p = np.asarray(self.predicted_intrinsics, dtype=np.float64)
            if p.shape != k.shape:
                raise ValueError(f"predicted intrinsics must be {list(k.shape)}, got {list(p.shape)}")
            object.__setattr__(self, "predicted_intrinsics", p)
        for a in (self.extrinsics, self.intrinsics, self.stamps, self.depth, self.predicted_intrinsics):
            if a is not None:
                a.setflags(write=False)

    @property
    def num_views(self) -> int:
        return int(self.extrinsics.shape[0])


def cameras_from_prediction(extrinsics: np.ndarray, intrinsics: np.ndarray, sim3: Any, height: int, width: int,
                            stamps: Sequence[float] | None = None, depth: np.ndarray | None = None) -> Cameras:
    """The predicted cameras moved into the scene frame by the alignment ``x ↦ s R x + t``.

    A predicted camera ``[R_E | t_E]`` (camera-from-prediction-world) becomes
    ``[R_E Rᵀ | s t_E − R_E Rᵀ t]``: camera-from-scene, with camera coordinates in scene units.
    Intrinsics do not change (projection is scale invariant). ``depth`` must already be in scene units.
    """
    E = np.asarray(extrinsics, dtype=np.float64)
    R, t, s = np.asarray(sim3.R, np.float64), np.asarray(sim3.t, np.float64), float(sim3.scale)
    Rc = E[:, :, :3] @ R.T  # [S, 3, 3]
    tc = s * E[:, :, 3] - np.einsum("sij,j->si", Rc, t)
    return Cameras(np.concatenate([Rc, tc[:, :, None]], axis=2), np.asarray(intrinsics, np.float64), height, width,
                   None if stamps is None else np.asarray(stamps, np.float64), depth)
