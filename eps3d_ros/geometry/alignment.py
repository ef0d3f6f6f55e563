"""From the prediction's frame (first predicted camera, up to scale) to a metric output frame.

EPS3D predicts cameras and Gaussians in its own world (the first view's camera, arbitrary scale).
What makes them metric and puts them in the robot's map:

* TF camera poses (``Frame.pose``): predicted camera centres vs. TF centres → a similarity
  (Umeyama) into the map frame;
* measured depth: the robust median of measured / predicted depth is the scale.

:func:`metric_alignment` picks the best combination available (see its docstring for every branch)
and says how it got there, so the node can tell the user whether the scale is metric.

A similarity here is ``x ↦ s R x + t`` (``Sim3``); composition ``(A ∘ B)(x) = A(B(x))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..conventions import matrix_to_quat_xyzw, quat_xyzw_to_matrix
from ..model.outputs import Gaussians
from .pose_conventions import convention_warning, depth_convention_warning, fit_conventions
from .similarity import AlignmentError, Sim3, umeyama_sim3
from ..frames.frame import Frame

__all__ = [
    "Sim3",
    "Alignment",
    "AlignmentError",
    "umeyama_sim3",
    "depth_scale_ratio",
    "transform_gaussians",
    "metric_alignment",
    "camera_centers",
]


@dataclass(frozen=True, eq=False)  # identity equality/hash: numpy fields have no truth value
class Alignment:
    """How a prediction was put into the output frame."""

    sim3: Sim3  # prediction world → output frame
    frame_id: str  # the output frame: the map frame, or a camera optical frame
    scale_known: bool  # True when the output is metric
    method: str  # "tf" | "depth" | "tf+depth" | "none"
    residual_m: float  # RMS distance of the aligned predicted camera centres to the TF centres; NaN without TF
    reference_index: int  # the view whose pose (or optical frame) anchors the rigid part
    depth_scale: float | None = None  # measured / predicted depth when it was computed
    notes: tuple[str, ...] = field(default_factory=tuple)  # why a better method was not possible
    # a disagreement that made the alignment fall back (TF vs images, depth vs prediction): to be shown as a
    # warning (log, /diagnostics, CLI), "" when none
    warning: str = ""


def depth_scale_ratio(pred_depth: Any, measured: Any, min_valid: int = 100, max_spread: float = math.inf) -> float:
    """Robust metric scale: median of ``measured / pred`` over pixels valid in both, ``[S, H, W]`` each.

    Invalid: NaN/inf or non-positive measured depth, non-positive predicted depth. The median
    tolerates up to half outliers (reflections, edges, moving things). When the ratios disagree — the
    median absolute deviation of ``log(measured / pred)`` exceeds ``max_spread`` — no single scale fits
    and :class:`AlignmentError` says so (the depth is not of this scene, or the prediction is broken).
    """
    p = _np64(pred_depth)
    m = _np64(measured)
    if p.shape != m.shape:
        raise AlignmentError(f"mismatched sizes: predicted depth {p.shape} vs measured depth {m.shape} "
                             "(resize the frames to the network's image size first)")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(p) & np.isfinite(m) & (p > 1e-9) & (m > 0)
    count = int(valid.sum())
    if count < max(1, int(min_valid)):
        raise AlignmentError(f"only {count} pixels have both a measured and a predicted depth "
                             f"(need >= {min_valid}): depth scale unknown")
    ratios = m[valid] / p[valid]
    ratio = float(np.median(ratios))
    if not (ratio > 0 and math.isfinite(ratio)):
        raise AlignmentError(f"depth scale ratio {ratio} is not a positive number")
    spread = float(np.median(np.abs(np.log(ratios) - math.log(ratio))))
    if spread > max_spread:
        raise AlignmentError(f"measured and predicted depth disagree: the spread of log(measured / predicted) is "
                             f"{spread:.2f} (limit pipeline.max_depth_ratio_spread {max_spread:g}), so no single "
                             "scale fits")
    return ratio


def _np64(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def transform_gaussians(g: Gaussians, sim3: Sim3) -> Gaussians:
    """Gaussians mapped by ``x ↦ s R x + t``: means, covariances ``s² R Σ Rᵀ``, scales ``× s``, rotations ``R ∘ q``.

    Semantic and instance features and opacities do not depend on the frame. Spherical harmonics
    are left as they are: the DC term (the colour the scene uses) is rotation invariant; the
    view-dependent higher bands would need a Wigner rotation and are not rotated.
    """
    dev, dt = g.means.device, g.means.dtype
    R = torch.from_numpy(sim3.R.copy()).to(device=dev, dtype=dt)  # a copy: Sim3's arrays are read-only
    t = torch.from_numpy(sim3.t.copy()).to(device=dev, dtype=dt)
    s = float(sim3.scale)
    means = s * g.means @ R.T + t  # [B, N, 3]
    cov = (s * s) * (R @ g.covariances @ R.T)  # [B, N, 3, 3]
    rot = quat_xyzw_to_matrix(g.rotations.to(dt), eps=1e-8)  # [B, N, 3, 3] (as the adapter reads them)
    rotations = matrix_to_quat_xyzw(R @ rot).to(g.rotations.dtype)  # [B, N, 4] xyzw, w >= 0
    return replace(g, means=means, covariances=cov.to(g.covariances.dtype), scales=g.scales * s, rotations=rotations)


def camera_centers(extrinsics: Any) -> np.ndarray:
    """Centres ``[S, 3]`` (``-Rᵀ t``) of camera-from-world ``[S, 3|4, 4]``."""
    e = _np64(extrinsics)
    R, t = e[:, :3, :3], e[:, :3, 3]
    return -np.einsum("sji,sj->si", R, t)


def metric_alignment(
    pred: Any,
    frames: Sequence[Frame],
    config: Any,
    batch_index: int = 0,
    *,
    min_spread_ratio: float = 0.05,
    min_spread_m: float = 0.01,
    min_depth_pixels: int = 100,
) -> Alignment:
    """The similarity from the prediction's world to the output frame, from TF poses and/or depth.

    ``pred``: an :class:`~eps3d_ros.model.EPS3DOutput` (reads ``extrinsics`` and ``depth``) for
    ``frames`` in view order, at the network's image size. ``config``: an ``Eps3dConfig`` (reads
    ``output.map_frame`` and ``pipeline.use_depth``). Branches, best first:

    1. ``>= 3`` posed views whose TF centres are not collinear (second principal spread at least
       ``min_spread_ratio`` of the first and ``min_spread_m`` metres RMS): Umeyama Sim3 of predicted
       → TF centres; method ``"tf"``, frame = map, metric.
    2. posed views, but fewer or collinear: rigid part from the *newest* posed view (its predicted
       camera is put exactly at its TF pose), scale from depth (method ``"tf+depth"``), else from the
       ratio of the TF and predicted camera baselines when they span ``min_spread_m`` (``"tf"``). Frame =
       map. Without any scale the map frame (metric by definition) is not used: branch 4.
       A full fit (1.) whose camera-centre residual exceeds ``pipeline.max_alignment_error`` of the TF
       cameras' spread is rejected (TF and images disagree): the camera-frame branches apply, and
       :attr:`Alignment.warning` says why.
    3. depth, no (usable) poses: scale from depth, frame = the *newest* view's optical frame (its
       predicted camera becomes the origin, axes OpenCV); method ``"depth"``. Depth whose ratio to the
       prediction varies more than ``pipeline.max_depth_ratio_spread`` gives no scale (warning).
    4. neither: the same rigid placement, scale 1; method ``"none"``, ``scale_known`` False.

    The camera-frame branches anchor on the newest view so that (frame_id, snapshot stamp = newest
    stamp) is a consistent header for TF. Depth-less frames, or too few valid depth pixels, simply
    leave depth out (a note says so).
    """
    frames = list(frames)
    ext = pred.extrinsics[batch_index]  # [S, 3, 4]
    S = int(ext.shape[0])
    if len(frames) != S:
        raise ValueError(f"{len(frames)} frames for a prediction of {S} views")
    E = _np64(ext)  # [S, 3, 4] camera-from-world of the prediction
    c_pred = camera_centers(E)  # [S, 3]
    map_frame = config.output.map_frame
    pc = config.pipeline
    notes: list[str] = []
    depth_scale, warning = _depth_scale(pred, frames, pc, batch_index, min_depth_pixels, notes)
    posed = [i for i, f in enumerate(frames) if f.pose is not None]
    if len(posed) >= 3:
        fit = _tf_fit(frames, posed, c_pred, pc, map_frame, depth_scale, notes, min_spread_ratio, min_spread_m,
                      lambda: _convention_check(pred, batch_index, E, frames, posed, pc.max_alignment_error))
        if isinstance(fit, Alignment):
            return fit
        posed, warning = fit if fit is not None else (posed, warning)
    elif posed:
        notes.append(f"only {len(posed)} TF pose(s) in the window (3 non-collinear needed for a full fit)")
    if posed:
        c_map = np.stack([frames[i].pose[:3, 3] for i in posed])
        anchored = _anchored(frames, posed, E, c_pred, c_map, map_frame, depth_scale, notes, warning, min_spread_m)
        if anchored is not None:
            return anchored
    k = S - 1
    if depth_scale is not None:
        return Alignment(Sim3.from_rigid(E[k], scale=depth_scale), frames[k].frame_id, True, "depth", float("nan"), k,
                         depth_scale, tuple(notes), warning)
    notes.append("no usable TF pose and no usable depth: output in the newest camera's optical frame, scale unknown")
    return Alignment(Sim3.from_rigid(E[k]), frames[k].frame_id, False, "none", float("nan"), k, None, tuple(notes),
                     warning)


def _depth_scale(pred: Any, frames: list[Frame], pc: Any, batch_index: int, min_depth_pixels: int,
                 notes: list[str]) -> tuple[float | None, str]:
    """``(measured / predicted depth over the frames that have depth or None, warning)``."""
    with_depth = [i for i, f in enumerate(frames) if f.depth is not None] if pc.depth_enabled else []
    if not with_depth:
        return None, ""
    pd = pred.depth[batch_index, with_depth, ..., 0]  # [S', H, W]
    md = np.stack([frames[i].depth for i in with_depth])
    try:
        return depth_scale_ratio(pd, md, min_depth_pixels, pc.max_depth_ratio_spread), ""
    except AlignmentError as e:
        if "mismatched sizes" in str(e):
            raise
        notes.append(f"depth not used: {e}")
        return None, f"depth not used: {e}" if "disagree" in str(e) else ""


def _convention_check(pred: Any, batch_index: int, E: np.ndarray, frames: list[Frame], posed: list[int],
                      max_error: float) -> str:
    """A warning when the poses look like another convention than OpenCV camera-to-world (see
    :mod:`.pose_conventions`): viewing directions and points in front of the cameras, not only centres."""
    poses = np.stack([frames[i].pose for i in posed])
    if all(frames[i].depth is not None for i in posed):  # measured depth: a check without the network
        warning = depth_convention_warning(poses, [frames[i].depth for i in posed], [frames[i].K for i in posed])
        if warning is not None:
            return warning
    points = None
    wp = getattr(pred, "world_points", None)
    if wp is not None:
        w = _np64(wp[batch_index])  # [S, H, W, 3]
        step = max(1, int(math.sqrt(w.shape[1] * w.shape[2] / 256)))  # ~256 points a view
        points = [w[i, ::step, ::step].reshape(-1, 3) for i in posed]
        points = [p[np.isfinite(p).all(1)] for p in points]
    return convention_warning(fit_conventions(E[posed], poses, points), max_error)


def _tf_fit(frames: list[Frame], posed: list[int], c_pred: np.ndarray, pc: Any, map_frame: str,
            depth_scale: float | None, notes: list[str], min_spread_ratio: float, min_spread_m: float,
            convention_check: Any = None) -> Alignment | tuple[list[int], str] | None:
    """Branch 1 of :func:`metric_alignment`: the Umeyama fit of ``>= 3`` posed views. An :class:`Alignment` when it
    holds; ``([], warning)`` when TF and the images disagree, or the poses follow another convention (no map frame
    then); None to anchor on one pose."""
    c_map = np.stack([frames[i].pose[:3, 3] for i in posed])
    sv = np.linalg.svd(c_map - c_map.mean(0), compute_uv=False)
    if not (sv[1] >= min_spread_ratio * sv[0] and sv[1] / math.sqrt(len(posed)) >= min_spread_m):
        notes.append(f"TF camera centres nearly collinear (principal spreads {(sv / math.sqrt(len(posed))).round(4).tolist()} m): "
                     "rotation about the path is undetermined, anchoring on one pose instead")
        return None
    try:
        sim = umeyama_sim3(c_pred[posed], c_map)
    except AlignmentError as e:
        notes.append(f"TF similarity fit failed: {e}")
        return None
    residual = _residual(sim, c_pred[posed], c_map)
    spread = float(np.sqrt(((c_map - c_map.mean(0)) ** 2).sum(1).mean()))
    convention = convention_check() if convention_check is not None else ""
    if convention:  # the centres may fit, but the poses' orientation is not OpenCV camera-to-world
        warning = convention + "; the scene is kept in the camera frame instead of the map"
        notes.append(warning)
        return [], warning
    if residual <= pc.max_alignment_error * spread:
        # the scale comes from TF: depth that disagrees changed nothing (a note, not a warning)
        return Alignment(sim, map_frame, True, "tf", residual, posed[-1], depth_scale, tuple(notes))
    disagree = (f"TF and images disagree: the camera centres fit TF with a residual of {residual:.3f} m, "
                f"{residual / spread:.0%} of the cameras' spread {spread:.3f} m (limit "
                f"pipeline.max_alignment_error {pc.max_alignment_error:g})")
    S = len(frames)
    if pc.use_measured_depth and pc.depth_enabled and len(posed) == S and all(f.depth is not None for f in frames):
        # the Gaussians' centres come from measured depth through TF, not from this fit
        warning = disagree + "; measured depth and TF place the scene"
        notes.append(warning)
        return Alignment(sim, map_frame, True, "tf", residual, posed[-1], depth_scale, tuple(notes), warning)
    # TF and the images tell different stories (wrong frames, stale TF, a moving camera mount): a metric map built
    # on either would be silently wrong, so the scene stays in the camera frame
    warning = disagree + "; the scene is kept in the camera frame instead of the map"
    notes.append(warning)
    return [], warning


def _anchored(frames: list[Frame], posed: list[int], E: np.ndarray, c_pred: np.ndarray, c_map: np.ndarray,
              map_frame: str, depth_scale: float | None, notes: list[str], warning: str, min_spread_m: float
              ) -> Alignment | None:
    """Branch 2 of :func:`metric_alignment`: the newest posed view anchors the rigid part; the scale from depth,
    else from the camera baselines. None when there is no scale (the map frame is metric by definition)."""
    k = posed[-1]
    method, s = "tf", None
    if depth_scale is not None:
        s, method = depth_scale, "tf+depth"
    else:
        others = [j for j, i in enumerate(posed) if i != k]
        base_map = sum(float(np.linalg.norm(c_map[j] - c_map[-1])) for j in others)
        base_pred = sum(float(np.linalg.norm(c_pred[posed[j]] - c_pred[k])) for j in others)
        if others and base_map >= min_spread_m and base_pred > 1e-9:
            s = base_map / base_pred
    if s is None:
        notes.append(f"scale unknown: no usable depth and the TF camera baseline is below {min_spread_m} m, so "
                     "the scene cannot be placed in the map frame: output in the newest camera's optical frame")
        return None
    # x_map = pose_k (s * (R_k x + t_k)): the predicted camera k sits exactly at its TF pose
    sim = Sim3.from_rigid(frames[k].pose) @ Sim3.from_rigid(E[k], scale=s)
    return Alignment(sim, map_frame, True, method, _residual(sim, c_pred[posed], c_map), k, depth_scale, tuple(notes),
                     warning)


def _residual(sim: Sim3, src: np.ndarray, dst: np.ndarray) -> float:
    return float(np.sqrt(((sim.apply(src) - dst) ** 2).sum(-1).mean()))
