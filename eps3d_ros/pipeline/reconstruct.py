"""One reconstruction: a window of frames → the network → a metric panoptic scene in the output frame.

Stages (each timed): preprocess (the intake: frames fitted to one network size, aspect kept — see
:mod:`eps3d_ros.frames.intake` —, stacked, uploaded), network (EPS3D forward
under ``torch.inference_mode``), alignment (prediction world → map or camera frame, see
:func:`~eps3d_ros.geometry.alignment.metric_alignment`, then the Gaussians are transformed and,
optionally, their centres replaced by measured depth), panoptic (labels, instances, objects).

The result, :class:`SceneSnapshot`, is immutable: the node can publish and query it from other
threads while the next one is being built.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from ..conventions import poses_to_extrinsics
from ..panoptic import Scene, SemanticSpace, build_scene
from ..geometry.alignment import Alignment, metric_alignment, transform_gaussians
from ..geometry.cameras import Cameras, cameras_from_prediction
from ..settings.tree import Eps3dConfig
from ..frames.frame import Frame
from ..frames.intake import window_frames

__all__ = ["SceneSnapshot", "Reconstructor", "Cancelled", "measured_world_points"]

# Modules whose start is a point where a window may be abandoned (the transformer blocks and the heads'
# fusion stages: a few tens of milliseconds apart even for the release model on a CPU).
_CANCEL_POINTS = frozenset({"Block", "FeatureFusionBlock", "DPTHead"})


class Cancelled(RuntimeError):
    """The window was abandoned on request (the session is closing, or was reset)."""


@dataclass(frozen=True, eq=False)  # identity equality/hash: numpy fields have no truth value
class SceneSnapshot:
    scene: Scene  # means in ``frame_id``, metres when ``scale_known``
    frame_id: str  # output.map_frame with TF; else the newest window frame's optical frame
    stamp: float  # seconds: the newest frame of the window
    scale_known: bool
    alignment: Alignment
    timings: Mapping[str, float]  # seconds per stage: preprocess, network, alignment, panoptic, total (read-only)
    window_stamps: tuple[float, ...]  # the window's frame stamps, in view order (oldest → newest)
    measured_depth: bool = False  # True when some Gaussian centres come from measured depth
    notes: tuple[str, ...] = field(default_factory=tuple)  # non-fatal remarks for the log (alignment fallbacks ...)
    cameras: Cameras | None = None  # the window's views in ``frame_id`` at the network size (with their depth)


def check_window(frames: Sequence[Frame]) -> None:
    """A window is a non-empty sequence of :class:`Frame` (clear errors otherwise)."""
    if not frames:
        raise ValueError("cannot reconstruct from an empty window of frames")
    for f in frames:
        if not isinstance(f, Frame):
            raise TypeError(f"windows hold Frame objects, got {type(f).__name__}")


class Reconstructor:
    """Runs ``model`` on windows of frames. ``config``: the whole :class:`Eps3dConfig` (reads ``pipeline``,
    ``output`` and ``panoptic``), resolved (``pipeline.image_height/width`` set: see
    :func:`~eps3d_ros.pipeline.loading.resolve_config`). ``bundle``: the model folder it came from, if any.
    Puts ``model`` in eval mode. Not thread-safe: one caller (the worker)."""

    def __init__(self, model: torch.nn.Module, text_encoder: Any, config: Eps3dConfig, bundle: Any = None) -> None:
        if not config.pipeline.image_height:
            raise ValueError("pipeline.image_height/width are 0 (the model's native size): resolve the config with "
                             "its model bundle first (eps3d_ros.pipeline.loading.resolve_config / load_reconstructor)")
        config.pipeline.validate()
        config.output.validate()
        config.panoptic.validate()
        self.model = model.eval()
        self.text_encoder = text_encoder
        self.config = config
        self.space = SemanticSpace.from_model(model)  # the expansion into the text space, read once
        self.device = next(model.parameters()).device
        self.bundle = bundle
        self._cancel: threading.Event | None = None
        for module in model.modules():
            if type(module).__name__ in _CANCEL_POINTS:
                module.register_forward_pre_hook(self._check_cancel)

    @property
    def input_box(self) -> tuple[int, int]:
        """The box frames are fitted into (the model's native size unless the user gave another)."""
        return self.config.pipeline.image_height, self.config.pipeline.image_width

    def run(self, frames: Sequence[Frame], cancel: threading.Event | None = None) -> SceneSnapshot:
        """One window → a snapshot. ``cancel``: when set (from another thread) the run stops at the next block of
        the network or between stages and raises :class:`Cancelled`."""
        self._cancel = cancel
        try:
            return self._run(list(frames))
        finally:
            self._cancel = None

    def _check_cancel(self, *_: Any) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled("the window was abandoned")

    def _run(self, frames: list[Frame]) -> SceneSnapshot:
        check_window(frames)
        cfg = self.config
        pc = cfg.pipeline
        t0 = time.perf_counter()

        small = window_frames(frames, self.input_box)
        rgb = np.stack([f.rgb for f in small])  # [V, H, W, 3] uint8
        images = torch.from_numpy(rgb).to(self.device).permute(0, 3, 1, 2)[None].float().div_(255.0)  # [1, V, 3, H, W]
        t1 = self._tick()

        with torch.inference_mode():
            pred = self.model(images)
            t2 = self._tick()
            align = metric_alignment(pred, small, cfg)
            g = transform_gaussians(pred.gaussians, align.sim3)
            notes = list(align.notes)
            measured: list[bool] = [False] * len(small)
            if pc.use_measured_depth and pc.depth_enabled and align.method in ("tf", "tf+depth"):  # map frame via TF
                g, measured, note = _replace_with_measured_depth(g, small)
                if note:
                    notes.append(note)
            used_depth = any(measured)
            cameras = _scene_cameras(pred, align, small, measured)
            t3 = self._tick()
        self._check_cancel()

        newest = max(f.stamp for f in frames)
        scene = build_scene(g, self.space, self.text_encoder, cfg.panoptic, metadata={
            "frame_id": align.frame_id, "stamp": newest, "alignment": align.method,
            "scale_known": align.scale_known})
        t4 = time.perf_counter()
        timings = {"preprocess": t1 - t0, "network": t2 - t1, "alignment": t3 - t2, "panoptic": t4 - t3, "total": t4 - t0}
        return SceneSnapshot(
            scene=scene, frame_id=align.frame_id, stamp=newest, scale_known=align.scale_known,
            alignment=align, timings=MappingProxyType(timings), window_stamps=tuple(f.stamp for f in frames),
            measured_depth=used_depth, notes=tuple(notes), cameras=cameras,
        )

    def _tick(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # honest stage timings: CUDA work is asynchronous
        return time.perf_counter()


def _scene_cameras(pred: Any, align: Alignment, frames: list[Frame], measured: list[bool]) -> Cameras:
    """The window's cameras in the output frame, each the camera its view's Gaussians were placed with: the
    frame's own pose (TF) where measured depth placed them (``measured[i]``), else the predicted pose moved by
    the alignment; the frames' own intrinsics at the network size (the calibration) as ``intrinsics``, and
    as ``predicted_intrinsics`` the ones each view was unprojected with (the network's guess, or the
    calibration for measured views); depth measured where a frame has it, else predicted."""
    H, W = frames[0].size
    scale = float(align.sim3.scale)
    depth = pred.depth[0, ..., 0].detach().float().cpu().numpy() * np.float32(scale)  # [S, H, W] scene units
    for i, f in enumerate(frames):
        if f.depth is not None and align.scale_known:
            depth[i] = np.where(np.isfinite(f.depth), f.depth, depth[i])
    extrinsics = pred.extrinsics[0].detach().double().cpu().numpy()  # [S, 3, 4] camera-from-prediction
    placed_K = pred.intrinsics[0].detach().double().cpu().numpy()  # [S, 3, 3]
    moved = cameras_from_prediction(extrinsics, np.stack([f.K for f in frames]), align.sim3, H, W,
                                    [f.stamp for f in frames], depth)
    E = moved.extrinsics.copy()
    for i, f in enumerate(frames):
        if measured[i]:  # its Gaussians are the measured surface: the true camera sees them as the input did
            E[i] = poses_to_extrinsics(torch.from_numpy(np.asarray(f.pose, np.float64)))[:3].numpy()
            placed_K[i] = f.K
    return replace(moved, extrinsics=E, predicted_intrinsics=placed_K)


def measured_world_points(frame: Frame) -> np.ndarray:
    """World (map) points ``[H, W, 3]`` float64 of a frame's measured depth through its pose; NaN where invalid.

    Pixel ``(u, v)``'s centre is at ``(u, v)`` (the Frame K convention): ``X = pose (d K⁻¹ [u, v, 1])``.
    """
    if frame.depth is None or frame.pose is None:
        raise ValueError("measured world points need a frame with depth and pose")
    H, W = frame.size
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64), indexing="xy")
    pix = np.stack([u, v, np.ones_like(u)], -1)  # [H, W, 3]
    cam = (pix @ np.linalg.inv(frame.K).T) * frame.depth.astype(np.float64)[..., None]  # [H, W, 3], NaN stays NaN
    return cam @ frame.pose[:3, :3].T + frame.pose[:3, 3]


def _replace_with_measured_depth(g: Any, frames: list[Frame]) -> tuple[Any, list[bool], str]:
    """Centres of pixel-aligned Gaussians (N = V*H*W, view-row-col order) from measured depth where valid;
    also which views' centres came from their measured depth."""
    V = len(frames)
    H, W = frames[0].size
    measured = [False] * V
    if g.means.shape[1] != V * H * W:
        return g, measured, (f"use_measured_depth ignored: {g.means.shape[1]} Gaussians are not pixel-aligned "
                          f"({V}x{H}x{W} = {V * H * W}; voxelized predictions keep the network's centres)")
    means = g.means.clone()  # [B, N, 3]
    used = 0
    for i, f in enumerate(frames):
        if f.depth is None or f.pose is None:
            continue
        pts = measured_world_points(f).reshape(-1, 3)  # [H*W, 3]
        ok = np.isfinite(pts).all(-1)
        if not ok.any():
            continue
        idx = torch.from_numpy(np.nonzero(ok)[0] + i * H * W).to(means.device)
        means[:, idx] = torch.from_numpy(pts[ok]).to(means)
        used += int(ok.sum())
        measured[i] = True
    if not used:
        return g, measured, "use_measured_depth: no frame had both valid depth and a pose"
    return replace(g, means=means), measured, ""
