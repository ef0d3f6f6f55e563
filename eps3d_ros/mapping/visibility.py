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
* the seen part covers at least ``min_visible_pixels`` pixels, summed over the cameras: all its seen
  points are projected and the distinct cells they fall in are counted, on a grid of cells of
  ``c = max(1, f voxel_size / z̄)`` pixels (``f = sqrt(fx fy)``, ``z̄`` the mean depth of its seen points in
  that camera), times ``c²``: the area of its silhouette, whether its points are sparser than the pixels
  (near) or denser (far, or a surface thickened by pose noise). A thing that small in the images may be
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


def _visible(points: np.ndarray, cameras, depth: np.ndarray, config: MapConfig, s: int):
    """Camera ``s``: ``(indices of the points it sees, their u, v, z)`` (rules 1-3 above)."""
    H, W = cameras.height, cameras.width
    E, K = cameras.extrinsics[s], cameras.intrinsics[s]
    pc = points @ E[:, :3].T + E[:, 3]  # [Q, 3] camera frame, OpenCV axes
    z = pc[:, 2]
    ok = (z > config.visibility_min_range) & (z <= config.visibility_max_range)
    zs = np.where(ok, z, 1.0)  # no division by ~0 behind the camera (those points are out anyway)
    uvw = pc @ K.T
    u, v = uvw[:, 0] / zs, uvw[:, 1] / zs
    col, row = np.round(u), np.round(v)
    ok &= (col >= 0) & (col < W) & (row >= 0) & (row < H)
    idx = np.nonzero(ok)[0]
    d = depth[s, row[idx].astype(np.int64), col[idx].astype(np.int64)]
    with np.errstate(invalid="ignore"):
        vis = np.isfinite(d) & (d > 0) & (d >= z[idx] - config.occlusion_tolerance)
    idx = idx[vis]
    return idx, u[idx], v[idx], z[idx]


def points_seen(points: np.ndarray, cameras, depth: np.ndarray, config: MapConfig) -> np.ndarray:
    """``[Q]`` bool: which map-frame ``points [Q, 3]`` any camera sees (rules 1-3 above); ``depth [S, H, W]``."""
    seen = np.zeros(len(points), dtype=bool)
    for s in range(cameras.num_views):
        seen[_visible(points, cameras, depth, config, s)[0]] = True
    return seen


def silhouette_pixels(points: np.ndarray, owner: np.ndarray, voxel_sizes: np.ndarray, cameras, depth: np.ndarray,
                      config: MapConfig) -> np.ndarray:
    """``[M]`` pixels covered by the seen points of each object (``owner [Q]`` in ``0..M-1``, ``voxel_sizes [M]``),
    summed over the cameras (see the module docstring)."""
    m = len(voxel_sizes)
    total = np.zeros(m)
    for s in range(cameras.num_views):
        idx, u, v, z = _visible(points, cameras, depth, config, s)
        if not len(idx):
            continue
        o = owner[idx]
        count = np.bincount(o, minlength=m)
        zmean = np.bincount(o, weights=z, minlength=m) / np.maximum(count, 1)
        f = float(np.sqrt(cameras.intrinsics[s][0, 0] * cameras.intrinsics[s][1, 1]))
        cell = np.maximum(1.0, f * voxel_sizes / np.where(zmean > 0, zmean, np.inf))  # [M] pixels per cell side
        cu = np.floor((u + 0.5) / cell[o]).astype(np.int64)  # u + 0.5 in [0, W): pixel (u, v)'s centre is at (u, v)
        cv = np.floor((v + 0.5) / cell[o]).astype(np.int64)
        keys = np.unique((o * (cameras.width + 2) + cu) * (cameras.height + 2) + cv)
        total += np.bincount(keys // ((cameras.width + 2) * (cameras.height + 2)), minlength=m) * cell ** 2
    return total


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
    seen = points_seen(pts, cameras, depth, config)
    m = len(objects)
    frac = np.bincount(owner, weights=seen, minlength=m) / np.maximum(np.bincount(owner, minlength=m), 1)
    out = frac >= config.min_visible_fraction
    cand = np.nonzero(out)[0]
    if len(cand) and config.min_visible_pixels > 0:  # all points of the candidates: their silhouettes
        every = np.concatenate([objects[k].points for k in cand]).astype(np.float64)
        own = np.repeat(np.arange(len(cand)), [objects[k].point_count for k in cand])
        sizes = np.array([objects[k].voxel_size for k in cand])
        out[cand] = silhouette_pixels(every, own, sizes, cameras, depth, config) >= config.min_visible_pixels
    return out


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

