"""Which convention do a window's poses follow? Camera centres alone cannot tell: a camera-to-world pose in the
OpenGL convention (x right, y up, z backward, as instant-ngp, nerfstudio and Blender write them) has the same
centre as the OpenCV pose of that camera, so a fit of the centres accepts it, and everything placed through the
poses' orientation (measured depth, visibility) lands behind the cameras.

Given the reconstruction of a window (its predicted cameras and points, in the network's own frame), each way of
reading the 4x4 poses — OpenCV or OpenGL axes, camera-to-world or world-to-camera — is tried: the predicted
camera centres are fitted to the centres that reading gives (Umeyama), and then

* the *viewing directions*: the angle between each aligned predicted camera rotation and the pose's rotation
  (median over the views);
* the *points in front*: the fraction of the window's predicted points, aligned, that lie in front of the pose's
  camera (z > 0 in its OpenCV frame).

With measured depth the check needs no network at all (:func:`depth_agreement`): each view's depth, moved by the
poses into the other views, must agree with theirs.

The poses are expected as OpenCV camera-to-world (:data:`EXPECTED`). :func:`convention_warning` speaks up only
when the expected reading is clearly wrong (the cameras look the other way, or the points lie behind them) and
another reading is clearly right; a weak camera head (tens of degrees off) or noisy poses do not trigger it.
Every reading is converted by the functions of :mod:`eps3d_ros.conventions`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..conventions import extrinsics_to_poses, opengl_to_opencv_poses
from .similarity import AlignmentError, umeyama_sim3

__all__ = ["EXPECTED", "CONVENTIONS", "ConventionFit", "as_opencv_poses", "fit_conventions", "convention_warning",
           "depth_agreement", "depth_convention_warning"]

EXPECTED = "opencv_c2w"
# name -> (what the 4x4 matrices are, how to give them to eps3d_ros instead)
CONVENTIONS = {
    "opencv_c2w": ("camera-to-world poses with OpenCV camera axes (x right, y down, z forward)", "nothing to do"),
    "opengl_c2w": ("camera-to-world poses with OpenGL camera axes (x right, y up, z backward), as instant-ngp, "
                   "nerfstudio and Blender write them",
                   "flip the camera's y and z axes: pose @ diag(1, -1, -1, 1) "
                   "(eps3d_ros.conventions.opengl_to_opencv_poses)"),
    "opencv_w2c": ("world-to-camera matrices (camera-from-world extrinsics, OpenCV axes), as COLMAP's images.txt "
                   "and OpenCV's solvePnP give them",
                   "invert them: [R^T | -R^T t] (eps3d_ros.conventions.extrinsics_to_poses)"),
    "opengl_w2c": ("world-to-camera matrices with OpenGL camera axes (view matrices)",
                   "invert them, then flip the camera's y and z axes (opengl_to_opencv_poses(extrinsics_to_poses(P)))"),
}
_WRONG_DEG, _RIGHT_DEG = 90.0, 45.0  # viewing directions: clearly wrong / clearly right
_FEW_IN_FRONT, _MOST_IN_FRONT = 0.25, 0.75  # points in front of the cameras: clearly wrong / clearly right
# measured depth: a reading "agrees" when this fraction of the views' shared points agree (exact synthetic depth
# gives 0.95-0.99 under the right reading, 0.6-0.9 under a wrong one); another reading must beat the expected one
# by this much
_DEPTH_AGREES, _DEPTH_MARGIN = 0.9, 0.08


@dataclass(frozen=True)
class ConventionFit:
    name: str  # a key of CONVENTIONS
    residual_ratio: float  # RMS of the aligned predicted centres to the poses' centres / the centres' spread
    rotation_deg: float  # median angle between aligned predicted and given camera rotations
    in_front: float  # fraction of the aligned predicted points in front of their pose's camera (NaN: no points)


def as_opencv_poses(poses: np.ndarray, name: str) -> np.ndarray:
    """``[n, 4, 4]`` matrices read as ``name`` → OpenCV camera-to-world poses."""
    p = torch.from_numpy(np.asarray(poses, np.float64).copy())
    if name.endswith("_w2c"):
        p = extrinsics_to_poses(p)
    if name.startswith("opengl"):
        p = opengl_to_opencv_poses(p)
    return p.numpy()


def fit_conventions(pred_extrinsics: np.ndarray, poses: np.ndarray,
                    points: Sequence[np.ndarray] | None = None) -> list[ConventionFit]:
    """Every reading of ``poses [n, 4, 4]`` against the window's predicted camera-from-world ``[n, 3, 4]`` (and
    per view predicted points ``[k, 3]``, prediction frame), best first; readings whose centres cannot be fitted
    (fewer than 3, collinear) are left out."""
    E = np.asarray(pred_extrinsics, np.float64)
    R_pred = np.transpose(E[:, :3, :3], (0, 2, 1))  # camera-to-world rotations of the prediction
    c_pred = -np.einsum("sji,sj->si", E[:, :3, :3], E[:, :3, 3])
    fits = []
    for name in CONVENTIONS:
        P = as_opencv_poses(poses, name)
        c = P[:, :3, 3]
        spread = float(np.sqrt(((c - c.mean(0)) ** 2).sum(1).mean()))
        try:
            sim = umeyama_sim3(c_pred, c)
        except AlignmentError:
            continue
        residual = float(np.sqrt(((sim.apply(c_pred) - c) ** 2).sum(1).mean()))
        rel = np.einsum("sji,jk,skl->sil", P[:, :3, :3], sim.R, R_pred)  # given^T · aligned, per view
        angles = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)))
        in_front = _in_front(sim, P, points) if points is not None else math.nan
        fits.append(ConventionFit(name, residual / max(spread, 1e-12), float(np.median(angles)), in_front))
    return sorted(fits, key=lambda f: (f.residual_ratio > 0.5, f.rotation_deg))


def _in_front(sim, P: np.ndarray, points: Sequence[np.ndarray]) -> float:
    total = front = 0
    for i, pts in enumerate(points):
        if len(pts) == 0:
            continue
        x = sim.apply(np.asarray(pts, np.float64)) - P[i, :3, 3]
        z = x @ P[i, :3, 2]  # the camera's z axis (OpenCV: forward)
        total += len(z)
        front += int((z > 0).sum())
    return front / total if total else math.nan


def depth_agreement(poses: np.ndarray, depths: Sequence[np.ndarray], Ks: Sequence[np.ndarray], name: str,
                    samples: int = 400, tolerance: float = 0.1) -> float:
    """How well measured depth agrees across views when ``poses`` are read as ``name`` — no network involved:
    pixels of each view, lifted with their depth and moved by the poses into every other view, must land in
    front of it where its own depth says (within ``tolerance``, relative). Of the points landing inside the
    other image, in front of its camera and not behind the surface it sees (occluded there: no evidence), the
    fraction that agree rather than float in front of that surface; NaN when none lands (no overlap)."""
    P = as_opencv_poses(poses, name)
    rng = np.random.default_rng(0)
    agree = landed = 0
    for i, (d, K) in enumerate(zip(depths, Ks)):
        v, u = np.nonzero(np.isfinite(d) & (d > 0))
        if len(u) == 0:
            continue
        pick = rng.choice(len(u), size=min(samples, len(u)), replace=False)
        z = d[v[pick], u[pick]]
        cam = np.linalg.solve(K, np.stack([u[pick] * z, v[pick] * z, z]))  # [3, k] in camera i (pixel centres at u)
        world = P[i, :3, :3] @ cam + P[i, :3, 3:4]
        for j, (dj, Kj) in enumerate(zip(depths, Ks)):
            if j == i:
                continue
            x = P[j, :3, :3].T @ (world - P[j, :3, 3:4])  # camera j
            uv = (Kj @ x)[:2] / np.where(np.abs(x[2]) > 1e-9, x[2], 1e-9)
            uj, vj = np.round(uv).astype(np.int64)
            inside = (uj >= 0) & (uj < dj.shape[1]) & (vj >= 0) & (vj < dj.shape[0])
            seen = np.where(inside, dj[np.clip(vj, 0, dj.shape[0] - 1), np.clip(uj, 0, dj.shape[1] - 1)], np.nan)
            # a point behind the surface view j sees is occluded there (no evidence either way); one in front of
            # it contradicts the poses (view j sees through it), one on it agrees
            ok = inside & (x[2] > 0) & np.isfinite(seen) & (seen > 0) & (x[2] <= (1 + tolerance) * seen)
            landed += int(ok.sum())
            agree += int((ok & (np.abs(x[2] - seen) <= tolerance * seen)).sum())
    return agree / landed if landed else math.nan


def depth_convention_warning(poses: np.ndarray, depths: Sequence[np.ndarray], Ks: Sequence[np.ndarray]
                             ) -> str | None:
    """A warning naming the likely convention when the views' measured depth agrees across the poses read as
    OpenCV camera-to-world clearly less than under another reading; "" when the expected reading agrees
    (:data:`_DEPTH_AGREES`); None when the depth cannot tell (no overlap, or no reading agrees: noisy depth).

    Under a wrong reading many points still agree (occluded ones carry no evidence, and the readings share the
    centres), so the rule compares disagreement: another reading must agree for most points and disagree at
    most a third as often as the expected one."""
    scores = {name: depth_agreement(poses, depths, Ks, name) for name in CONVENTIONS}
    given = scores[EXPECTED]
    best = max((n for n in CONVENTIONS if n != EXPECTED and not math.isnan(scores[n])), key=scores.get, default=None)
    if best is not None and scores[best] >= _DEPTH_AGREES and (math.isnan(given) or (
            given <= scores[best] - _DEPTH_MARGIN and 1 - given >= 3 * (1 - scores[best]))):
        what, fix = CONVENTIONS[best]
        return (f"the poses do not look like OpenCV camera-to-world: read so, the measured depth of the views "
                f"agrees for {given:.0%} of the points they share; they look like {what} (then {scores[best]:.0%}). "
                f"Convert them: {fix}")
    return "" if not math.isnan(given) and given >= _DEPTH_AGREES else None


def convention_warning(fits: Sequence[ConventionFit], max_residual: float) -> str:
    """A warning naming the likely convention when the expected one is clearly wrong and another clearly right;
    "" otherwise (``max_residual``: the largest centre residual / spread that counts as a fit)."""
    by = {f.name: f for f in fits}
    given = by.get(EXPECTED)

    def right(f: ConventionFit) -> bool:
        return f.residual_ratio <= max_residual and f.rotation_deg <= _RIGHT_DEG and not f.in_front < _MOST_IN_FRONT

    def wrong(f: ConventionFit | None) -> bool:
        return f is None or f.residual_ratio > max_residual or f.rotation_deg >= _WRONG_DEG or \
            f.in_front < _FEW_IN_FRONT

    best = next((f for f in fits if f.name != EXPECTED and right(f)), None)
    if best is None or not wrong(given):
        return ""
    what, fix = CONVENTIONS[best.name]
    seen = ("" if given is None else
            f": read as OpenCV camera-to-world, the cameras look {given.rotation_deg:.0f} degrees away from the "
            f"reconstruction" + ("" if math.isnan(given.in_front) else
                                 f" and {given.in_front:.0%} of its points lie in front of them"))
    return (f"the poses do not look like OpenCV camera-to-world{seen}; they look like {what} (then "
            f"{best.rotation_deg:.0f} degrees, {'' if math.isnan(best.in_front) else f'{best.in_front:.0%} in front, '}"
            f"residual {best.residual_ratio:.0%} of the spread). Convert them: {fix}")
