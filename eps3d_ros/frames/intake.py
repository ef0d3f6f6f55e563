"""The one image intake of the node and the CLI: frames never stretched, intrinsics exact, keyframes chosen here.

**Network size.** A model runs best at the size it was trained at (its bundle's ``input_size``, the
*box*). A frame of ``H x W`` is scaled by ONE factor ``c = min(box_h / H, box_w / W)`` so that it fits the
box with its aspect kept, and each side is rounded DOWN to a multiple of the patch (14), never below
one patch (:func:`network_size`). A 640x480 camera and a 112x112 box give 112x84; 1920x1080 gives
112x56 (63 rows scaled, 7 cropped). Frames may be enlarged (a small camera still fills the model's
receptive field).

**Fitting** (:func:`fit_frame`): the frame is resampled by one factor ``c = max(h / H, w / W)``, the
smallest that covers ``h x w``, in both axes (antialiased bilinear for colour, nearest for depth, so an
invalid depth stays invalid and no edge is mixed), then centre-cropped (``x0 = (W' - w) // 2``,
``y0 = (H' - h) // 2``). With the pixel-centre convention of :mod:`~eps3d_ros.frames.frame` (pixel
``(u, v)``'s centre at ``(u, v)``) the intrinsics follow exactly::

    fx' = c fx,  fy' = c fy,  skew' = c skew,  cx' = (cx + 0.5) c - 0.5 - x0,  cy' = (cy + 0.5) c - 0.5 - y0

so ``fx / fy`` and the principal point's place in the scene never change. Padding is never used (it
would show the network borders it never saw in training).

**Windows** (:func:`window_frames`): frames of different sizes (a head and a wrist camera, or images of
one folder at two resolutions) are all fitted to ONE network size, whatever their order: the largest (in
pixels) of their own network sizes, so the view whose aspect suits the box best is not cropped; between equal
areas, the size most frames have, then the wider. A window of a 4:3 head camera and a 16:9 wrist camera at a
112x112 box: 84x112, the wrist views covered and centre-cropped to it (never stretched, K exact); one portrait
frame among landscape ones (equal areas) is the one cropped, wherever it stands in the window.

**Limits**: frames smaller than :data:`MIN_IMAGE_SIDE` pixels on a side are refused (:func:`check_image_size`:
they hold nothing to segment); enlarging a frame beyond its source resolution adds no detail, only memory, so
:func:`enlargement` says by how much it happens and callers say so.

**Keyframes** (:func:`select_window` for a live buffer of one or several cameras, :func:`select_keyframes`
for one camera, :func:`select_indices` for a recorded sequence) — the rules live here and nowhere else.
Across cameras (:func:`select_window`): each camera's newest frame first, then each camera's keyframes by
turns (cameras with the newest frames first), then the most recent remaining frames by turns: ``count``
views in all, so two cameras share a window of 4 as 2 + 2 while both have frames.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch

from .frame import Frame

__all__ = ["PATCH", "MIN_IMAGE_SIDE", "network_size", "check_image_size", "enlargement", "fit_frame", "prepare_frame",
           "window_frames", "window_size_of", "select_keyframes", "select_window", "select_indices",
           "rotation_angle_deg", "views_per_camera"]

PATCH = 14
MIN_IMAGE_SIDE = 32  # pixels; smaller frames are refused (a 1x1 "image" would be blown up to a whole window)


def check_image_size(height: int, width: int, what: str = "a frame") -> None:
    """ValueError naming ``what`` when a side is below :data:`MIN_IMAGE_SIDE` pixels."""
    if min(int(height), int(width)) < MIN_IMAGE_SIDE:
        raise ValueError(f"{what} is {int(width)}x{int(height)} pixels (WxH): frames need at least "
                         f"{MIN_IMAGE_SIDE} pixels on each side")


def enlargement(height: int, width: int, net_height: int, net_width: int) -> float:
    """How much a ``height x width`` frame is enlarged to cover ``net_height x net_width`` (1.0: not at all)."""
    return max(1.0, net_height / int(height), net_width / int(width))


def network_size(height: int, width: int, box: tuple[int, int]) -> tuple[int, int]:
    """``(h, w)``, multiples of :data:`PATCH`, for a ``height x width`` frame fitted into ``box`` (see module)."""
    bh, bw = (int(v) for v in box)
    if bh < PATCH or bw < PATCH:
        raise ValueError(f"the network size box must be at least {PATCH}x{PATCH}, got {bh}x{bw}")
    if height < 1 or width < 1:
        raise ValueError(f"cannot fit an empty {height}x{width} frame")
    c = min(bh / height, bw / width)
    # 1e-9: H * (bh / H) must give bh, not bh - 1 ulp rounded down a whole patch
    h = max(PATCH, int(height * c + 1e-9) // PATCH * PATCH)
    w = max(PATCH, int(width * c + 1e-9) // PATCH * PATCH)
    return h, w


def fit_frame(frame: Frame, height: int, width: int) -> Frame:
    """``frame`` scaled by one factor to cover ``height x width`` and centre-cropped; K and depth follow exactly."""
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"cannot fit a frame to {height}x{width}")
    H, W = frame.size
    if (H, W) == (height, width):
        return frame
    c = max(height / H, width / W)
    rh, rw = max(height, int(H * c + 1e-9)), max(width, int(W * c + 1e-9))  # the scaled frame, before cropping
    y0, x0 = (rh - height) // 2, (rw - width) // 2

    # [1, 3, H, W] uint8 in channels-last memory (a view of the HWC copy; frames are read-only): torch's uint8
    # kernel for this layout is ~10x faster than float and within one grey level of it. The ATen op takes the
    # output size AND the scale, so the sampling grid is exactly c in both axes (F.interpolate would rescale each
    # axis to its rounded size: fx / fy would drift).
    x = torch.from_numpy(frame.rgb.copy()).permute(2, 0, 1)[None]
    y = torch.ops.aten._upsample_bilinear2d_aa(x, [rh, rw], False, c, c)
    rgb = y[0, :, y0:y0 + height, x0:x0 + width].permute(1, 2, 0).numpy()

    depth = None
    if frame.depth is not None:
        # nearest source pixel of each output pixel centre: u = (u' + x0 + 0.5) / c - 0.5, rounded
        rows = np.clip(np.floor((np.arange(height) + y0 + 0.5) / c).astype(np.int64), 0, H - 1)
        cols = np.clip(np.floor((np.arange(width) + x0 + 0.5) / c).astype(np.int64), 0, W - 1)
        depth = frame.depth[rows[:, None], cols[None, :]].astype(np.float32, copy=True)

    K = frame.K.copy()
    K[0, 0] *= c
    K[0, 1] *= c  # skew is in x pixels per unit of normalised y
    K[1, 1] *= c
    K[0, 2] = (K[0, 2] + 0.5) * c - 0.5 - x0
    K[1, 2] = (K[1, 2] + 0.5) * c - 0.5 - y0
    return dataclasses.replace(frame, rgb=np.ascontiguousarray(rgb), K=K, depth=depth)


def prepare_frame(frame: Frame, box: tuple[int, int]) -> Frame:
    """``frame`` at its network size for ``box`` (idempotent: a prepared frame is returned as it is); ValueError
    for a frame below :data:`MIN_IMAGE_SIDE`."""
    check_image_size(frame.height, frame.width, f"the frame at {frame.stamp:.3f} s")
    return fit_frame(frame, *network_size(frame.height, frame.width, box))


def window_size_of(sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The one network size of a window whose frames have the network ``sizes``: the largest area; between equal
    areas the most frequent, then the wider (independent of the frames' order)."""
    if not sizes:
        raise ValueError("cannot choose the size of an empty window")
    counts: dict[tuple[int, int], int] = {}
    for s in sizes:
        counts[(int(s[0]), int(s[1]))] = counts.get((int(s[0]), int(s[1])), 0) + 1
    return max(counts, key=lambda s: (s[0] * s[1], counts[s], s[1]))


def window_frames(frames: Sequence[Frame], box: tuple[int, int]) -> list[Frame]:
    """Every frame of a window at one network size (:func:`window_size_of`; order kept)."""
    frames = list(frames)
    if not frames:
        raise ValueError("cannot prepare an empty window of frames")
    size = window_size_of([network_size(f.height, f.width, box) for f in frames])
    return [fit_frame(f, *size) for f in frames]


def views_per_camera(frames: Sequence[Frame]) -> dict[str, int]:
    """``{camera: views}`` of a window, cameras in the order of their first view (an unnamed camera by its
    optical frame)."""
    out: dict[str, int] = {}
    for f in frames:
        key = f.camera or f.frame_id
        out[key] = out.get(key, 0) + 1
    return out


# ------------------------------------------------------------------------------------- keyframes
def select_keyframes(frames: Sequence[Frame], count: int, min_interval: float, min_translation: float,
                     min_rotation_deg: float) -> list[Frame]:
    """Up to ``count`` keyframes of time-ordered ``frames`` (oldest → newest), returned oldest → newest.

    Walking back from the newest frame (always kept), a frame becomes a keyframe when it is at least
    ``min_interval`` s older than the last kept one and — when both poses are known — the camera moved
    at least ``min_translation`` m or turned ``min_rotation_deg`` degrees from it. When fewer qualify,
    the most recent remaining frames fill up (a robot standing still still gets reconstructions, with
    less parallax).
    """
    if count < 1:
        raise ValueError(f"window_size must be >= 1, got {count}")
    keys, rest = _keyframe_walk(list(reversed(list(frames))), count, min_interval, min_translation, min_rotation_deg)
    return sorted((keys + rest)[:count], key=lambda f: f.stamp)


def select_window(frames: Sequence[Frame], count: int, min_interval: float, min_translation: float,
                  min_rotation_deg: float) -> list[Frame]:
    """Up to ``count`` views of time-ordered ``frames`` of one or several cameras (``Frame.camera``), returned
    oldest → newest (equal stamps: in the cameras' turn order).

    Each camera's keyframes are chosen by :func:`select_keyframes`' walk over its own frames (spacing in time
    and motion from that camera's previous keyframe). The cameras take turns, the one with the newest frame
    first: first every camera's newest frame, then their further keyframes, then (when fewer qualify) their most
    recent remaining frames — so every camera with frames is in the window while ``count`` allows, and a camera
    with fewer frames leaves its turns to the others.
    """
    if count < 1:
        raise ValueError(f"window_size must be >= 1, got {count}")
    groups: dict[str, list[Frame]] = {}
    for f in frames:
        groups.setdefault(f.camera, []).append(f)
    order = sorted(groups, key=lambda c: (-groups[c][-1].stamp, c))  # newest camera first
    walks = {c: _keyframe_walk(groups[c][::-1], count, min_interval, min_translation, min_rotation_deg)
             for c in order}
    picked: list[Frame] = []
    for part in (0, 1):  # keyframes by turns, then the fill by turns
        queues = {c: list(walks[c][part]) for c in order}
        while len(picked) < count and any(queues.values()):
            for c in order:
                if queues[c] and len(picked) < count:
                    picked.append(queues[c].pop(0))
    rank = {c: i for i, c in enumerate(order)}
    return sorted(picked, key=lambda f: (f.stamp, rank[f.camera]))


def _keyframe_walk(newest_first: list[Frame], count: int, min_interval: float, min_translation: float,
                   min_rotation_deg: float) -> tuple[list[Frame], list[Frame]]:
    """``(keyframes, the rest)`` of one camera's frames, both newest first: walking back from the newest (always a
    keyframe), a frame is a keyframe when far enough from the last one kept (at most ``count``)."""
    if not newest_first:
        return [], []
    kept = [0]
    for i in range(1, len(newest_first)):
        if len(kept) == count:
            break
        last, cand = newest_first[kept[-1]], newest_first[i]
        if _far_enough(last, cand, min_interval, min_translation, min_rotation_deg):
            kept.append(i)
    chosen = set(kept)
    return [newest_first[i] for i in kept], [f for i, f in enumerate(newest_first) if i not in chosen]


def select_indices(n: int, every: int = 1, max_views: int | None = None) -> list[int]:
    """Of a recorded sequence of ``n`` frames: every ``every``-th, then at most ``max_views`` of those,
    evenly spread (first and last kept)."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if max_views is not None and max_views < 1:
        raise ValueError(f"max_views must be >= 1, got {max_views}")
    idx = list(range(0, n, every))
    if max_views is not None and len(idx) > max_views:
        if max_views == 1:
            return [idx[0]]
        pick = np.round(np.linspace(0, len(idx) - 1, max_views)).astype(int)
        idx = [idx[i] for i in pick]
    return idx


def _far_enough(kept: Frame, cand: Frame, min_interval: float, min_translation: float, min_rotation: float) -> bool:
    """Is ``cand`` (older) a new keyframe relative to the last kept ``kept``?"""
    if kept.stamp - cand.stamp < min_interval:
        return False
    if kept.pose is None or cand.pose is None:
        return True  # no poses: time spacing alone
    translation = float(np.linalg.norm(kept.pose[:3, 3] - cand.pose[:3, 3]))
    return translation >= min_translation or rotation_angle_deg(kept.pose, cand.pose) >= min_rotation


def rotation_angle_deg(pose_a: np.ndarray, pose_b: np.ndarray) -> float:
    """Angle in degrees of the relative rotation between two poses ``[4, 4]``."""
    r = pose_a[:3, :3].T @ pose_b[:3, :3]
    c = (np.trace(r) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))
