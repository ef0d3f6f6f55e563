"""A robot with two cameras walking through a room: a head camera and a wrist camera, with exact ground truth.

    from eps3d_ros.data.camera_rig import generate_rig_sequence
    rig = generate_rig_sequence(seed=0, num_frames=40)          # head 112x112, wrist 84x112, hardware-synchronised
    for frame in rig.frames():                                  # Frame.camera "head" / "wrist", stamps in order
        session.offer(frame)

The room and the head's walk are those of :func:`~eps3d_ros.data.synthetic.generate_sequence`, with the head
``head_distance`` (1.2–2 m) from the table it stops at. The wrist camera is on the robot's arm: while the robot
stops at a table it looks at the things on that table one after another from ``wrist_distance`` (0.3–0.6 m),
looking down ``wrist_pitch_deg`` and swinging round each thing for parallax; while the robot walks the arm is
stowed beside the body, looking at the floor ahead. Both cameras render the same world (one layout, one set of
objects and instance ids) at their own size and field of view.

A :class:`CameraRigSequence` holds one :class:`~eps3d_ros.data.sequence.SyntheticSequence` per camera and shows
the evaluation (:mod:`eps3d_ros.eval.scene_memory`) and the oracle (:mod:`eps3d_ros.eval.oracle`) ONE stream: the
frames of both cameras in stamp order (the head first at equal stamps), ``T`` per camera per loop. Stream index
``k`` of a loop is :meth:`CameraRigSequence.view` ``(camera, frame)``; ``pixel_counts``,
``seen_surface_centroid`` and ``frames`` are in stream order, so the scene-memory evaluation scores a rig as it
scores one camera. Frame ``i`` of a camera is stamped ``i / fps`` (+ ``wrist_offset_s`` for the wrist).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from eps3d_ros.conventions import poses_to_extrinsics
from eps3d_ros.data.camera_path import look_at_pose, sample_robot_path
from eps3d_ros.data.raycast import label_images, render_views
from eps3d_ros.data.room_layout import RoomLayout, sample_room_layout
from eps3d_ros.data.scene_layout import CLASS_NAMES, STUFF_CLASSES, THING_CLASSES
from eps3d_ros.data.sequence import SyntheticSequence, voxel_balanced_centroid
from eps3d_ros.frames.frame import synthetic_frames

__all__ = ["CameraRigSequence", "generate_rig_sequence", "wrist_poses"]

CAMERAS = ("head", "wrist")


@dataclass
class CameraRigSequence:
    """Two cameras' sequences in one world, seen as one stream (see the module docstring)."""

    cameras: dict[str, SyntheticSequence]  # "head", "wrist"
    offsets: dict[str, float]  # seconds added to each camera's stamps
    fps: float
    seed: int
    options: dict[str, Any] = field(default_factory=dict)
    wrist_targets: np.ndarray | None = None  # [T] instance id the wrist looks at per frame (0: stowed)

    def __post_init__(self) -> None:
        lengths = {s.num_frames for s in self.cameras.values()}
        if len(lengths) != 1:
            raise ValueError(f"the cameras' sequences differ in length: {lengths}")
        self.frames_per_camera = lengths.pop()
        order = sorted((i / self.fps + self.offsets[c], rank, c, i) for rank, c in enumerate(self.cameras)
                       for i in range(self.frames_per_camera))
        self._stream = [(c, i) for _, _, c, i in order]
        self._index = {key: k for k, key in enumerate(self._stream)}
        self.pixel_counts = np.stack([self.cameras[c].pixel_counts[i] for c, i in self._stream])  # [N, n + 1]
        first = next(iter(self.cameras.values()))
        self.objects, self.class_names = first.objects, first.class_names
        self.things, self.stuff, self.layout = first.things, first.stuff, first.layout

    # ----------------------------------------------------------------------------------------- stream
    @property
    def num_frames(self) -> int:
        """Frames of all cameras in one pass (the stream's length)."""
        return len(self._stream)

    @property
    def period(self) -> float:
        """Seconds one pass takes (loops follow on at this period)."""
        return self.frames_per_camera / self.fps

    def view(self, k: int) -> tuple[str, int]:
        """``(camera, frame index)`` of stream index ``k`` (also of later loops)."""
        return self._stream[int(k) % self.num_frames]

    def stamp(self, camera: str, index: int, loop: int = 0) -> float:
        return index / self.fps + self.offsets[camera] + loop * self.period

    def locate(self, camera: str, stamp: float, tolerance: float = 1e-6) -> tuple[SyntheticSequence, int]:
        """The camera's sequence and its frame index of a frame stamped ``stamp`` (any loop)."""
        if camera not in self.cameras:
            raise ValueError(f"no camera {camera!r} in this rig (cameras: {', '.join(self.cameras)})")
        t = (float(stamp) - self.offsets[camera]) % self.period
        i = round(t * self.fps)
        if abs(i / self.fps - t) > tolerance and abs(i / self.fps - t - self.period) > tolerance:
            raise ValueError(f"stamp {stamp!r} is not a frame of camera {camera!r}")
        return self.cameras[camera], int(i) % self.frames_per_camera

    def frames(self, loops: int = 1, *, with_depth: bool = True, with_pose: bool = True) -> Iterator[Any]:
        """:class:`~eps3d_ros.frames.frame.Frame` objects of both cameras in stream order, ``loops`` times over
        (``Frame.camera`` is the camera's name, ``frame_id`` ``<camera>_optical``)."""
        if isinstance(loops, bool) or not isinstance(loops, int) or loops < 1:
            raise ValueError(f"loops must be an integer >= 1, got {loops!r}")
        cache: dict[str, list] = {}
        for loop in range(loops):
            for c, i in self._stream:
                seq = self.cameras[c]
                if c not in cache:
                    cache[c] = [None] * seq.num_frames
                f = synthetic_frames(_one(seq, i), [self.stamp(c, i, loop)], frame_id=f"{c}_optical",
                                     with_depth=with_depth, with_pose=with_pose, camera=c)[0]
                yield f

    def camera_frames(self, camera: str, loops: int = 1, **kwargs: Any) -> Iterator[Any]:
        """The frames of one camera only (the same stamps as in :meth:`frames`)."""
        return (f for f in self.frames(loops, **kwargs) if f.camera == camera)

    # ----------------------------------------------------------------------------------- ground truth
    def exists(self, instance_id: int, frame: int) -> bool:
        """Every thing stays in the world (a rig sequence has no removed objects)."""
        return 1 <= int(instance_id) <= len(self.objects)

    def object(self, instance_id: int):
        return next(iter(self.cameras.values())).object(instance_id)

    def seen_surface_centroid(self, instance_id: int, frames: Any = None, voxel: float = 0.01) -> np.ndarray:
        """Centroid of the surface of ``instance_id`` seen in the stream frames ``frames`` (default: all), by
        either camera, voxel-averaged as :meth:`SyntheticSequence.seen_surface_centroid` does."""
        idx = range(self.num_frames) if frames is None else [int(f) for f in np.atleast_1d(frames)]
        pts = []
        for k in idx:
            c, i = self.view(k)
            seq = self.cameras[c]
            if seq.pixel_counts[i, int(instance_id)] > 0:
                pts.append(seq.world_points(i)[seq.instance[i] == instance_id])
        if not pts:
            raise ValueError(f"object {instance_id} is not seen in the given frames")
        return voxel_balanced_centroid(np.concatenate(pts), voxel)

    def seen_only_by(self, camera: str, min_pixels: int = 100) -> list[int]:
        """Things ``camera`` sees over ``min_pixels`` in some frame and no other camera sees at all."""
        mine = self.cameras[camera].pixel_counts[:, 1:].max(0) >= min_pixels
        others = np.zeros_like(mine)
        for c, seq in self.cameras.items():
            if c != camera:
                others |= seq.pixel_counts[:, 1:].max(0) > 0
        return [int(i) + 1 for i in np.nonzero(mine & ~others)[0]]


def _one(seq: SyntheticSequence, i: int) -> Any:
    """A view of frame ``i`` of ``seq`` shaped as a one-view scene for :func:`synthetic_frames`."""
    return _View(seq.rgb[i:i + 1], seq.depth[i:i + 1], seq.intrinsics[i:i + 1], seq.extrinsics[i:i + 1])


@dataclass
class _View:
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: np.ndarray
    extrinsics: np.ndarray

    @property
    def num_views(self) -> int:
        return 1

    @property
    def poses(self) -> np.ndarray:
        from eps3d_ros.conventions import extrinsics_to_poses

        return extrinsics_to_poses(torch.from_numpy(self.extrinsics).double()).numpy().astype(np.float32)


def wrist_poses(rng: np.random.Generator, layout: RoomLayout, head: np.ndarray, table: np.ndarray,
                distance: tuple[float, float] = (0.3, 0.6), pitch_deg: tuple[float, float] = (40.0, 60.0),
                swing_deg: float = 35.0) -> tuple[np.ndarray, np.ndarray]:
    """Camera-to-world ``[T, 4, 4]`` of the wrist camera for the head poses ``head [T, 4, 4]`` and the table each
    frame stops at (``table [T]``, -1 while walking), and the instance id it looks at per frame (0: stowed); see
    the module docstring. The camera never sits inside a thing (it rises until it clears every box by 3 cm)."""
    T = len(head)
    out, looked_at = np.empty((T, 4, 4)), np.zeros(T, np.int64)
    k = 0
    while k < T:
        end = k
        while end + 1 < T and table[end + 1] == table[k]:
            end += 1
        n = end - k + 1  # frames of this stop (or walk)
        if table[k] >= 0:
            tab = layout.tables[int(table[k])]
            things = sorted(tab.thing_ids, key=lambda i: float(layout.objects[i - 1].centroid[:2] @ tab.along))
            pitch = math.radians(rng.uniform(*pitch_deg))
            for j in range(n):
                u = (j + 0.5) / n  # progress through the stop: one thing after another
                thing = layout.objects[things[min(int(u * len(things)), len(things) - 1)] - 1]
                phase = u * len(things) % 1.0  # swing round each thing
                yaw = math.atan2(tab.facing[1], tab.facing[0]) + math.radians(swing_deg) * (2 * phase - 1)
                target = thing.centroid + rng.uniform(-0.01, 0.01, 3)
                out[k + j] = _clear_view(layout, target, rng.uniform(*distance), yaw, pitch)
                looked_at[k + j] = thing.instance_id
        else:  # walking: the arm stowed beside the body, the camera on the floor ahead
            for j in range(n):
                eye, forward = head[k + j][:3, 3], head[k + j][:3, 2]
                ahead = forward[:2] / max(float(np.linalg.norm(forward[:2])), 1e-9)
                side = np.array([-ahead[1], ahead[0]])
                cam = np.array([*(eye[:2] + 0.25 * side), 0.9])
                out[k + j] = look_at_pose(cam, np.array([*(eye[:2] + 0.9 * ahead), 0.0]))
        k = end + 1
    return out, looked_at


def _clear_view(layout: RoomLayout, target: np.ndarray, d: float, yaw: float, pitch: float) -> np.ndarray:
    """A look-at pose ``d`` from ``target`` at (``yaw``, ``pitch``), pitched up until no thing's box holds it."""
    for extra in np.radians(np.arange(0.0, 30.1, 5.0)):
        p = min(pitch + extra, math.radians(80.0))
        eye = target + d * np.array([math.cos(yaw) * math.cos(p), math.sin(yaw) * math.cos(p), math.sin(p)])
        if not any(np.all(eye >= o.box_min - 0.03) and np.all(eye <= o.box_max + 0.03) for o in layout.objects):
            break
    return look_at_pose(eye, target)


def generate_rig_sequence(
    seed: int,
    num_frames: int = 40,
    head_size: tuple[int, int] = (112, 112),
    wrist_size: tuple[int, int] = (84, 112),
    *,
    head_distance: tuple[float, float] = (1.2, 2.0),
    wrist_distance: tuple[float, float] = (0.3, 0.6),
    wrist_pitch_deg: tuple[float, float] = (40.0, 60.0),
    head_hfov_deg: float = 60.0,
    wrist_hfov_deg: float = 70.0,
    fps: float = 2.0,
    wrist_offset_s: float = 0.0,
    num_tables: int | None = None,
    things_per_table: tuple[int, int] = (4, 7),
    min_things: int = 20,
    stop_seconds: float = 6.0,
    textures: bool = True,
    shading: bool = True,
) -> CameraRigSequence:
    """Sample a room, the head's walk and the wrist's look at each table, and ray-cast both cameras.

    ``head_size`` / ``wrist_size``: (height, width) of each camera; ``wrist_offset_s``: the wrist's stamps after the
    head's (0: hardware-synchronised, equal stamps; else interleaved streams). Same arguments → bit-identical.
    """
    if not (isinstance(seed, int) and seed >= 0) or not (isinstance(num_frames, int) and num_frames >= 2):
        raise ValueError(f"seed must be an integer >= 0 and num_frames >= 2, got {seed!r}, {num_frames!r}")
    if not 0.9 <= head_distance[0] <= head_distance[1] <= 2.0:
        raise ValueError(f"head_distance must lie within 0.9-2.0 m, got {head_distance}")
    if not 0.15 <= wrist_distance[0] <= wrist_distance[1] <= 1.0:
        raise ValueError(f"wrist_distance must lie within 0.15-1.0 m, got {wrist_distance}")
    if not (fps > 0 and 0 <= wrist_offset_s < 1.0 / fps):
        raise ValueError(f"fps must be positive and wrist_offset_s within one frame period, got {fps}, {wrist_offset_s}")
    options = {k: v for k, v in locals().items() if k not in ("seed", "num_frames")}
    rng = np.random.default_rng(seed)
    layout = sample_room_layout(rng, num_tables=num_tables, things_per_table=things_per_table, min_things=min_things,
                                textures=bool(textures))
    path = sample_robot_path(rng, layout, num_frames, distance=head_distance, stop_seconds=float(stop_seconds))
    wrist, looked_at = wrist_poses(np.random.default_rng([seed, 1]), layout, path.poses, path.table, wrist_distance,
                                   wrist_pitch_deg)
    cams = {}
    for name, poses, (h, w), hfov in (("head", path.poses, head_size, head_hfov_deg),
                                      ("wrist", wrist, wrist_size, wrist_hfov_deg)):
        cams[name] = _render(layout, path, poses, int(h), int(w), float(hfov), seed, fps, bool(shading))
    return CameraRigSequence(cams, {"head": 0.0, "wrist": float(wrist_offset_s)}, float(fps), seed, options,
                             wrist_targets=looked_at)


def _render(layout: RoomLayout, path: Any, poses: np.ndarray, height: int, width: int, hfov_deg: float, seed: int,
            fps: float, shading: bool) -> SyntheticSequence:
    from dataclasses import replace

    T, n = len(poses), len(layout.objects)
    fx = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    K = np.array([[fx, 0.0, 0.5 * width], [0.0, fx, 0.5 * height], [0.0, 0.0, 1.0]], np.float32)
    intrinsics = np.repeat(K[None], T, axis=0)
    extrinsics = poses_to_extrinsics(torch.from_numpy(poses)).numpy().astype(np.float32)
    rgb, depth, pid = render_views(layout.primitives, intrinsics, extrinsics, height, width, shading=shading)
    semantic, instance = label_images(layout.primitives, pid)
    counts = np.stack([np.bincount(instance[t].ravel(), minlength=n + 1) for t in range(T)]).astype(np.int64)
    objects = [replace(o, pixels_per_view=tuple(int(c) for c in counts[:, o.instance_id])) for o in layout.objects]
    return SyntheticSequence(
        rgb=rgb, depth=depth, semantic=semantic, instance=instance, intrinsics=intrinsics, extrinsics=extrinsics,
        class_names=list(CLASS_NAMES), things=list(THING_CLASSES), stuff=list(STUFF_CLASSES), objects=objects,
        primitives=layout.primitives, primitive_id=pid, layout=layout, path=path, seed=seed, fps=fps, removed={},
        pixel_counts=counts, place_pixels=counts.copy())
