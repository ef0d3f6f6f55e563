"""Vectorised CPU ray casting of analytic primitives (numpy, float64).

One ray per pixel, through the pixel centre ``(u + offset, v + offset)`` (``offset = 0.5`` matches
the renderers in ``eps3d_ros.render``). Ray directions are scaled so that their camera-z component
is 1: the ray parameter ``t`` of a hit *is* its depth (camera z). Each primitive is only tested
against the pixels inside the screen rectangle of its projected bounding box; the nearest hit wins.

Colour = albedo (with solid texture, see :class:`~eps3d_ros.data.scene_layout.Surface`) × a
Lambertian term from one fixed directional light plus a hemispherical ambient term.

Conventions (``eps3d_ros.conventions``): ``K`` in pixels, ``extrinsics`` camera-from-world
``[R | t]`` with OpenCV axes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from eps3d_ros.data.primitives import Box, Frustum, Primitive, Sphere, Surface

__all__ = [
    "LIGHT_DIRECTION",
    "RenderedView",
    "render_view",
    "render_views",
    "label_images",
    "pixel_rays",
    "primitive_normals",
]

# Unit vector towards the light (world, z up): from above, a little to the side.
LIGHT_DIRECTION = np.array([0.35, -0.25, 0.90]) / np.linalg.norm([0.35, -0.25, 0.90])
_EPS_T = 1e-6  # hits closer than this along the ray are ignored
_SKY_LOW = np.array([0.86, 0.88, 0.91])
_SKY_HIGH = np.array([0.55, 0.70, 0.92])


@dataclass
class RenderedView:
    depth: np.ndarray  # [H, W] float64 camera z, 0 where nothing is hit
    primitive_id: np.ndarray  # [H, W] int32 index into the primitive list, -1 where nothing is hit
    part: np.ndarray  # [H, W] int8 part code of the hit (box face / frustum side or cap)
    rgb: np.ndarray  # [H, W, 3] float64 in [0, 1]


def pixel_rays(K: np.ndarray, extrinsics: np.ndarray, height: int, width: int, offset: float = 0.5):
    """Camera centre ``[3]`` and world ray directions ``(dx, dy, dz)``, each ``[H, W]``, with unit
    camera-z component (so the ray parameter equals the depth)."""
    R, t = extrinsics[:3, :3], extrinsics[:3, 3]
    origin = -R.T @ t
    k_inv = np.linalg.inv(K)
    u = np.arange(width, dtype=np.float64) + offset
    v = np.arange(height, dtype=np.float64) + offset
    xn = k_inv[0, 0] * u[None, :] + k_inv[0, 1] * v[:, None] + k_inv[0, 2]
    yn = k_inv[1, 0] * u[None, :] + k_inv[1, 1] * v[:, None] + k_inv[1, 2]
    # world direction = R^T @ (xn, yn, 1): row i of R^T is column i of R
    d = [R[0, i] * xn + R[1, i] * yn + R[2, i] for i in range(3)]
    return origin, d[0], d[1], d[2]


_CORNER_SIGNS = np.array([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], bool)  # the 8 corners of a box


def _pixel_rect(lo: np.ndarray, hi: np.ndarray, K, extrinsics, height: int, width: int, offset: float):
    """Slices of the pixels whose centres can see the box ``[lo, hi]`` (None if none can)."""
    corners = np.where(_CORNER_SIGNS, hi, lo)  # [8, 3]
    cam = corners @ extrinsics[:3, :3].T + extrinsics[:3, 3]
    z = cam[:, 2]
    if (z <= 1e-3).any():  # straddles the camera plane: test every pixel
        return slice(0, height), slice(0, width)
    if (z <= 0).all():
        return None
    uv = cam @ K.T
    u, v = uv[:, 0] / z, uv[:, 1] / z
    u0 = max(int(np.ceil(u.min() - offset)) - 1, 0)
    u1 = min(int(np.floor(u.max() - offset)) + 1, width - 1)
    v0 = max(int(np.ceil(v.min() - offset)) - 1, 0)
    v1 = min(int(np.floor(v.max() - offset)) + 1, height - 1)
    if u0 > u1 or v0 > v1:
        return None
    return slice(v0, v1 + 1), slice(u0, u1 + 1)


# --------------------------------------------------------------------------- intersections
# Each returns (t, part): t = inf where the ray misses.


def _hit_box(o, dx, dy, dz, p: Box):
    c, s = np.cos(p.yaw), np.sin(p.yaw)
    rel = o - p.center
    ol = (c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], rel[2])
    dl = (c * dx + s * dy, -s * dx + c * dy, dz)
    tn, tf = [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(3):
            inv = 1.0 / dl[a]
            ta = (-p.half_size[a] - ol[a]) * inv
            tb = (p.half_size[a] - ol[a]) * inv
            tn.append(np.minimum(ta, tb))
            tf.append(np.maximum(ta, tb))
    tnear = np.maximum(np.maximum(tn[0], tn[1]), tn[2])
    tfar = np.minimum(np.minimum(tf[0], tf[1]), tf[2])
    hit = (tnear <= tfar) & (tnear > _EPS_T)
    t = np.where(hit, tnear, np.inf)
    axis = np.where((tn[0] >= tn[1]) & (tn[0] >= tn[2]), 0, np.where(tn[1] >= tn[2], 1, 2))
    d_axis = np.where(axis == 0, dl[0], np.where(axis == 1, dl[1], dl[2]))
    part = (2 * axis + (d_axis < 0)).astype(np.int8)  # outward normal is + along the axis when d < 0
    return t, part


def _hit_sphere(o, dx, dy, dz, p: Sphere):
    px, py, pz = o - p.center
    a = dx * dx + dy * dy + dz * dz
    b = px * dx + py * dy + pz * dz
    c = px * px + py * py + pz * pz - p.radius * p.radius
    disc = b * b - a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / a
    t = np.where((disc >= 0) & (t > _EPS_T), t, np.inf)
    return t, np.zeros(t.shape, np.int8)


def _hit_frustum(o, dx, dy, dz, p: Frustum):
    k = (p.r1 - p.r0) / (p.z1 - p.z0)
    px, py, oz = o[0] - p.x, o[1] - p.y, o[2]
    w = p.r0 + k * (oz - p.z0)  # radius of the (infinite) cone at the camera's height
    A = dx * dx + dy * dy - k * k * dz * dz
    B = 2.0 * (px * dx + py * dy - w * k * dz)
    C = px * px + py * py - w * w
    disc = B * B - 4.0 * A * C
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = np.sqrt(disc)
        q = -0.5 * (B + np.where(B >= 0, sq, -sq))  # numerically stable roots q/A and C/q
        roots = (q / A, C / q)
        t_side = np.full(dx.shape, np.inf)
        for r in roots:
            z = oz + r * dz
            ok = (disc >= 0) & (r > _EPS_T) & (z >= p.z0) & (z <= p.z1)
            t_side = np.where(ok & (r < t_side), r, t_side)
        t = t_side
        part = np.zeros(dx.shape, np.int8)
        for code, zc, rc in ((1, p.z0, p.r0), (2, p.z1, p.r1)):
            if rc <= 0:
                continue
            tc = (zc - oz) / dz
            hx, hy = px + tc * dx, py + tc * dy
            ok = (tc > _EPS_T) & (hx * hx + hy * hy <= rc * rc) & (tc < t)
            t = np.where(ok, tc, t)
            part = np.where(ok, np.int8(code), part)
    return t, part


_HIT = {"box": _hit_box, "sphere": _hit_sphere, "frustum": _hit_frustum}


# --------------------------------------------------------------------------- shading


def primitive_normals(p: Primitive, points: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Outward unit normals ``[n, 3]`` of primitive ``p`` at surface ``points`` ``[n, 3]``."""
    if p.kind == "sphere":
        return (points - p.center) / p.radius
    n = np.zeros_like(points)
    if p.kind == "box":
        axis, sign = part // 2, np.where(part % 2 == 1, 1.0, -1.0)
        local = np.zeros_like(points)
        local[np.arange(len(points)), axis] = sign
        c, s = np.cos(p.yaw), np.sin(p.yaw)
        n[:, 0] = c * local[:, 0] - s * local[:, 1]
        n[:, 1] = s * local[:, 0] + c * local[:, 1]
        n[:, 2] = local[:, 2]
        return n
    # frustum
    k = (p.r1 - p.r0) / (p.z1 - p.z0)
    rx, ry = points[:, 0] - p.x, points[:, 1] - p.y
    rho = np.maximum(np.hypot(rx, ry), 1e-12)
    side = np.stack([rx / rho, ry / rho, np.full_like(rho, -k)], -1) / np.sqrt(1.0 + k * k)
    n[:] = side
    n[part == 1] = (0.0, 0.0, -1.0)
    n[part == 2] = (0.0, 0.0, 1.0)
    return n


def _albedo(surf: Surface, points: np.ndarray, part: np.ndarray) -> np.ndarray:
    base = np.asarray(surf.albedo, np.float64)
    rel = points - np.asarray(surf.origin)
    c, s = np.cos(surf.yaw), np.sin(surf.yaw)
    lx, ly, lz = c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]
    p = surf.period
    tex = surf.texture
    if tex == "wood":
        grain = 1.0 + 0.09 * np.sin(2 * np.pi * (ly / p + 0.6 * np.sin(2 * np.pi * lx / 0.37)))
        out = base[None, :] * grain[:, None]
    else:
        if tex == "stripes":
            cell = np.floor(lz / p + 0.25)
        elif tex == "checker":
            cell = np.floor(lx / p + 0.25) + np.floor(ly / p + 0.25) + np.floor(lz / p + 0.25)
        elif tex == "tiles":
            cell = np.floor(lx / p) + np.floor(ly / p)
        elif tex == "wallpaper":
            cell = np.floor((lx + ly) / p)
        elif tex == "plain":
            cell = np.zeros(len(points))
        else:
            raise ValueError(f"unknown texture {tex!r}")
        second = np.asarray(surf.secondary if surf.secondary is not None else base * 0.62)
        out = np.where((cell % 2 == 1)[:, None], second, base)
    for code, rgb in surf.part_albedo:
        out[part == code] = rgb
    return out


def _shade(normals: np.ndarray, light: np.ndarray) -> np.ndarray:
    ndl = np.clip(normals @ light, 0.0, None)
    hemi = 0.5 + 0.5 * normals[:, 2]
    return 0.34 + 0.12 * hemi + 0.56 * ndl


# --------------------------------------------------------------------------- one view


def render_view(primitives: list[Primitive], K: np.ndarray, extrinsics: np.ndarray, height: int, width: int,
                offset: float = 0.5, light: np.ndarray = LIGHT_DIRECTION, shading: bool = True,
                exclude: Collection[int] = ()) -> RenderedView:
    """Ray-cast every pixel of one camera against all primitives (nearest hit wins) and shade it.

    ``exclude``: indices of primitives that are not in the world for this view (removed objects);
    primitive ids stay indices into the full ``primitives`` list.
    """
    K = np.asarray(K, np.float64)
    extrinsics = np.asarray(extrinsics, np.float64)
    o, dx, dy, dz = pixel_rays(K, extrinsics, height, width, offset)
    t_best = np.full((height, width), np.inf)
    pid = np.full((height, width), -1, np.int32)
    part = np.zeros((height, width), np.int8)
    for i, prim in enumerate(primitives):
        if i in exclude:
            continue
        rect = _pixel_rect(*prim.aabb(), K, extrinsics, height, width, offset)
        if rect is None:
            continue
        t, pc = _HIT[prim.kind](o, dx[rect], dy[rect], dz[rect], prim)
        tb = t_best[rect]
        upd = t < tb
        if not upd.any():
            continue
        tb[upd] = t[upd]
        pid[rect][upd] = i
        part[rect][upd] = pc[upd]

    valid = pid >= 0
    depth = np.where(valid, t_best, 0.0)
    # Sky for rays that hit nothing: a vertical gradient.
    dnorm = np.sqrt(dx * dx + dy * dy + dz * dz)
    up = np.clip(dz / dnorm, 0.0, 1.0)[..., None]
    rgb = _SKY_LOW * (1 - up) + _SKY_HIGH * up

    flat_pid = pid.ravel()
    order = np.argsort(flat_pid, kind="stable")
    ids = np.arange(len(primitives) + 1) - 1
    bounds = np.searchsorted(flat_pid[order], ids, side="left")
    bounds = np.append(bounds, flat_pid.size)
    d_flat = np.stack([dx.ravel(), dy.ravel(), dz.ravel()], -1)
    t_flat, part_flat = t_best.ravel(), part.ravel()
    rgb_flat = rgb.reshape(-1, 3)
    for i, prim in enumerate(primitives):
        idx = order[bounds[i + 1]:bounds[i + 2]]
        if idx.size == 0:
            continue
        pts = o + t_flat[idx, None] * d_flat[idx]
        pc = part_flat[idx]
        colour = _albedo(prim.surface, pts, pc)
        if shading:
            colour = colour * _shade(primitive_normals(prim, pts, pc), light)[:, None]
        rgb_flat[idx] = colour
    return RenderedView(depth=depth, primitive_id=pid, part=part, rgb=np.clip(rgb, 0.0, 1.0))


def render_views(primitives: list[Primitive], intrinsics: np.ndarray, extrinsics: np.ndarray, height: int, width: int,
                 shading: bool = True, exclude: Sequence[Collection[int]] | None = None,
                 offset: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-cast ``S`` cameras: ``intrinsics [S, 3, 3]``, camera-from-world ``extrinsics [S, 3, 4]`` (cast to
    float64 as given, so the ground truth matches the stored cameras exactly).

    Returns ``rgb [S, H, W, 3]`` uint8, ``depth [S, H, W]`` float32 (0 = nothing hit) and
    ``primitive_id [S, H, W]`` int32 (-1 = nothing hit). ``exclude[s]``: primitives absent from view ``s``.
    """
    S = int(extrinsics.shape[0])
    if exclude is not None and len(exclude) != S:
        raise ValueError(f"exclude has {len(exclude)} entries for {S} views")
    rgb = np.empty((S, height, width, 3), np.uint8)
    depth = np.empty((S, height, width), np.float32)
    pid = np.empty((S, height, width), np.int32)
    for s in range(S):
        view = render_view(primitives, np.asarray(intrinsics[s], np.float64), np.asarray(extrinsics[s], np.float64),
                           height, width, offset=offset, shading=shading, exclude=() if exclude is None else exclude[s])
        rgb[s] = np.round(view.rgb * 255.0).astype(np.uint8)
        depth[s] = view.depth
        pid[s] = view.primitive_id
    return rgb, depth, pid


def label_images(primitives: list[Primitive], primitive_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``semantic`` and ``instance`` images (int64, same shape as ``primitive_id``; 0 where nothing is hit)
    from the primitive ids of a render."""
    # Lookup tables from primitive index (+1, so that -1 = nothing hit maps to row 0).
    sem_lut = np.array([0] + [p.surface.class_id for p in primitives], np.int64)
    inst_lut = np.array([0] + [p.surface.instance_id for p in primitives], np.int64)
    return sem_lut[primitive_id + 1], inst_lut[primitive_id + 1]
