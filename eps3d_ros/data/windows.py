"""Which frames of a scene go together: one window sampler for training and evaluation.

A window is ``num_views`` frame indices of one scene, split into ``context`` (through the network) and
``target`` views (held out, rendered into). Two ways to choose the frames:

* ``"stride"``: ``num_views`` frames ``stride`` apart (``i, i + stride, ...``);
* ``"overlap"``: each next view is the farthest frame after the previous view that still shares at least
  ``min_overlap`` of its view with it, skipping frames that share more than ``max_overlap`` (near
  duplicates). Overlap is computed from poses and intrinsics only (no image is read): the fraction of a
  grid of the previous view's pixels, put at ``overlap_depth`` metres (or at the frame's median depth when
  ``depth_of`` is given), that project into the next view in front of it.

Windows start every ``step`` frames (``max_windows`` keeps that many, spread evenly). ``split``:
``"none"`` (all context), ``"alternate"`` (even positions context, odd target: the EPS3D ScanNet protocol's
interleaving) or ``"last"`` (the last ``num_target`` views are targets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["WindowConfig", "Window", "sample_windows", "view_overlap"]

MODES = ("stride", "overlap")
SPLITS = ("none", "alternate", "last")


@dataclass
class WindowConfig:
    num_views: int = 4
    mode: str = "stride"  # "stride" | "overlap"
    stride: int = 1  # frames between views ("stride")
    min_overlap: float = 0.3  # "overlap": consecutive views share at least this fraction ...
    max_overlap: float = 0.9  # ... and at most this one (closer frames are near duplicates)
    overlap_depth: float = 2.0  # metres at which the overlap grid is placed (no depth read)
    step: int = 1  # a window starts every `step` frames
    max_windows: int = 0  # per scene, spread evenly (0 = all)
    split: str = "none"  # "none" | "alternate" | "last"
    num_target: int = 0  # "last": how many targets

    def validate(self) -> "WindowConfig":
        if self.num_views < 1 or self.stride < 1 or self.step < 1 or self.max_windows < 0:
            raise ValueError("windows: num_views, stride and step must be >= 1, max_windows >= 0")
        if self.mode not in MODES:
            raise ValueError(f"windows: mode must be one of {MODES}, got {self.mode!r}")
        if self.split not in SPLITS:
            raise ValueError(f"windows: split must be one of {SPLITS}, got {self.split!r}")
        if not 0.0 <= self.min_overlap <= self.max_overlap <= 1.0:
            raise ValueError(f"windows: need 0 <= min_overlap <= max_overlap <= 1, got {self.min_overlap}, "
                             f"{self.max_overlap}")
        if self.split == "last" and not 0 <= self.num_target < self.num_views:
            raise ValueError(f"windows: num_target must be in [0, num_views), got {self.num_target}")
        if not self.overlap_depth > 0:
            raise ValueError("windows: overlap_depth must be > 0")
        return self


@dataclass(frozen=True)
class Window:
    context: tuple[int, ...]  # frame indices of the scene
    target: tuple[int, ...] = ()

    @property
    def frames(self) -> tuple[int, ...]:
        return self.context + self.target


def view_overlap(pose_a: np.ndarray, K_a: np.ndarray, size_a: tuple[int, int], pose_b: np.ndarray,
                 K_b: np.ndarray, size_b: tuple[int, int], depth: float = 2.0, grid: int = 12) -> float:
    """Fraction of a ``grid x grid`` set of view a's pixels at ``depth`` m (along z) that view b sees."""
    H, W = size_a
    u, v = np.meshgrid((np.arange(grid) + 0.5) * W / grid, (np.arange(grid) + 0.5) * H / grid)
    cam = np.stack([(u - K_a[0, 2]) / K_a[0, 0] * depth, (v - K_a[1, 2]) / K_a[1, 1] * depth,
                    np.full_like(u, depth)], -1).reshape(-1, 3)
    world = cam @ pose_a[:3, :3].T + pose_a[:3, 3]
    Rb, tb = pose_b[:3, :3], pose_b[:3, 3]
    in_b = (world - tb) @ Rb  # R^T (x - t)
    z = in_b[:, 2]
    ok = z > 1e-6
    ub = K_b[0, 0] * in_b[:, 0] / np.where(ok, z, 1) + K_b[0, 2]
    vb = K_b[1, 1] * in_b[:, 1] / np.where(ok, z, 1) + K_b[1, 2]
    Hb, Wb = size_b
    seen = ok & (ub >= -0.5) & (ub < Wb - 0.5) & (vb >= -0.5) & (vb < Hb - 0.5)
    return float(seen.mean())


def _stride_starts(n: int, cfg: WindowConfig) -> list[list[int]]:
    span = (cfg.num_views - 1) * cfg.stride + 1
    return [list(range(s, s + span, cfg.stride)) for s in range(0, n - span + 1, cfg.step)]


def _overlap_windows(n: int, cfg: WindowConfig, camera: Callable[[int], tuple[np.ndarray, np.ndarray, tuple[int, int]]],
                     depth_of: Callable[[int], float] | None) -> list[list[int]]:
    cams: dict[int, tuple[np.ndarray, np.ndarray, tuple[int, int]]] = {}

    def cam(i: int):
        if i not in cams:
            cams[i] = camera(i)
        return cams[i]

    def overlap(a: int, b: int) -> float:
        pa, Ka, sa = cam(a)
        pb, Kb, sb = cam(b)
        d = depth_of(a) if depth_of is not None else cfg.overlap_depth
        return view_overlap(pa, Ka, sa, pb, Kb, sb, d)

    out = []
    for start in range(0, n, cfg.step):
        views = [start]
        while len(views) < cfg.num_views:
            last, pick = views[-1], None
            for k in range(last + 1, n):
                o = overlap(last, k)
                if o < cfg.min_overlap:
                    break
                if o <= cfg.max_overlap:
                    pick = k
            if pick is None:
                break
            views.append(pick)
        if len(views) == cfg.num_views:
            out.append(views)
    return out


def _split(views: list[int], cfg: WindowConfig) -> Window:
    if cfg.split == "alternate":
        return Window(tuple(views[0::2]), tuple(views[1::2]))
    if cfg.split == "last" and cfg.num_target:
        return Window(tuple(views[:-cfg.num_target]), tuple(views[-cfg.num_target:]))
    return Window(tuple(views))


def sample_windows(num_frames: int, config: WindowConfig,
                   camera: Callable[[int], tuple[np.ndarray, np.ndarray, tuple[int, int]]] | None = None,
                   depth_of: Callable[[int], float] | None = None) -> list[Window]:
    """Windows of a scene of ``num_frames`` frames. ``camera(i)`` → ``(pose [4, 4] camera-to-world, K [3, 3],
    (H, W))`` is needed by ``"overlap"``; ``depth_of(i)`` (optional) gives the depth to place view i's grid at."""
    cfg = config.validate()
    if cfg.mode == "stride":
        frames = _stride_starts(num_frames, cfg)
    else:
        if camera is None:
            raise ValueError("windows: mode 'overlap' needs the scene's cameras")
        frames = _overlap_windows(num_frames, cfg, camera, depth_of)
    if cfg.max_windows and len(frames) > cfg.max_windows:
        keep = np.unique(np.round(np.linspace(0, len(frames) - 1, cfg.max_windows)).astype(int))
        frames = [frames[i] for i in keep]
    return [_split(v, cfg) for v in frames]
