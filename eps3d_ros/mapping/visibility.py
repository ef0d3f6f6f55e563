"""Is a map thing's place seen by a window? (the evidence for forgetting moved objects)

A point ``p`` of a map thing is *seen* by a window when, for at least one of the window's cameras
(camera-from-map ``[R | t]``, pixel intrinsics ``K``, pixel ``(u, v)``'s centre at ``(u, v)``):

1. it is in front of the camera within range: ``visibility_min_range < z <= visibility_max_range``
   with ``z`` its camera depth;
2. it projects inside the image: the nearest pixel ``(round(u), round(v))`` is in ``[0, W) x [0, H)``;
3. the camera's depth ``d`` at that pixel is known (finite, > 0) and NOT clearly in front of it:
   ``d >= z - occlusion_tolerance``. (``d`` much larger: the camera saw through the place — the object
   is gone; ``d ≈ z``: it saw a surface there; ``d`` smaller: something nearer hides it — occluded.)

A thing's place is seen when both

* the fraction of its sampled points (``visibility_samples``, evenly spread over its points) that are
  seen reaches ``min_visible_fraction`` (a present object hides its own far side, about half its points,
  so the default 0.3 stays below one half), and
* the seen part would cover at least ``min_visible_pixels`` pixels, summed over the cameras: each seen
  point stands for ``P / samples`` map points, each a voxel of edge ``voxel_size`` seen face-on at depth
  ``z``, i.e. ``fx fy (voxel_size / z)^2`` pixels. A thing that small or that far in the images may be
  missed by the panoptic stage (``panoptic.min_object_points``), so not detecting it is no evidence.

Depth: the window's camera depth (``Cameras.depth``: measured where the frames had it, else the
network's); without it, a z-buffer of the window's Gaussian centres splatted to their nearest pixel
(pixels no centre falls on stay unknown, so they give no evidence).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .config import MapConfig
from .map_object import MapObject


def sample_points(objects: Sequence[MapObject], samples: int) -> tuple[np.ndarray, np.ndarray]:
    """``(points [Q, 3] float64, owner [Q] int64)``: up to ``samples`` points per object, evenly spread."""
    pts, owner = [], []
    for k, o in enumerate(objects):
        p = o.points
        if len(p) > samples:
            den = max(samples - 1, 1)
            p = p[(np.arange(samples) * (len(p) - 1) + den // 2) // den]  # evenly spread, rounded
        pts.append(p)
        owner.append(np.full(len(p), k, np.int64))
    if not pts:
        return np.zeros((0, 3)), np.zeros(0, np.int64)
    return np.concatenate(pts).astype(np.float64), np.concatenate(owner)


def points_seen(points: np.ndarray, cameras, depth: np.ndarray, config: MapConfig,
                voxel_size: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(seen [Q] bool, pixels [Q])`` for map-frame ``points [Q, 3]``: whether any camera sees each one (rules 1-3
    above; ``depth [S, H, W]``), and the pixels its voxel (edge ``voxel_size``, scalar or ``[Q]``) covers face-on,
    summed over the cameras that see it."""
    H, W = cameras.height, cameras.width
    seen = np.zeros(len(points), dtype=bool)
    pixels = np.zeros(len(points))
    size2 = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64) ** 2, (len(points),))
    for s in range(cameras.num_views):
        E, K = cameras.extrinsics[s], cameras.intrinsics[s]
        pc = points @ E[:, :3].T + E[:, 3]  # [Q, 3] camera frame, OpenCV axes
        z = pc[:, 2]
        ok = (z > config.visibility_min_range) & (z <= config.visibility_max_range)
        zs = np.where(ok, z, 1.0)  # no division by ~0 behind the camera (those points are out anyway)
        uvw = pc @ K.T
        col = np.round(uvw[:, 0] / zs)
        row = np.round(uvw[:, 1] / zs)
        ok &= (col >= 0) & (col < W) & (row >= 0) & (row < H)
        idx = np.nonzero(ok)[0]
        d = depth[s, row[idx].astype(np.int64), col[idx].astype(np.int64)]
        with np.errstate(invalid="ignore"):
            vis = np.isfinite(d) & (d > 0) & (d >= z[idx] - config.occlusion_tolerance)
        hit = idx[vis]
        seen[hit] = True
        pixels[hit] += K[0, 0] * K[1, 1] * size2[hit] / z[hit] ** 2
    return seen, pixels


def seen_places(objects: Sequence[MapObject], cameras, config: MapConfig, gaussians: np.ndarray | None = None
                ) -> np.ndarray:
    """``[M]`` bool: whose place the window with ``cameras`` sees (module docstring). ``gaussians [N, 3]``:
    the window's centres, for a z-buffer when the cameras carry no depth."""
    if not objects or cameras is None or cameras.num_views == 0:
        return np.zeros(len(objects), dtype=bool)
    depth = cameras.depth
    if depth is None:
        if gaussians is None or len(gaussians) == 0:
            return np.zeros(len(objects), dtype=bool)
        depth = zbuffer(gaussians, cameras)
    pts, owner = sample_points(objects, config.visibility_samples)
    sizes = np.array([o.voxel_size for o in objects])[owner]
    seen, pixels = points_seen(pts, cameras, depth, config, sizes)
    m = len(objects)
    samples = np.maximum(np.bincount(owner, minlength=m), 1)
    frac = np.bincount(owner, weights=seen, minlength=m) / samples
    area = np.bincount(owner, weights=pixels, minlength=m) * np.array([o.point_count for o in objects]) / samples
    return (frac >= config.min_visible_fraction) & (area >= config.min_visible_pixels)


def zbuffer(points: np.ndarray, cameras) -> np.ndarray:
    """``[S, H, W]`` float32 nearest camera depth of ``points [N, 3]`` splatted to their nearest pixel (NaN: none)."""
    H, W = cameras.height, cameras.width
    out = np.full((cameras.num_views, H * W), np.inf)
    pts = np.asarray(points, dtype=np.float64)
    for s in range(cameras.num_views):
        E, K = cameras.extrinsics[s], cameras.intrinsics[s]
        pc = pts @ E[:, :3].T + E[:, 3]
        z = pc[:, 2]
        front = z > 1e-6
        pc, z = pc[front], z[front]
        uvw = pc @ K.T
        col = np.round(uvw[:, 0] / z)
        row = np.round(uvw[:, 1] / z)
        inside = (col >= 0) & (col < W) & (row >= 0) & (row < H)
        flat = row[inside].astype(np.int64) * W + col[inside].astype(np.int64)
        np.minimum.at(out[s], flat, z[inside])
    out[~np.isfinite(out)] = np.nan
    return out.reshape(cameras.num_views, H, W).astype(np.float32)

