"""Seeded procedural scenes and sequences with exact ground truth, ray-cast on the CPU.

    from eps3d_ros.data.synthetic import generate_scene, generate_sequence, CLASS_NAMES
    scene = generate_scene(seed=0, num_views=4, height=224, width=224)
    sequence = generate_sequence(seed=0, num_frames=60, height=112, width=112)  # a robot walking through a room

Sequences (:func:`generate_sequence`, :class:`~eps3d_ros.data.sequence.SyntheticSequence`) are
described there; the rest of this docstring is about single tabletop scenes.

A room (floor, 2–4 walls), a table and 3–8 things on it (plus 0–2 chairs beside it), seen by
``num_views`` cameras that move around the table on a ring (azimuth steps of 20–40°, 0.8–1.6 m
from the table centre, 0.3–0.9 m above the table top, looking at a point near the table centre,
no roll). Everything is drawn from ``np.random.default_rng(seed)``: the same seed and options give
bit-identical scenes.

Outputs are **numpy** arrays (not torch):

* ``rgb`` ``[S, H, W, 3]`` uint8; ``depth`` ``[S, H, W]`` float32 camera z in metres (0 = no hit);
* ``semantic`` ``[S, H, W]`` int64 index into ``class_names`` (0 = background: nothing hit);
* ``instance`` ``[S, H, W]`` int64 (0 = none: background and stuff), the same id for the same
  object in every view (``objects[i].instance_id == i + 1``);
* ``intrinsics`` ``[S, 3, 3]`` float32 pixels; ``extrinsics`` ``[S, 3, 4]`` float32
  camera-from-world, OpenCV axes (``eps3d_ros.conventions``).

World frame: metres, **z up**, floor at ``z = 0``, the table centred over the origin.
Pixel ``(u, v)`` is sampled at its centre ``(u + 0.5, v + 0.5)`` (``scene.pixel_offset``), as the
renderers in ``eps3d_ros.render`` do: the world point of pixel ``(u, v)`` is
``pose @ (depth * K^-1 [u + 0.5, v + 0.5, 1])``, see :meth:`SyntheticScene.world_points`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from eps3d_ros.conventions import poses_to_extrinsics
from eps3d_ros.data.camera_path import look_at_pose, sample_robot_path
from eps3d_ros.data.raycast import LIGHT_DIRECTION, label_images, render_view, render_views
from eps3d_ros.data.rendered_views import RenderedViews
from eps3d_ros.data.room_layout import sample_room_layout
from eps3d_ros.data.sequence import SyntheticSequence
from eps3d_ros.data.scene_layout import (
    CLASS_NAMES,
    COLOURS,
    STUFF_CLASSES,
    THING_CLASSES,
    Layout,
    Primitive,
    SceneObject,
    sample_layout,
)

__all__ = ["CLASS_NAMES", "COLOURS", "SyntheticScene", "SyntheticSequence", "generate_scene", "generate_sequence",
           "look_at_pose", "with_objects_removed"]


@dataclass
class SyntheticScene(RenderedViews):
    """A rendered synthetic scene (numpy arrays; see the module docstring for conventions)."""

    rgb: np.ndarray  # [S, H, W, 3] uint8
    depth: np.ndarray  # [S, H, W] float32, camera z in metres, 0 where nothing is hit
    semantic: np.ndarray  # [S, H, W] int64
    instance: np.ndarray  # [S, H, W] int64
    intrinsics: np.ndarray  # [S, 3, 3] float32, pixels
    extrinsics: np.ndarray  # [S, 3, 4] float32, camera-from-world (OpenCV)
    class_names: list[str]
    things: list[int]
    stuff: list[int]
    objects: list[SceneObject]
    primitives: list[Primitive]  # every surface; index = primitive_id
    primitive_id: np.ndarray  # [S, H, W] int32 index into primitives, -1 where nothing is hit
    layout: Layout
    seed: int
    pixel_offset: float = 0.5
    light_direction: np.ndarray = field(default_factory=lambda: LIGHT_DIRECTION.copy())  # unit, towards the light

    @property
    def num_views(self) -> int:
        return int(self.rgb.shape[0])

    def visible_centroids(self, min_pixels: int = 30) -> dict[str, list[np.ndarray]]:
        """Per class name, the centroids (world frame, float64) of the visible surface of each object seen in
        at least ``min_pixels`` pixels over all views — where a query for that class should land."""
        world = np.stack([self.world_points(v) for v in range(self.num_views)])
        out: dict[str, list[np.ndarray]] = {}
        for o in self.objects:
            m = self.instance == o.instance_id
            if int(m.sum()) >= min_pixels:
                out.setdefault(o.class_name, []).append(world[m].mean(0))
        return out

    def object(self, instance_id: int) -> SceneObject:
        """The object record with this instance id."""
        for o in self.objects:
            if o.instance_id == instance_id:
                return o
        raise KeyError(f"no object with instance id {instance_id}")


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_range(name: str, value, lo_min: float, hi_max: float) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (min, max) pair, got {value!r}") from None
    if not (lo_min <= lo <= hi <= hi_max):
        raise ValueError(f"{name} must satisfy {lo_min} <= min <= max <= {hi_max}, got {value!r}")
    return lo, hi


def _sample_cameras(rng: np.random.Generator, layout: Layout, num_views: int, height: int, width: int,
                    hfov_deg: float, distance: tuple[float, float], elevation: tuple[float, float],
                    azimuth_step: tuple[float, float], target_jitter: float, table_fit: float):
    fx = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    K = np.array([[fx, 0.0, 0.5 * width], [0.0, fx, 0.5 * height], [0.0, 0.0, 1.0]])
    half_fov = min(math.atan(0.5 * width / fx), math.atan(0.5 * height / fx))
    top = layout.table_height
    rho = table_fit * float(np.hypot(*layout.table_half_size))  # part of the table top's circumradius
    centre = np.array([rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04), top + rng.uniform(0.0, 0.06)])
    az = rng.uniform(0.0, 2.0 * np.pi)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    poses = []
    for i in range(num_views):
        if i:
            az += direction * math.radians(rng.uniform(*azimuth_step))
        target = centre + np.append(rng.uniform(-target_jitter, target_jitter, 2), 0.0)
        h = rng.uniform(*elevation)
        # Far enough that (most of) the table top fits in the field of view, within the ring.
        dz = top + h - target[2]
        d_min = math.sqrt(max((rho / math.sin(half_fov)) ** 2 - dz * dz, 0.0))
        lo = min(max(distance[0], d_min), distance[1])
        dist = rng.uniform(lo, max(distance[1], lo))
        eye = np.array([centre[0] + dist * math.cos(az), centre[1] + dist * math.sin(az), top + h])
        poses.append(look_at_pose(eye, target))
    poses = torch.from_numpy(np.stack(poses))
    extrinsics = poses_to_extrinsics(poses).numpy().astype(np.float32)
    intrinsics = np.repeat(K[None].astype(np.float32), num_views, axis=0)
    return intrinsics, extrinsics


def generate_scene(
    seed: int,
    num_views: int = 4,
    height: int = 224,
    width: int = 224,
    *,
    num_objects: int | None = None,
    num_chairs: int | None = None,
    num_walls: int | None = None,
    hfov_deg: float = 65.0,
    distance: tuple[float, float] = (0.8, 1.6),
    elevation: tuple[float, float] = (0.3, 0.9),
    azimuth_step_deg: tuple[float, float] = (20.0, 40.0),
    target_jitter: float = 0.05,
    table_fit: float = 0.75,
    textures: bool = True,
    shading: bool = True,
) -> SyntheticScene:
    """Sample and ray-cast a scene.

    Args:
        seed: non-negative integer; the only source of randomness.
        num_views, height, width: number of cameras and image size (all >= 1).
        num_objects: things on the table (0–12); default 3–8 drawn from the seed.
        num_chairs: chairs beside the table (0–4); default 0–2.
        num_walls: 0–4; default 2–4.
        hfov_deg: horizontal field of view (square pixels, principal point at the image centre).
        distance: horizontal camera distance range (m) from the table centre (see ``table_fit``).
        elevation: camera height range (m) above the table top.
        azimuth_step_deg: range of the azimuth step between consecutive views (one direction).
        target_jitter: the look-at point moves by up to this (m) in x and y per view.
        table_fit: the lower distance bound is raised so that a disc of this fraction of the table
            top's circumradius (about the look-at point) fits in the field of view (0 = off).
        textures, shading: switch off solid textures / Lambertian shading (flat albedo).

    Raises:
        ValueError: a bad argument (the message names it).
    """
    seed = _check_int("seed", seed, 0)
    num_views = _check_int("num_views", num_views, 1)
    height = _check_int("height", height, 1)
    width = _check_int("width", width, 1)
    if num_objects is not None and not 0 <= _check_int("num_objects", num_objects, 0) <= 12:
        raise ValueError(f"num_objects must be in [0, 12], got {num_objects}")
    if num_chairs is not None and not 0 <= _check_int("num_chairs", num_chairs, 0) <= 4:
        raise ValueError(f"num_chairs must be in [0, 4], got {num_chairs}")
    if num_walls is not None and not 0 <= _check_int("num_walls", num_walls, 0) <= 4:
        raise ValueError(f"num_walls must be in [0, 4], got {num_walls}")
    if not 1.0 <= float(hfov_deg) <= 150.0:
        raise ValueError(f"hfov_deg must be in [1, 150], got {hfov_deg}")
    # Cameras stay off the table footprint, above every chair and inside the walls (>= 2 m away).
    distance = _check_range("distance", distance, 0.75, 1.9)
    elevation = _check_range("elevation", elevation, 0.25, 1.5)
    azimuth_step = _check_range("azimuth_step_deg", azimuth_step_deg, 0.0, 180.0)
    if not 0.0 <= float(target_jitter) <= 0.2:
        raise ValueError(f"target_jitter must be in [0, 0.2], got {target_jitter}")
    if not 0.0 <= float(table_fit) <= 1.5:
        raise ValueError(f"table_fit must be in [0, 1.5], got {table_fit}")

    rng = np.random.default_rng(seed)
    layout = sample_layout(rng, num_objects=num_objects, num_chairs=num_chairs, num_walls=num_walls,
                           textures=bool(textures))
    intrinsics, extrinsics = _sample_cameras(rng, layout, num_views, height, width, float(hfov_deg), distance,
                                             elevation, azimuth_step, float(target_jitter),
                                             float(table_fit))

    prims = layout.primitives
    S = num_views
    # Rendered with the stored (float32) cameras so the ground truth matches them exactly.
    rgb, depth, pid = render_views(prims, intrinsics, extrinsics, height, width, shading=bool(shading))
    semantic, instance = label_images(prims, pid)

    counts = np.stack([np.bincount(instance[s].ravel(), minlength=len(layout.objects) + 1) for s in range(S)], 1)
    objects = [replace(o, pixels_per_view=tuple(int(c) for c in counts[o.instance_id])) for o in layout.objects]
    layout.objects = objects
    return SyntheticScene(
        rgb=rgb, depth=depth, semantic=semantic, instance=instance, intrinsics=intrinsics, extrinsics=extrinsics,
        class_names=list(CLASS_NAMES), things=list(THING_CLASSES), stuff=list(STUFF_CLASSES), objects=objects,
        primitives=prims, primitive_id=pid, layout=layout, seed=seed,
    )


def generate_sequence(
    seed: int,
    num_frames: int = 60,
    height: int = 112,
    width: int = 112,
    *,
    num_tables: int | None = None,
    things_per_table: tuple[int, int] = (4, 7),
    min_things: int = 20,
    chairs_per_table: tuple[int, int] = (0, 2),
    hfov_deg: float = 60.0,
    fps: float = 2.0,
    eye_height: tuple[float, float] = (1.3, 1.6),
    distance: tuple[float, float] = (0.9, 1.2),
    walk_pitch_deg: float = 45.0,
    walk_speed: float = 0.7,
    turn_rate_deg: float = 60.0,
    stop_seconds: float = 6.0,
    removed: Mapping[int, int] | None = None,
    textures: bool = True,
    shading: bool = True,
) -> SyntheticSequence:
    """Sample a room with several furniture groups and ray-cast a robot's walk through it.

    The room (:func:`~eps3d_ros.data.room_layout.sample_room_layout`): 4–5 tables against the walls
    (``num_tables`` 4–6), ``things_per_table`` things on each and ``chairs_per_table`` chairs at their
    ends, at least ``min_things`` things in all. The path (:func:`~eps3d_ros.data.camera_path.sample_robot_path`):
    a head at ``eye_height`` that stops at each table, walks to the next, turns round after the last
    and comes back; ``num_frames`` frames spread evenly over it. Same seed and options → bit-identical
    sequence; ``removed`` does not change the room or the path.

    Args:
        seed: non-negative integer; the only source of randomness.
        num_frames, height, width: frames and image size (>= 1; at least 2 frames).
        hfov_deg: horizontal field of view (square pixels, principal point at the image centre).
        fps: frame rate of the stamps (frame ``k`` at ``k / fps`` s).
        eye_height, distance, walk_pitch_deg, walk_speed, turn_rate_deg, stop_seconds: the path
            (see :func:`~eps3d_ros.data.camera_path.sample_robot_path`).
        removed: instance id → first frame index from which that object is no longer in the world
            (the "moved object"); the ground truth says so (``presence``, ``place_pixels``).
        textures, shading: switch off solid textures / Lambertian shading (flat albedo).

    Raises:
        ValueError: a bad argument (the message names it).
    """
    options = {k: v for k, v in locals().items() if k not in ("seed", "num_frames", "height", "width")}
    seed, num_frames, height, width, eye_height, distance = _check_sequence_args(
        seed, num_frames, height, width, hfov_deg, fps, eye_height, distance, walk_pitch_deg, walk_speed,
        turn_rate_deg, stop_seconds)

    rng = np.random.default_rng(seed)
    layout = sample_room_layout(rng, num_tables=num_tables, things_per_table=things_per_table,
                                min_things=min_things, chairs_per_table=chairs_per_table, textures=bool(textures))
    path = sample_robot_path(rng, layout, num_frames, eye_height=eye_height, distance=distance,
                             walk_pitch_deg=float(walk_pitch_deg), walk_speed=float(walk_speed),
                             turn_rate_deg=float(turn_rate_deg), stop_seconds=float(stop_seconds))
    n = len(layout.objects)
    gone = _check_removed(removed, n, num_frames)

    intrinsics = np.repeat(_pinhole(height, width, hfov_deg)[None], num_frames, axis=0)
    extrinsics = poses_to_extrinsics(torch.from_numpy(path.poses)).numpy().astype(np.float32)

    prims = layout.primitives
    exclude = [frozenset(i for inst, first in gone.items() if t >= first
                         for i in layout.objects[inst - 1].primitive_indices) for t in range(num_frames)]
    rgb, depth, pid = render_views(prims, intrinsics, extrinsics, height, width, shading=bool(shading),
                                   exclude=exclude)
    semantic, instance = label_images(prims, pid)
    counts = np.stack([np.bincount(instance[t].ravel(), minlength=n + 1) for t in range(num_frames)]).astype(np.int64)
    place = _place_pixels(counts, gone, layout, intrinsics, extrinsics, depth)

    objects = [replace(o, pixels_per_view=tuple(int(c) for c in counts[:, o.instance_id])) for o in layout.objects]
    layout.objects = objects
    return SyntheticSequence(
        rgb=rgb, depth=depth, semantic=semantic, instance=instance, intrinsics=intrinsics, extrinsics=extrinsics,
        class_names=list(CLASS_NAMES), things=list(THING_CLASSES), stuff=list(STUFF_CLASSES), objects=objects,
        primitives=prims, primitive_id=pid, layout=layout, path=path, seed=seed, fps=float(fps), removed=gone,
        pixel_counts=counts, place_pixels=place, options=options,
    )


def _check_sequence_args(seed, num_frames, height, width, hfov_deg, fps, eye_height, distance, walk_pitch_deg,
                         walk_speed, turn_rate_deg, stop_seconds) -> tuple:
    """``(seed, num_frames, height, width, eye_height, distance)`` checked; a bad argument is named."""
    checked = (_check_int("seed", seed, 0), _check_int("num_frames", num_frames, 2), _check_int("height", height, 1),
               _check_int("width", width, 1))
    if not 1.0 <= float(hfov_deg) <= 150.0:
        raise ValueError(f"hfov_deg must be in [1, 150], got {hfov_deg}")
    if not (float(fps) > 0 and math.isfinite(float(fps))):
        raise ValueError(f"fps must be a positive number, got {fps}")
    ranges = (_check_range("eye_height", eye_height, 0.9, 2.0), _check_range("distance", distance, 0.9, 2.0))
    if not 0.0 <= float(walk_pitch_deg) <= 60.0:
        raise ValueError(f"walk_pitch_deg must be in [0, 60], got {walk_pitch_deg}")
    for name, value in (("walk_speed", walk_speed), ("turn_rate_deg", turn_rate_deg), ("stop_seconds", stop_seconds)):
        if not (float(value) > 0 and math.isfinite(float(value))):
            raise ValueError(f"{name} must be a positive number, got {value}")
    return (*checked, *ranges)


def _pinhole(height: int, width: int, hfov_deg: float) -> np.ndarray:
    """``K [3, 3]`` float32 of square pixels, principal point at the image centre (pixel centres at +0.5)."""
    fx = 0.5 * width / math.tan(math.radians(float(hfov_deg)) / 2)
    return np.array([[fx, 0.0, 0.5 * width], [0.0, fx, 0.5 * height], [0.0, 0.0, 1.0]], dtype=np.float32)


def _place_pixels(counts: np.ndarray, gone: dict[int, int], layout: Any, intrinsics: np.ndarray,
                  extrinsics: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Pixels per frame and instance where each object is, or would be after it was removed: in front of what
    is there now (``counts`` where nothing was removed)."""
    place = counts.copy()
    height, width = depth.shape[1:]
    for inst, first in gone.items():
        own = [layout.primitives[i] for i in layout.objects[inst - 1].primitive_indices]
        for t in range(first, len(depth)):
            ghost = render_view(own, intrinsics[t].astype(np.float64), extrinsics[t].astype(np.float64), height,
                                width, offset=0.5, shading=False)
            hit = ghost.primitive_id >= 0
            place[t, inst] = int((hit & ((depth[t] <= 0) | (ghost.depth < depth[t]))).sum())
    return place


def _check_removed(removed: Mapping[int, int] | None, num_objects: int, num_frames: int) -> dict[int, int]:
    if removed is None:
        return {}
    if not isinstance(removed, Mapping):
        raise ValueError(f"removed must map instance id → first frame without the object, got {removed!r}")
    out = {}
    for inst, first in removed.items():
        inst = _check_int("removed instance id", inst, 1)
        if inst > num_objects:
            raise ValueError(f"removed: no object with instance id {inst} (ids are 1..{num_objects})")
        first = _check_int(f"removed[{inst}] (first frame without it)", first, 0)
        if first >= num_frames:
            raise ValueError(f"removed[{inst}] = {first} is not a frame index (0..{num_frames - 1})")
        out[inst] = first
    return dict(sorted(out.items()))


def with_objects_removed(sequence: SyntheticSequence, removed: Mapping[int, int]) -> SyntheticSequence:
    """``sequence`` (same seed, size, options) with objects taken out of the world: instance id → the first frame
    without it (see :func:`generate_sequence`)."""
    return generate_sequence(sequence.seed, sequence.num_frames, sequence.height, sequence.width,
                             **{**sequence.options, "removed": removed})
