"""Frames for a reconstruction from an image folder or a rosbag2, sized for the network.

Selection (both sources): the frames in order (file name / header stamp), then every ``every``-th,
then, when more than ``max_views`` remain, ``max_views`` of them spread evenly over the sequence
(first and last included).

Size (the network needs multiples of 14 = the ViT patch): the target ``height x width`` is ``size``
when given (both multiples of 14), else the image scaled so that its longer side is ``max_side``
(default 224), each side rounded DOWN to a multiple of 14 (never below 14); images are never enlarged
to choose the target. Each frame is then resized by ONE factor ``c = max(h / H, w / W)`` (the
smallest that covers the target, aspect kept; area averaging when shrinking) and centre-cropped
(``x0 = (W' - w) // 2``, ``y0 = (H' - h) // 2``). Intrinsics follow: the resize rule of
:mod:`eps3d_ros.pipeline.images` (``fx' = fx c``, ``cx' = (cx + 0.5) c - 0.5``), then ``cx -= x0``,
``cy -= y0``. Depth is resized by nearest neighbour and cropped the same way. Sizes are height x width:
a 480x640 image becomes 168x224 (factor 0.35, nothing cropped); 1080x1920 becomes 126x224 (factor
0.1167, 126 rows exactly); with ``size=(112, 112)`` a 480x640 image is scaled by 112/480 to 112x149 and
18 columns are cut on the left (19 on the right).

Intrinsics of an image folder: ``K`` when given (``--intrinsics FILE``: JSON with ``"K"`` (3x3 rows),
or ``fx, fy, cx, cy``, or Open3D's ``intrinsic_matrix`` (column-major) with ``width``/``height``),
else a guess: horizontal field of view ``hfov_deg`` (default 60°), square pixels,
``fx = fy = (W / 2) / tan(hfov / 2)``, principal point at the image centre ``((W - 1) / 2, (H - 1) / 2)``.
The network predicts its own intrinsics; ``K`` matters for measured depth (unprojection).

Bags (rosbag2 directory, ``.db3`` or ``.mcap``, read with ``rosbags``; no ROS installation needed):

* colour: ``sensor_msgs/msg/Image`` (the encodings of ``pipeline.images``) or ``CompressedImage``
  (JPEG/PNG); depth: ``Image`` 16UC1 (``depth_scale`` m per unit, default mm) or 32FC1 (m), registered
  to the colour camera, matched to each colour frame by the nearest header stamp within ``sync_slop``;
  intrinsics: the ``CameraInfo`` nearest in time (the one beside the colour topic when there are several);
* topics are detected by message type when not given: the one colour topic (names with ``color`` /
  ``rgb`` win a tie), the one depth topic (``aligned`` / ``registered`` win), the ``camera_info`` in
  the colour topic's namespace. Ambiguity is an error naming the candidates;
* poses: ``/tf`` + ``/tf_static`` (``tf2_msgs/msg/TFMessage``) and any ``TransformStamped`` topic form
  a transform tree; each frame's pose is the chain from the colour frame (``header.frame_id``) up to
  ``map_frame`` (default: the root of that chain) at the image stamp, each edge interpolated between
  samples at most ``max_gap`` apart (slerp) or taken from the nearest sample within ``tf_tolerance``.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..pipeline.frames import Frame
from ..pipeline.images import COLOR_ENCODINGS, decode_color, decode_depth, resize_frame

__all__ = [
    "PATCH",
    "DEFAULT_HFOV_DEG",
    "IMAGE_EXTENSIONS",
    "FrameSourceError",
    "FrameSet",
    "select_indices",
    "target_size",
    "fit_frame",
    "guess_intrinsics",
    "read_intrinsics",
    "list_images",
    "frames_from_images",
    "frames_from_bag",
    "TransformTree",
]

PATCH = 14
DEFAULT_HFOV_DEG = 60.0
DEFAULT_MAX_SIDE = 224
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TF_TYPE = "tf2_msgs/msg/TFMessage"
TRANSFORM_TYPE = "geometry_msgs/msg/TransformStamped"


class FrameSourceError(ValueError):
    """Input that cannot give frames: empty folder, unreadable image, bag without images, ambiguous topics."""


@dataclass
class FrameSet:
    frames: list[Frame]
    source: str  # what they came from, for reports
    original_size: tuple[int, int]  # (H, W) before resizing
    size: tuple[int, int]  # (h, w) of the frames
    selected: list[int]  # indices into the full ordered sequence
    total: int  # frames available before selection
    topics: dict[str, str] = field(default_factory=dict)  # bag: role -> topic
    notes: list[str] = field(default_factory=list)

    @property
    def has_depth(self) -> bool:
        return any(f.depth is not None for f in self.frames)

    @property
    def has_poses(self) -> bool:
        return any(f.pose is not None for f in self.frames)


# ----------------------------------------------------------------------------- selection and size
def select_indices(n: int, every: int = 1, max_views: int | None = None) -> list[int]:
    """Every ``every``-th of ``range(n)``, then at most ``max_views`` of those, evenly spread."""
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


def target_size(height: int, width: int, size: tuple[int, int] | None = None,
                max_side: int = DEFAULT_MAX_SIDE) -> tuple[int, int]:
    """The network size ``(h, w)`` for images of ``height x width`` (see the module docstring)."""
    if size is not None:
        h, w = (int(v) for v in size)
        if h < PATCH or w < PATCH or h % PATCH or w % PATCH:
            raise ValueError(f"size must be two positive multiples of {PATCH} (e.g. 168x224), got {h}x{w}")
        return h, w
    if max_side < PATCH:
        raise ValueError(f"max_side must be at least {PATCH}, got {max_side}")
    s = min(1.0, max_side / max(height, width))
    return (max(PATCH, int(height * s + 1e-9) // PATCH * PATCH), max(PATCH, int(width * s + 1e-9) // PATCH * PATCH))


def fit_frame(frame: Frame, height: int, width: int) -> Frame:
    """Resize ``frame`` by one factor to cover ``height x width``, then centre-crop; K and depth follow."""
    H, W = frame.size
    if (H, W) == (height, width):
        return frame
    c = max(height / H, width / W)
    rh, rw = max(height, int(round(H * c))), max(width, int(round(W * c)))
    f = resize_frame(frame, rh, rw)
    y0, x0 = (rh - height) // 2, (rw - width) // 2
    if (y0, x0) == (0, 0) and (rh, rw) == (height, width):
        return f
    K = f.K.copy()
    K[0, 2] -= x0
    K[1, 2] -= y0
    depth = None if f.depth is None else np.ascontiguousarray(f.depth[y0:y0 + height, x0:x0 + width])
    return dataclasses.replace(f, rgb=np.ascontiguousarray(f.rgb[y0:y0 + height, x0:x0 + width]), K=K, depth=depth)


def guess_intrinsics(height: int, width: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    """``K`` for a horizontal field of view (square pixels, centred principal point, OpenCV centres)."""
    if not 1.0 <= hfov_deg <= 170.0:
        raise ValueError(f"hfov_deg must be in [1, 170], got {hfov_deg}")
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def read_intrinsics(path: str | Path, height: int | None = None, width: int | None = None) -> np.ndarray:
    """``K [3, 3]`` from a JSON file: ``{"K": [[...], [...], [...]]}``, ``{"fx", "fy", "cx", "cy"}`` or
    Open3D's ``{"intrinsic_matrix": [9 values, column-major], "width", "height"}`` (size checked)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"intrinsics file not found: {p}")
    try:
        d = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FrameSourceError(f"{p}: not a JSON intrinsics file ({e})") from None
    try:
        if "K" in d:
            K = np.asarray(d["K"], np.float64).reshape(3, 3)
        elif "intrinsic_matrix" in d:
            K = np.asarray(d["intrinsic_matrix"], np.float64).reshape(3, 3).T  # column-major
        else:
            K = np.array([[d["fx"], 0.0, d["cx"]], [0.0, d.get("fy", d["fx"]), d["cy"]], [0.0, 0.0, 1.0]], np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise FrameSourceError(f"{p}: expected 'K' (3x3), 'fx'/'fy'/'cx'/'cy' or Open3D 'intrinsic_matrix' ({e})") from None
    if height is not None and width is not None and "width" in d and "height" in d \
            and (int(d["height"]), int(d["width"])) != (height, width):
        raise FrameSourceError(f"{p} is for {d['width']}x{d['height']} images but the images are {width}x{height}")
    return K


# ------------------------------------------------------------------------------------ image folder
def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder (not recursive, hidden files skipped), sorted by name (numbers numerically)."""
    d = Path(folder).expanduser()
    if not d.exists():
        raise FileNotFoundError(f"image folder not found: {d}")
    if not d.is_dir():
        raise FrameSourceError(f"{d} is not a folder (--images takes a folder of images)")
    files = [p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")]
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not images:
        others = sorted({p.suffix.lower() or p.name for p in files})
        listing = f" (it holds {', '.join(others[:8])}{' ...' if len(others) > 8 else ''})" if others else " (it is empty)"
        sub = [p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")]
        hint = f"; sub-folders: {', '.join(sorted(sub)[:5])}" if sub else ""
        raise FrameSourceError(f"no images in {d}{listing}{hint}; supported: {', '.join(IMAGE_EXTENSIONS)}")
    return sorted(images, key=_natural_key)


def _natural_key(p: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float64)
                top = 65535.0 if a.max() > 255 else 255.0
                g = np.clip(np.round(a * 255.0 / top), 0, 255).astype(np.uint8)
                return np.repeat(g[..., None], 3, axis=2)
            if im.mode == "F":
                raise FrameSourceError(f"{path}: floating-point images are not colour images (a depth map?)")
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except UnidentifiedImageError:
        raise FrameSourceError(f"cannot read {path} as an image (unsupported or corrupt image file)") from None
    except OSError as e:
        raise FrameSourceError(f"cannot read {path}: {e}") from None


def _read_depth(path: Path, depth_scale: float) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            a = np.asarray(im)
    except (UnidentifiedImageError, OSError) as e:
        raise FrameSourceError(f"cannot read {path} as a depth image: {e}") from None
    if a.ndim != 2:
        raise FrameSourceError(f"{path}: a depth image has one channel, got shape {a.shape}")
    if a.dtype.kind == "f":
        d = a.astype(np.float32)  # metres
    elif a.dtype.kind in "iu" and a.dtype.itemsize >= 2:
        d = a.astype(np.float32) * np.float32(depth_scale)  # integer units (mm by default)
    else:
        raise FrameSourceError(f"{path}: 8-bit images are not depth maps (16-bit PNG in mm or float TIFF in m expected)")
    d[~np.isfinite(d) | (d <= 0)] = np.nan
    return d


def frames_from_images(
    folder: str | Path,
    *,
    every: int = 1,
    max_views: int | None = None,
    size: tuple[int, int] | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    K: np.ndarray | None = None,
    hfov_deg: float = DEFAULT_HFOV_DEG,
    depth_folder: str | Path | None = None,
    depth_scale: float = 0.001,
    fps: float = 30.0,
    frame_id: str = "camera",
    progress: bool = False,
) -> FrameSet:
    """Frames of an image folder (see the module docstring); stamps are ``index / fps`` seconds."""
    files = list_images(folder)
    depths = None
    if depth_folder is not None:
        depths = list_images(depth_folder)
        if len(depths) != len(files):
            raise FrameSourceError(f"{len(depths)} depth images in {depth_folder} for {len(files)} colour images in "
                                   f"{folder}: they are paired by sorted order, so the counts must agree")
    pick = select_indices(len(files), every, max_views)
    frames: list[Frame] = []
    first_size = None
    notes = []
    if K is None:
        notes.append(f"intrinsics guessed from a {hfov_deg:g} degree horizontal field of view")
    for i in _progress(pick, progress, "reading images"):
        rgb = _read_rgb(files[i])
        H, W = rgb.shape[:2]
        if first_size is None:
            first_size = (H, W)
            out_size = target_size(H, W, size, max_side)
        elif (H, W) != first_size:
            raise FrameSourceError(f"{files[i].name} is {W}x{H} but {files[pick[0]].name} is "
                                   f"{first_size[1]}x{first_size[0]}: all images must have the same size")
        depth = None
        if depths is not None:
            depth = _match_size(_read_depth(depths[i], depth_scale), H, W, str(depths[i]))
        Ki = guess_intrinsics(H, W, hfov_deg) if K is None else np.asarray(K, np.float64)
        frame = Frame(stamp=i / fps, rgb=rgb, K=Ki, frame_id=frame_id, depth=depth)
        frames.append(fit_frame(frame, *out_size))
    return FrameSet(frames=frames, source=f"images {Path(folder)}", original_size=first_size, size=out_size,
                    selected=pick, total=len(files), notes=notes)


def _match_size(depth: np.ndarray, H: int, W: int, what: str) -> np.ndarray:
    """Depth at the colour size: as it is, or nearest-resized when only the resolution differs."""
    h, w = depth.shape
    if (h, w) == (H, W):
        return depth
    if abs(h / w - H / W) > 0.01 * (H / W):
        raise FrameSourceError(f"{what}: depth is {w}x{h} but colour is {W}x{H} (another aspect ratio: register "
                               "depth to the colour camera first, or run without depth)")
    rows = np.minimum(((np.arange(H) + 0.5) * h / H).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(W) + 0.5) * w / W).astype(np.int64), w - 1)
    return np.ascontiguousarray(depth[rows[:, None], cols[None, :]])


def _progress(items: Iterable[Any], on: bool, desc: str, total: int | None = None) -> Iterable[Any]:
    if not on:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, unit="frame", leave=False)


# ------------------------------------------------------------------------------------ transforms
class TransformTree:
    """Transforms ``parent ← child`` over time (TF semantics: ``p_parent = T p_child``), chained on lookup."""

    def __init__(self, tolerance: float = 0.1, max_gap: float = 1.0) -> None:
        from ..pipeline.pose_history import PoseHistory

        self._history = lambda: PoseHistory(maxlen=10_000_000, tolerance=tolerance, max_gap=max_gap)
        self.parent: dict[str, str] = {}
        self.dynamic: dict[str, Any] = {}  # child -> PoseHistory
        self.static: dict[str, np.ndarray] = {}  # child -> [4, 4]
        self.conflicts: set[str] = set()

    def add(self, parent: str, child: str, stamp: float, matrix: np.ndarray, static: bool = False) -> None:
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if not parent or not child or parent == child:
            return
        if self.parent.get(child, parent) != parent:
            self.conflicts.add(child)  # TF allows one parent per frame; keep the first
            return
        self.parent[child] = parent
        if static:
            self.static[child] = matrix
        else:
            self.dynamic.setdefault(child, self._history()).add(child, stamp, matrix)

    def root(self, frame: str) -> str:
        seen = {frame}
        while frame in self.parent:
            frame = self.parent[frame]
            if frame in seen:
                break
            seen.add(frame)
        return frame

    def frames(self) -> set[str]:
        return set(self.parent) | set(self.parent.values())

    def lookup(self, target: str, frame: str, stamp: float) -> np.ndarray | None:
        """``[4, 4]`` mapping ``frame`` coordinates into ``target`` at ``stamp`` (None when unknown)."""
        frame, target = frame.lstrip("/"), target.lstrip("/")
        pose = np.eye(4)
        for _ in range(256):
            if frame == target:
                return pose
            if frame not in self.parent:
                return None
            if frame in self.static:
                T = self.static[frame]
            else:
                T = self.dynamic[frame].lookup(frame, stamp)
                if T is None:
                    return None
            pose = T @ pose
            frame = self.parent[frame]
        return None


def _transform_matrix(tr: Any) -> np.ndarray:
    import torch

    from ..conventions import quat_xyzw_to_matrix

    r = tr.rotation
    q = torch.tensor([r.x, r.y, r.z, r.w], dtype=torch.float64)
    if not float(q.norm()) > 1e-9:
        raise ValueError("transform with a zero quaternion")
    m = np.eye(4)
    m[:3, :3] = quat_xyzw_to_matrix(q).numpy()
    m[:3, 3] = [tr.translation.x, tr.translation.y, tr.translation.z]
    return m


# ------------------------------------------------------------------------------------------- bags
def _typestore():
    from rosbags.typesys import Stores, get_typestore

    store = getattr(Stores, "ROS2_KILTED", None) or getattr(Stores, "LATEST")
    return get_typestore(store)


def _header_stamp(raw: bytes | memoryview) -> float:
    """The ``std_msgs/Header`` stamp at the start of a CDR message (Image, CompressedImage, CameraInfo)."""
    kind = bytes(raw[:2])
    fmt = "<iI" if kind in (b"\x00\x01", b"\x00\x03") else ">iI"
    sec, nsec = struct.unpack_from(fmt, raw, 4)
    return sec + nsec * 1e-9


def _stamp(s: Any) -> float:
    return s.sec + s.nanosec * 1e-9


def _namespace(topic: str) -> str:
    return topic.rstrip("/").rsplit("/", 1)[0]


def _first_encoding(reader: Any, conn: Any, ts: Any) -> str:
    for c, _, raw in reader.messages(connections=[conn]):
        msg = ts.deserialize_cdr(raw, c.msgtype)
        return str(getattr(msg, "encoding", getattr(msg, "format", ""))).strip().lower()
    return ""


def _pick(candidates: list[str], prefer: Sequence[str], role: str, option: str, extra: str = "") -> str | None:
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    preferred = [t for t in candidates if any(p in t.lower() for p in prefer)]
    if len(preferred) == 1:
        return preferred[0]
    raise FrameSourceError(f"several {role} topics in the bag: {', '.join(sorted(candidates))}; choose one with "
                           f"{option}{extra}")


def frames_from_bag(
    path: str | Path,
    *,
    rgb_topic: str | None = None,
    depth_topic: str | None = None,
    info_topic: str | None = None,
    pose_topic: str | None = None,
    map_frame: str | None = None,
    use_depth: bool = True,
    use_poses: bool = True,
    every: int = 1,
    max_views: int | None = None,
    size: tuple[int, int] | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    hfov_deg: float = DEFAULT_HFOV_DEG,
    sync_slop: float = 0.05,
    depth_scale: float = 0.001,
    tf_tolerance: float = 0.1,
    progress: bool = False,
) -> FrameSet:
    """Frames of a rosbag2 (see the module docstring)."""
    from rosbags.rosbag2 import Reader

    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"bag not found: {p}")
    if p.is_file() and p.suffix not in (".db3", ".mcap"):
        raise FrameSourceError(f"{p} is not a rosbag2 (a bag folder with metadata.yaml, a .db3 or a .mcap file)")
    ts = _typestore()
    try:
        reader = Reader(p)
        reader.open()
    except Exception as e:  # noqa: BLE001 - rosbags raises its own errors, sqlite3 and yaml errors
        raise FrameSourceError(f"cannot open {p} as a rosbag2: {type(e).__name__}: {e}") from None
    try:
        return _read_bag(reader, p, ts, rgb_topic, depth_topic, info_topic, pose_topic, map_frame, use_depth, use_poses,
                         every, max_views, size, max_side, hfov_deg, sync_slop, depth_scale, tf_tolerance, progress)
    finally:
        reader.close()


def _read_bag(reader, p, ts, rgb_topic, depth_topic, info_topic, pose_topic, map_frame, use_depth, use_poses, every,
              max_views, size, max_side, hfov_deg, sync_slop, depth_scale, tf_tolerance, progress) -> FrameSet:
    conns = list(reader.connections)
    by_topic: dict[str, list[Any]] = {}
    for c in conns:
        by_topic.setdefault(c.topic, []).append(c)
    types = {t: cs[0].msgtype for t, cs in by_topic.items()}
    listing = ", ".join(f"{t} ({m})" for t, m in sorted(types.items())) or "none"

    def check(topic: str | None, allowed: tuple[str, ...], option: str) -> None:
        if topic is None:
            return
        if topic not in types:
            raise FrameSourceError(f"{option} {topic}: no such topic in {p}; topics: {listing}")
        if types[topic] not in allowed:
            raise FrameSourceError(f"{option} {topic} carries {types[topic]}, expected {' or '.join(allowed)}")

    check(rgb_topic, (IMAGE_TYPE, COMPRESSED_TYPE), "--rgb-topic")
    check(depth_topic, (IMAGE_TYPE,), "--depth-topic")
    check(info_topic, (INFO_TYPE,), "--info-topic")
    check(pose_topic, (TRANSFORM_TYPE, TF_TYPE), "--pose-topic")

    encodings = {t: _first_encoding(reader, by_topic[t][0], ts) for t, m in types.items()
                 if m in (IMAGE_TYPE, COMPRESSED_TYPE) and (rgb_topic is None or (use_depth and depth_topic is None))}

    def is_depth(t: str) -> bool:
        e = encodings.get(t, "")
        return types[t] == IMAGE_TYPE and (e in ("16uc1", "32fc1") or (e == "mono16" and "depth" in t.lower()))

    def is_color(t: str) -> bool:
        e = encodings.get(t, "")
        if types[t] == COMPRESSED_TYPE:
            return "depth" not in e and "depth" not in t.lower()
        return types[t] == IMAGE_TYPE and e in COLOR_ENCODINGS and not is_depth(t)

    if rgb_topic is None:
        rgb_topic = _pick([t for t in encodings if is_color(t)], ("color", "rgb"), "colour image", "--rgb-topic")
        if rgb_topic is None:
            raise FrameSourceError(f"no colour image topic in {p} (sensor_msgs/msg/Image with one of "
                                   f"{', '.join(COLOR_ENCODINGS)}, or CompressedImage); topics: {listing}")
    if use_depth and depth_topic is None:
        depth_topic = _pick([t for t in encodings if is_depth(t) and t != rgb_topic], ("aligned", "registered"),
                            "depth image", "--depth-topic", " (or --no-depth)")
    if not use_depth:
        depth_topic = None
    if info_topic is None:
        infos = [t for t, m in types.items() if m == INFO_TYPE]
        near = [t for t in infos if _namespace(t) == _namespace(rgb_topic)]
        info_topic = near[0] if len(near) == 1 else _pick(infos, (), "camera_info", "--info-topic")
    tf_topics = []
    if use_poses:
        tf_topics = [pose_topic] if pose_topic else [t for t, m in types.items() if m in (TF_TYPE, TRANSFORM_TYPE)]

    # ---- pass 1: stamps of the image topics (from the CDR header), camera infos and transforms
    rgb_conns, depth_conns = by_topic[rgb_topic], by_topic.get(depth_topic, []) if depth_topic else []
    info_conns = by_topic.get(info_topic, []) if info_topic else []
    tf_conns = [c for t in tf_topics for c in by_topic[t]]
    rgb_stamps: list[tuple[float, int]] = []
    depth_stamps: list[tuple[float, int]] = []
    infos: list[tuple[float, np.ndarray, int, int]] = []
    tree = TransformTree(tolerance=tf_tolerance)
    notes: list[str] = []
    bad_tf = 0
    n_msgs = sum(c.msgcount for c in [*rgb_conns, *depth_conns, *info_conns, *tf_conns])
    counters = {"rgb": 0, "depth": 0}
    roles = {c.id: "rgb" for c in rgb_conns} | {c.id: "depth" for c in depth_conns}
    wanted = [*rgb_conns, *depth_conns, *info_conns, *tf_conns]
    for c, _, raw in _progress(reader.messages(connections=wanted), progress, "indexing bag", n_msgs):
        role = roles.get(c.id)
        if role is not None:
            (rgb_stamps if role == "rgb" else depth_stamps).append((_header_stamp(raw), counters[role]))
            counters[role] += 1
        elif c.msgtype == INFO_TYPE:
            m = ts.deserialize_cdr(raw, c.msgtype)
            infos.append((_stamp(m.header.stamp), np.asarray(m.k, np.float64).reshape(3, 3), int(m.height), int(m.width)))
        else:
            m = ts.deserialize_cdr(raw, c.msgtype)
            items = m.transforms if c.msgtype == TF_TYPE else [m]
            for tr in items:
                try:
                    tree.add(tr.header.frame_id, tr.child_frame_id, _stamp(tr.header.stamp),
                             _transform_matrix(tr.transform), static=c.topic.endswith("tf_static"))
                except ValueError:
                    bad_tf += 1
    if not rgb_stamps:
        raise FrameSourceError(f"the colour topic {rgb_topic} of {p} has no messages")
    if bad_tf:
        notes.append(f"{bad_tf} transform(s) with a zero quaternion ignored")

    # ---- selection (by header stamp), depth matching
    rgb_stamps.sort()
    pick = select_indices(len(rgb_stamps), every, max_views)
    chosen = [rgb_stamps[i] for i in pick]
    d_times = sorted(depth_stamps)
    d_keys = [s for s, _ in d_times]
    depth_for: dict[int, int] = {}
    for stamp, idx in chosen:
        j = bisect.bisect_left(d_keys, stamp)
        best = min((k for k in (j - 1, j) if 0 <= k < len(d_keys)), key=lambda k: abs(d_keys[k] - stamp), default=None)
        if best is not None and abs(d_keys[best] - stamp) <= sync_slop:
            depth_for[idx] = d_times[best][1]
    if depth_topic and len(depth_for) < len(chosen):
        notes.append(f"{len(chosen) - len(depth_for)} of {len(chosen)} frames without depth (no {depth_topic} "
                     f"message within {sync_slop} s)")

    # ---- pass 2: decode the chosen messages
    want_rgb = {idx for _, idx in chosen}
    want_depth = set(depth_for.values())
    rgb_msgs: dict[int, Any] = {}
    depth_msgs: dict[int, Any] = {}
    counters = {"rgb": 0, "depth": 0}
    for c, _, raw in _progress(reader.messages(connections=[*rgb_conns, *depth_conns]), progress, "reading frames",
                               sum(x.msgcount for x in [*rgb_conns, *depth_conns])):
        role = roles[c.id]
        i = counters[role]
        counters[role] += 1
        if role == "rgb" and i in want_rgb:
            rgb_msgs[i] = ts.deserialize_cdr(raw, c.msgtype)
        elif role == "depth" and i in want_depth:
            depth_msgs[i] = ts.deserialize_cdr(raw, c.msgtype)

    frames: list[Frame] = []
    out_size = first_size = None
    map_used = map_frame
    no_pose = 0
    info_stamps = [s for s, *_ in infos]
    if not infos:
        notes.append(f"no camera_info: intrinsics guessed from a {hfov_deg:g} degree horizontal field of view")
    for stamp, idx in chosen:
        msg = rgb_msgs[idx]
        rgb = _decode_rgb(msg, rgb_topic)
        H, W = rgb.shape[:2]
        if first_size is None:
            first_size = (H, W)
            out_size = target_size(H, W, size, max_side)
        elif (H, W) != first_size:
            raise FrameSourceError(f"{rgb_topic}: image size changes from {first_size[1]}x{first_size[0]} to {W}x{H}")
        K = guess_intrinsics(H, W, hfov_deg)
        if infos:
            j = min(range(len(infos)), key=lambda k: abs(info_stamps[k] - stamp))
            _, Ki, ih, iw = infos[j]
            if (ih and iw) and (ih, iw) != (H, W):
                raise FrameSourceError(f"{info_topic} describes {iw}x{ih} images but {rgb_topic} has {W}x{H}")
            if Ki[0, 0] > 0 and Ki[1, 1] > 0:
                K = Ki
        depth = None
        if idx in depth_for:
            dm = depth_msgs[depth_for[idx]]
            d = decode_depth(dm.encoding, dm.height, dm.width, dm.step, dm.data, bool(dm.is_bigendian),
                             depth_scale=depth_scale)
            depth = _match_size(d, H, W, depth_topic)
        frame_id = (msg.header.frame_id or "camera").lstrip("/")
        pose = None
        if tf_topics:
            if map_used is None:
                map_used = tree.root(frame_id)
            if map_used != frame_id:
                pose = tree.lookup(map_used, frame_id, stamp)
            if pose is None:
                no_pose += 1
        frames.append(fit_frame(Frame(stamp=stamp, rgb=rgb, K=K, frame_id=frame_id, depth=depth, pose=pose), *out_size))
    if tf_topics and no_pose:
        cam = frames[0].frame_id
        why = (f"'{cam}' is not in the transform tree (frames: {', '.join(sorted(tree.frames())[:8])})"
               if cam not in tree.frames() else f"no transform '{map_used}' <- '{cam}' at the image stamps")
        notes.append(f"{no_pose} of {len(frames)} frames without a pose: {why}")
    topics = {"rgb": rgb_topic}
    if depth_topic:
        topics["depth"] = depth_topic
    if info_topic:
        topics["camera_info"] = info_topic
    if tf_topics:
        topics["poses"] = ", ".join(tf_topics)
        if map_used:
            topics["map_frame"] = map_used
    return FrameSet(frames=frames, source=f"bag {p}", original_size=first_size, size=out_size, selected=pick,
                    total=len(rgb_stamps), topics=topics, notes=notes)


def _decode_rgb(msg: Any, topic: str) -> np.ndarray:
    if hasattr(msg, "encoding"):
        return decode_color(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(bytes(msg.data))) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as e:
        raise FrameSourceError(f"{topic}: cannot decode a CompressedImage of format {msg.format!r}: {e}") from None
