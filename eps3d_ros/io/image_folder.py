"""Frames from a folder of images (and optionally a folder of depth images), for ``eps3d run --images``.

Selection: the files sorted by name (numbers numerically), then every ``every``-th, then at most
``max_views`` spread evenly (:func:`~eps3d_ros.frames.intake.select_indices`). Each frame is fitted
into the model's input box by the intake (:func:`~eps3d_ros.frames.intake.prepare_frame`: one scale
factor, centre crop to multiples of 14, intrinsics exact), at read time so that big images are not held.

Intrinsics: ``K`` when given (``--intrinsics FILE``: JSON with ``"K"`` (3x3 rows), or ``fx, fy, cx, cy``,
or Open3D's ``intrinsic_matrix`` (column-major) with ``width``/``height``), else a guess: horizontal field
of view ``hfov_deg`` (default 60°), square pixels, ``fx = fy = (W / 2) / tan(hfov / 2)``, principal point at
the image centre ``((W - 1) / 2, (H - 1) / 2)``. Depth images: 16-bit PNG in ``depth_scale`` m per unit
(mm by default) or float TIFF in metres, paired with the colour images by sorted order.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..frames.frame import Frame, check_intrinsics
from ..frames.intake import check_image_size, prepare_frame, select_indices, window_size_of
from .frame_sources import FrameSet, FrameSourceError, progress_bar

__all__ = ["DEFAULT_HFOV_DEG", "IMAGE_EXTENSIONS", "guess_intrinsics", "read_calibration", "read_intrinsics", "match_depth_size",
           "scale_intrinsics", "peek_image_size",
           "list_images", "frames_from_images"]

DEFAULT_HFOV_DEG = 60.0
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def guess_intrinsics(height: int, width: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    """``K`` for a horizontal field of view (square pixels, centred principal point, OpenCV centres)."""
    if not 1.0 <= hfov_deg <= 170.0:
        raise ValueError(f"hfov_deg must be in [1, 170], got {hfov_deg}")
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def read_calibration(path: str | Path) -> tuple[np.ndarray, tuple[int, int] | None]:
    """``(K [3, 3], (height, width) or None)`` from a JSON file: ``{"K": [[...], [...], [...]]}``,
    ``{"fx", "fy", "cx", "cy"}`` or Open3D's ``{"intrinsic_matrix": [9 values, column-major], "width",
    "height"}``; the size when the file names it."""
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
        size = (int(d["height"]), int(d["width"])) if "width" in d and "height" in d else None
    except (KeyError, TypeError, ValueError) as e:
        raise FrameSourceError(f"{p}: expected 'K' (3x3), 'fx'/'fy'/'cx'/'cy' or Open3D 'intrinsic_matrix' ({e})") from None
    return K, size


def read_intrinsics(path: str | Path, height: int | None = None, width: int | None = None) -> np.ndarray:
    """``K [3, 3]`` of :func:`read_calibration`, checked against ``height x width`` when both sides say a size."""
    K, size = read_calibration(path)
    if height is not None and width is not None and size is not None and size != (height, width):
        raise FrameSourceError(f"{path} is for {size[1]}x{size[0]} images but the images are {width}x{height}")
    return K


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


def peek_image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header (nothing decoded), EXIF orientation applied."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
                w, h = h, w
            return h, w
    except Image.DecompressionBombError as e:
        raise FrameSourceError(_bomb_message(path, e)) from None
    except UnidentifiedImageError:
        raise FrameSourceError(f"cannot read {path} as an image (unsupported or corrupt image file)") from None
    except OSError as e:
        raise FrameSourceError(f"cannot read {path}: {e}") from None


def _bomb_message(path: Path, e: Exception) -> str:
    return (f"{path}: refused: {e} Images this large are not decoded (Pillow's decompression-bomb guard); "
            "downscale it first (the network sees a few hundred pixels a side)")


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float64)
                if _looks_like_depth(a):
                    raise FrameSourceError(
                        f"{path} looks like a depth image, not a colour image (one 16-bit channel, "
                        f"{np.mean(a == 0):.0%} zeros, values up to {a.max():.0f}): give depth folders with "
                        "--depth-dir and keep only colour images in --images")
                top = 65535.0 if a.max() > 255 else 255.0
                g = np.clip(np.round(a * 255.0 / top), 0, 255).astype(np.uint8)
                rgb = np.repeat(g[..., None], 3, axis=2)
            elif im.mode == "F":
                raise FrameSourceError(f"{path}: floating-point images are not colour images (a depth map?)")
            else:
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except Image.DecompressionBombError as e:
        raise FrameSourceError(_bomb_message(path, e)) from None
    except UnidentifiedImageError:
        raise FrameSourceError(f"cannot read {path} as an image (unsupported or corrupt image file)") from None
    except OSError as e:
        raise FrameSourceError(f"cannot read {path}: {e}") from None
    try:
        check_image_size(*rgb.shape[:2], what=str(path))
    except ValueError as e:
        raise FrameSourceError(str(e)) from None
    return rgb


def _looks_like_depth(a: np.ndarray) -> bool:
    """A one-channel 16-bit image with holes (zeros: no measurement) or values in the millimetre range of indoor
    depth (below 20 m) is a depth map; a 16-bit grey camera image spans the full range and rarely reads 0."""
    return bool(a.max() > 255 and (np.mean(a == 0) > 0.01 or a.max() < 20000))


def _read_depth(path: Path, depth_scale: float) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            a = np.asarray(im)
    except Image.DecompressionBombError as e:
        raise FrameSourceError(_bomb_message(path, e)) from None
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
    box: tuple[int, int],
    every: int = 1,
    max_views: int | None = None,
    K: np.ndarray | None = None,
    K_size: tuple[int, int] | None = None,
    hfov_deg: float = DEFAULT_HFOV_DEG,
    depth_folder: str | Path | None = None,
    depth_scale: float = 0.001,
    poses: np.ndarray | None = None,
    fps: float = 30.0,
    frame_id: str = "camera",
    progress: bool = False,
) -> FrameSet:
    """Frames of an image folder, each fitted into ``box`` by the intake (aspect kept; see
    :mod:`eps3d_ros.frames.intake`); stamps are ``index / fps`` seconds.

    ``K``: the intrinsics of the images (``K_size`` = the ``(height, width)`` they were calibrated at, when
    known: images of another resolution with the same aspect get ``K`` scaled to them); None: guessed from
    ``hfov_deg`` per image. Images may differ in size (a window brings them to one network size).
    ``poses``: ``[N, 4, 4]`` camera-to-world, one per image of the folder in sorted order
    (:func:`~eps3d_ros.io.poses_file.read_poses`).
    """
    files = list_images(folder)
    depths = None
    if depth_folder is not None:
        depths = list_images(depth_folder)
        if len(depths) != len(files):
            raise FrameSourceError(f"{len(depths)} depth images in {depth_folder} for {len(files)} colour images in "
                                   f"{folder}: they are paired by sorted order, so the counts must agree")
    if poses is not None and len(poses) != len(files):
        raise FrameSourceError(f"{len(poses)} poses for {len(files)} images in {folder}: one per image, in sorted order")
    pick = select_indices(len(files), every, max_views)
    frames: list[Frame] = []
    sizes: dict[tuple[int, int], int] = {}
    notes = []
    if K is None:
        notes.append(f"intrinsics guessed from a {hfov_deg:g} degree horizontal field of view")
    for i in progress_bar(pick, progress, "reading images"):
        rgb = _read_rgb(files[i])
        H, W = rgb.shape[:2]
        sizes[(H, W)] = sizes.get((H, W), 0) + 1
        if K_size is None and K is not None:
            K_size = (H, W)  # K without a size is for the first image's size
        depth = None
        if depths is not None:
            depth = match_depth_size(_read_depth(depths[i], depth_scale), H, W, str(depths[i]))
        Ki = guess_intrinsics(H, W, hfov_deg) if K is None else check_intrinsics(
            scale_intrinsics(K, K_size, (H, W), files[i].name), H, W, f"the intrinsics of {files[i].name}")
        pose = None if poses is None else poses[i]
        frames.append(prepare_frame(Frame(stamp=i / fps, rgb=rgb, K=Ki, frame_id=frame_id, depth=depth, pose=pose),
                                    box))
    if len(sizes) > 1:
        listing = ", ".join(f"{n} x {w}x{h}" for (h, w), n in sizes.items())
        notes.append(f"images of several sizes ({listing}): fitted to one network size, aspect kept")
    first = next(iter(sizes))
    return FrameSet(frames=frames, source=f"images {Path(folder)}", original_size=first,
                    size=window_size_of([f.size for f in frames]),
                    selected=pick, total=len(files), notes=notes)


def scale_intrinsics(K: np.ndarray, calibrated: tuple[int, int], size: tuple[int, int], what: str = "an image"
                     ) -> np.ndarray:
    """``K`` of a ``calibrated = (H, W)`` image for the same camera at ``size``: one factor, pixel-centre
    convention; another aspect ratio is an error (a crop is not a resolution change)."""
    K = np.asarray(K, np.float64)
    (H0, W0), (H, W) = calibrated, size
    if (H0, W0) == (H, W):
        return K
    if abs(H / W - H0 / W0) > 0.01 * (H0 / W0):
        raise FrameSourceError(f"the intrinsics are for {W0}x{H0} images but {what} is {W}x{H} (another aspect "
                               "ratio): give intrinsics per camera, or images of one size")
    c = W / W0
    out = K.copy()
    out[0, :2] *= c
    out[1, 1] *= c
    out[:2, 2] = (K[:2, 2] + 0.5) * c - 0.5
    return out


def match_depth_size(depth: np.ndarray, H: int, W: int, what: str) -> np.ndarray:
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


