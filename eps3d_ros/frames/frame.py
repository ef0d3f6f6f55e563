"""One synchronized camera frame, validated once when it is made.

Conventions (see :mod:`eps3d_ros.conventions`): OpenCV camera axes (x right, y down, z forward);
``pose`` is camera-to-world (here: the camera optical frame in the map frame, from TF); ``K`` in
pixels.

Pixel centres: ``Frame.K`` follows ROS ``sensor_msgs/CameraInfo`` (= OpenCV): the centre of pixel
``(u, v)`` (column, row) is at image coordinates ``(u, v)``, so a camera point ``X`` projects to
pixel ``K X / Z`` with integer results at pixel centres. (The synthetic renderer samples at
``u + 0.5``; :func:`synthetic_frames` converts.)

Frames are immutable and their arrays read-only: one frame is shared by the callback thread, the
buffer and the inference thread, so nobody may edit it in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Frame", "check_intrinsics", "synthetic_frames"]


@dataclass(frozen=True, eq=False)  # identity equality/hash: numpy fields have no truth value
class Frame:
    stamp: float  # seconds (header.stamp.sec + 1e-9 * nanosec)
    rgb: np.ndarray  # [H, W, 3] uint8, RGB order
    K: np.ndarray  # [3, 3] float64 pixels, OpenCV pixel centres
    frame_id: str  # the camera optical frame
    depth: np.ndarray | None = None  # [H, W] float32 metres, NaN = invalid
    pose: np.ndarray | None = None  # [4, 4] float64 camera-to-world in the map frame (from TF)
    camera: str = ""  # the name of the camera it comes from (input.cameras); "" = the only, unnamed camera

    def __post_init__(self) -> None:
        stamp = _as_float(self.stamp, "stamp")
        if not math.isfinite(stamp):
            raise ValueError(f"frame stamp must be a finite number of seconds, got {self.stamp!r}")
        object.__setattr__(self, "stamp", stamp)
        if not isinstance(self.frame_id, str) or not self.frame_id:
            raise ValueError(f"frame_id must be a non-empty string (the camera optical frame), got {self.frame_id!r}")
        if not isinstance(self.camera, str):
            raise ValueError(f"camera must be a string (the camera's name), got {self.camera!r}")

        rgb = self.rgb
        if not isinstance(rgb, np.ndarray):
            raise ValueError(f"rgb must be a numpy array, got {type(rgb).__name__}")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise ValueError(f"rgb must be [H, W, 3], got shape {rgb.shape}")
        if rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8, got {rgb.dtype} (decode with eps3d_ros.frames.images.decode_color)")
        H, W = rgb.shape[:2]

        object.__setattr__(self, "K", _check_K(self.K))
        if self.depth is not None:
            d = self.depth
            if not isinstance(d, np.ndarray):
                raise ValueError(f"depth must be a numpy array or None, got {type(d).__name__}")
            if d.ndim != 2:
                raise ValueError(f"depth must be [H, W], got shape {d.shape}")
            if d.shape != (H, W):
                raise ValueError(f"mismatched sizes: depth is {d.shape[0]}x{d.shape[1]} but rgb is {H}x{W} "
                                 "(register depth to the colour camera, or resize both)")
            if d.dtype != np.float32:
                raise ValueError(f"depth must be float32 metres, got {d.dtype} "
                                 "(decode with eps3d_ros.frames.images.decode_depth)")
        if self.pose is not None:
            object.__setattr__(self, "pose", _check_pose(self.pose))
        for a in (self.rgb, self.K, self.depth, self.pose):
            if a is not None:
                a.setflags(write=False)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width

    @property
    def has_depth(self) -> bool:
        return self.depth is not None

    @property
    def has_pose(self) -> bool:
        return self.pose is not None


def check_intrinsics(K: Any, height: int, width: int, source: str = "K") -> np.ndarray:
    """``K [3, 3]`` (or 9 values, row-major, as ``CameraInfo.k``) of a ``height x width`` camera image, checked
    where frames come in (the node's camera_info, a bag's, an image folder's calibration): finite, positive
    focal lengths and a principal point on the image (pixel centres from 0 to W-1; half a pixel of slack). A
    frame made later by the intake (crops) is not held to this. ``source`` names it in the error."""
    try:
        K = _check_K(K)
    except ValueError as e:
        raise ValueError(f"{source}: {e} (is the camera calibrated?)") from None
    cx, cy = float(K[0, 2]), float(K[1, 2])
    if not (-0.5 <= cx <= width - 0.5 and -0.5 <= cy <= height - 0.5):
        values = ", ".join(f"{float(v):g}" for v in K.reshape(-1))
        raise ValueError(f"{source}: principal point ({cx:g}, {cy:g}) lies outside the {width}x{height} image: K is "
                         f"[{values}] (row-major fx 0 cx 0 fy cy 0 0 1)")
    return K


def _as_float(v: Any, name: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None


def _check_K(K: Any) -> np.ndarray:
    try:
        K = np.array(K, dtype=np.float64)  # a copy: the caller's array stays writable
    except (TypeError, ValueError):
        raise ValueError(f"K must be a 3x3 numeric matrix, got {K!r}") from None
    if K.shape == (9,):  # CameraInfo.k is a flat row-major array of 9
        K = K.reshape(3, 3)
    if K.shape != (3, 3):
        raise ValueError(f"K must be [3, 3] (or 9 values row-major), got shape {K.shape}")
    if not np.isfinite(K).all():
        raise ValueError(f"K has NaN or infinite entries: {K.tolist()}")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K has non-positive focal lengths fx={K[0, 0]}, fy={K[1, 1]} "
                         "(an uncalibrated camera_info has K = 0)")
    if K[1, 0] != 0 or K[2, 0] != 0 or K[2, 1] != 0 or K[2, 2] != 1:
        raise ValueError(f"K must be upper triangular with K[2, 2] = 1, got {K.tolist()}")
    return K


def _check_pose(pose: Any) -> np.ndarray:
    try:
        pose = np.array(pose, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"pose must be a 4x4 numeric matrix, got {pose!r}") from None
    if pose.shape != (4, 4):
        raise ValueError(f"pose must be [4, 4] camera-to-world, got shape {pose.shape}")
    if not np.isfinite(pose).all():
        raise ValueError("pose has NaN or infinite entries")
    if not np.allclose(pose[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError(f"pose's last row must be [0, 0, 0, 1], got {pose[3].tolist()}")
    R = pose[:3, :3]
    # TF quaternions are normalised to ~1e-9; 1e-4 admits float32 round trips but not scaled matrices.
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-4) or np.linalg.det(R) <= 0:
        raise ValueError("pose's rotation block is not a proper rotation (orthonormal, det +1)")
    return pose


def synthetic_frames(
    scene: Any,
    stamps: Any = None,
    *,
    frame_id: str = "camera_color_optical_frame",
    with_depth: bool = True,
    with_pose: bool = True,
    camera: str = "",
) -> list[Frame]:
    """Frames of a :class:`eps3d_ros.data.synthetic.SyntheticScene` (demos and tests).

    The synthetic K puts pixel centres at ``u + 0.5``; Frame K puts them at ``u`` (OpenCV), so the
    principal point moves by -0.5 px. Depth 0 (nothing hit) becomes NaN. ``stamps`` default to
    ``0.0, 0.5, 1.0, ...`` seconds.
    """
    S = scene.num_views
    stamps = [0.5 * i for i in range(S)] if stamps is None else [float(s) for s in stamps]
    if len(stamps) != S:
        raise ValueError(f"{len(stamps)} stamps for {S} views")
    poses = scene.poses.astype(np.float64)
    out = []
    for i in range(S):
        K = scene.intrinsics[i].astype(np.float64).copy()
        K[0, 2] -= 0.5
        K[1, 2] -= 0.5
        depth = None
        if with_depth:
            depth = scene.depth[i].astype(np.float32).copy()
            depth[depth <= 0] = np.nan
        pose = _orthonormalize(poses[i]) if with_pose else None
        out.append(Frame(stamp=stamps[i], rgb=scene.rgb[i].copy(), K=K, frame_id=frame_id, depth=depth, pose=pose,
                         camera=camera))
    return out


def _orthonormalize(pose: np.ndarray) -> np.ndarray:
    """Project a (float32-rounded) pose's rotation back onto SO(3)."""
    u, _, vt = np.linalg.svd(pose[:3, :3])
    out = pose.copy()
    out[:3, :3] = u @ vt
    return out
