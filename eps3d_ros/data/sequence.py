"""A rendered synthetic sequence (a robot walking through a room) and its ground truth.

Made by :func:`eps3d_ros.data.synthetic.generate_sequence`. Arrays are **numpy**, one row per frame:

* ``rgb [T, H, W, 3]`` uint8; ``depth [T, H, W]`` float32 camera z in metres (0 = nothing hit);
* ``semantic [T, H, W]`` int64 index into ``class_names`` (0 = background); ``instance [T, H, W]``
  int64 (0 = none: background and stuff; ``objects[i].instance_id == i + 1``);
* ``intrinsics [T, 3, 3]`` float32 pixels, pixel ``(u, v)`` sampled at ``(u + 0.5, v + 0.5)``;
  ``extrinsics [T, 3, 4]`` float32 camera-from-world, OpenCV axes (``eps3d_ros.conventions``).

World frame = the map frame: metres, z up, floor at ``z = 0``. :meth:`SyntheticSequence.frames`
converts to pipeline frames exactly as :func:`eps3d_ros.frames.frame.synthetic_frames` does (it
calls it): ``Frame.K`` has pixel centres at ``(u, v)``, depth 0 becomes NaN, the pose is the
camera-to-world matrix re-orthonormalised. Frame ``k`` of the stream (``k = loop * T + i`` when the
frames are looped) has stamp ``k / fps`` seconds; :meth:`SyntheticSequence.frame_index` inverts it.

Objects removed from the world (``removed``: instance id → first frame without it) are simply not
rendered from that frame on; ``place_pixels`` says where their place is seen all the same.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eps3d_ros.data.camera_path import CameraPath
from eps3d_ros.data.furniture import SceneObject
from eps3d_ros.data.primitives import Primitive
from eps3d_ros.data.raycast import LIGHT_DIRECTION
from eps3d_ros.data.rendered_views import RenderedViews
from eps3d_ros.data.room_layout import RoomLayout
from eps3d_ros.frames.frame import synthetic_frames

__all__ = ["SyntheticSequence", "voxel_balanced_centroid"]


@dataclass
class SyntheticSequence(RenderedViews):
    """A rendered sequence with its ground truth (see the module docstring for conventions)."""

    rgb: np.ndarray  # [T, H, W, 3] uint8
    depth: np.ndarray  # [T, H, W] float32, camera z in metres, 0 where nothing is hit
    semantic: np.ndarray  # [T, H, W] int64
    instance: np.ndarray  # [T, H, W] int64
    intrinsics: np.ndarray  # [T, 3, 3] float32, pixels (centres at u + 0.5)
    extrinsics: np.ndarray  # [T, 3, 4] float32, camera-from-world (OpenCV)
    class_names: list[str]
    things: list[int]
    stuff: list[int]
    objects: list[SceneObject]  # things only; pixels_per_view = pixels per frame
    primitives: list[Primitive]  # every surface; index = primitive id
    primitive_id: np.ndarray  # [T, H, W] int32, -1 where nothing is hit
    layout: RoomLayout
    path: CameraPath
    seed: int
    fps: float  # frames per second of the stamps
    removed: Mapping[int, int]  # instance id → first frame index without the object
    pixel_counts: np.ndarray  # [T, n + 1] int64: pixels of instance id j in frame t (column 0: no instance)
    place_pixels: np.ndarray  # [T, n + 1] int64: pixels where object j is seen, or would be if it were still there
    options: dict[str, Any] = field(default_factory=dict)  # generate_sequence keywords (to regenerate variants)
    pixel_offset: float = 0.5
    light_direction: np.ndarray = field(default_factory=lambda: LIGHT_DIRECTION.copy())

    # ------------------------------------------------------------------------------- sizes, cameras
    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def num_views(self) -> int:
        """Same as :attr:`num_frames` (the name :class:`~eps3d_ros.data.synthetic.SyntheticScene` uses)."""
        return self.num_frames

    # ------------------------------------------------------------------------------------ stamps
    def stamp(self, k: int) -> float:
        """Stamp (seconds) of frame ``k`` of the (possibly looped) stream: ``k / fps``."""
        return float(k) / self.fps

    def frame_index(self, stamp: float, tolerance: float = 1e-6) -> int:
        """The sequence frame (``0 .. T-1``) a stream stamp belongs to, also for looped frames.

        Raises:
            ValueError: ``stamp`` is not ``k / fps`` (within ``tolerance`` s) for any ``k >= 0``.
        """
        s = float(stamp)
        k = round(s * self.fps) if math.isfinite(s) else -1
        if k < 0 or abs(self.stamp(k) - s) > tolerance:
            raise ValueError(f"stamp {stamp!r} is not a frame of this sequence (stamps are k / {self.fps} s, k >= 0)")
        return int(k) % self.num_frames

    def frames(self, frame_id: str = "camera", *, loops: int = 1, with_depth: bool = True,
               with_pose: bool = True) -> Iterator[Any]:
        """:class:`~eps3d_ros.frames.frame.Frame` objects of the sequence, ``loops`` times over, stamps
        ``k / fps`` increasing across loops (the path ends where it began, so loops join up)."""
        if isinstance(loops, bool) or not isinstance(loops, int) or loops < 1:
            raise ValueError(f"loops must be an integer >= 1, got {loops!r}")
        T = self.num_frames
        for loop in range(loops):
            stamps = [self.stamp(loop * T + i) for i in range(T)]
            yield from synthetic_frames(self, stamps, frame_id=frame_id, with_depth=with_depth, with_pose=with_pose)

    # ------------------------------------------------------------------------------ ground truth
    def object(self, instance_id: int) -> SceneObject:
        """The record of thing ``instance_id``."""
        if not 1 <= int(instance_id) <= len(self.objects):
            raise KeyError(f"no object with instance id {instance_id} (ids are 1..{len(self.objects)})")
        return self.objects[int(instance_id) - 1]

    @property
    def presence(self) -> np.ndarray:
        """``[T, n]`` bool: object ``j + 1`` is in the world at frame ``t``."""
        out = np.ones((self.num_frames, len(self.objects)), bool)
        for inst, first in self.removed.items():
            out[first:, inst - 1] = False
        return out

    def exists(self, instance_id: int, frame: int) -> bool:
        """Is object ``instance_id`` in the world at ``frame``?"""
        self.object(instance_id)
        first = self.removed.get(int(instance_id))
        return first is None or int(frame) < first

    def frames_seeing(self, instance_id: int, min_pixels: int = 1) -> np.ndarray:
        """Indices of the frames where object ``instance_id`` covers at least ``min_pixels`` pixels."""
        self.object(instance_id)
        return np.nonzero(self.pixel_counts[:, int(instance_id)] >= min_pixels)[0]

    def frames_seeing_place(self, instance_id: int, min_pixels: int = 1) -> np.ndarray:
        """Frames where the place of ``instance_id`` is in view and unoccluded over at least ``min_pixels``
        pixels — whether or not the object is still there (for removed objects: where its absence shows)."""
        self.object(instance_id)
        return np.nonzero(self.place_pixels[:, int(instance_id)] >= min_pixels)[0]

    def visible_things(self, frame: int, min_pixels: int = 1) -> list[int]:
        """Instance ids seen in ``frame`` over at least ``min_pixels`` pixels."""
        return [int(i) for i in np.nonzero(self.pixel_counts[int(frame), 1:] >= min_pixels)[0] + 1]

    def visible_fraction(self, min_pixels: int = 1) -> np.ndarray:
        """``[T]``: the fraction of all the room's things each frame sees (``min_pixels`` or more)."""
        return (self.pixel_counts[:, 1:] >= min_pixels).sum(1) / max(len(self.objects), 1)

    def seen_surface_centroid(self, instance_id: int, frames: Any = None, voxel: float = 0.01) -> np.ndarray:
        """Centroid ``[3]`` (world, float64) of the surface of ``instance_id`` seen in ``frames`` (default: all).

        The seen pixels' world points are averaged per ``voxel`` (m) cell first, so the result weighs the
        seen surface evenly rather than by how many pixels looked at each part — what a fused map of those
        frames measures. Raises ``ValueError`` when the object is not seen in those frames.
        """
        self.object(instance_id)
        idx = range(self.num_frames) if frames is None else [int(f) for f in np.atleast_1d(frames)]
        pts = [self.world_points(f)[self.instance[f] == instance_id] for f in idx
               if self.pixel_counts[f, int(instance_id)] > 0]
        if not pts:
            raise ValueError(f"object {instance_id} is not seen in the given frames")
        return voxel_balanced_centroid(np.concatenate(pts), voxel)


def voxel_balanced_centroid(points: np.ndarray, voxel: float) -> np.ndarray:
    """Centroid ``[3]`` of ``points [N, 3]`` with every ``voxel`` (m) cell weighted once (the plain mean when
    ``voxel <= 0``): a surface seen by many pixels in one place does not pull the centroid there."""
    if voxel <= 0:
        return points.mean(0)
    _, inverse, counts = np.unique(np.floor(points / voxel).astype(np.int64), axis=0, return_inverse=True,
                                   return_counts=True)
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inverse.reshape(-1), points)
    return (sums / counts[:, None]).mean(0)
