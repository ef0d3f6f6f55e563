"""Independent analytic geometry of the synthetic primitives (tests only): distances to their surfaces and
inside tests, written from the primitives' definitions, not taken from the ray caster."""

from __future__ import annotations

import math

import numpy as np


def to_local(p: np.ndarray, center, yaw: float) -> np.ndarray:
    d = p - np.asarray(center)
    c, s = math.cos(yaw), math.sin(yaw)
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], -1)


def surface_distance(prim, p: np.ndarray) -> np.ndarray:
    """Unsigned distance (exact near the surface) from points [n, 3] to the primitive's surface."""
    if prim.kind == "sphere":
        return np.abs(np.linalg.norm(p - prim.center, axis=1) - prim.radius)
    if prim.kind == "box":
        q = np.abs(to_local(p, prim.center, prim.yaw)) - prim.half_size
        return np.abs(np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0))
    # closed vertical frustum
    rho = np.hypot(p[:, 0] - prim.x, p[:, 1] - prim.y)
    z = p[:, 2]
    k = (prim.r1 - prim.r0) / (prim.z1 - prim.z0)
    r_at = prim.r0 + k * (z - prim.z0)
    in_z = (z >= prim.z0 - 1e-9) & (z <= prim.z1 + 1e-9)
    side = np.where(in_z, np.abs(rho - r_at) / math.sqrt(1 + k * k), np.inf)
    cap0 = np.where(rho <= prim.r0 + 1e-9, np.abs(z - prim.z0), np.inf)
    cap1 = np.where(rho <= prim.r1 + 1e-9, np.abs(z - prim.z1), np.inf)
    return np.minimum(side, np.minimum(cap0, cap1))


def inside(prim, p: np.ndarray, margin: float = 1e-6) -> np.ndarray:
    """Points strictly inside the primitive (by more than ``margin``)."""
    if prim.kind == "sphere":
        return np.linalg.norm(p - prim.center, axis=1) < prim.radius - margin
    if prim.kind == "box":
        return (np.abs(to_local(p, prim.center, prim.yaw)) < prim.half_size - margin).all(1)
    rho = np.hypot(p[:, 0] - prim.x, p[:, 1] - prim.y)
    r_at = prim.r0 + (prim.r1 - prim.r0) * (p[:, 2] - prim.z0) / (prim.z1 - prim.z0)
    return (p[:, 2] > prim.z0 + margin) & (p[:, 2] < prim.z1 - margin) & (rho < r_at - margin)
