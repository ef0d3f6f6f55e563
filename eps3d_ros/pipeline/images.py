"""Raw image buffers (what a ``sensor_msgs/Image`` carries, as plain values) → numpy, and frame resizing.

Decoding honours ``step`` (bytes per row, rows may be padded) and ``is_bigendian`` (16-bit and
float data). The arrays returned own their memory (the message buffer may be reused).

Resizing convention (written down once, tested in ``test/test_pipeline_images.py``): a pixel
``(u, v)`` covers ``[u - 0.5, u + 0.5]`` with its centre at ``u`` (OpenCV / CameraInfo). An image of
width W spans ``[-0.5, W - 0.5]``; resizing to W' maps the continuous coordinate ``x`` to
``(x + 0.5) * W' / W - 0.5``. Hence ``fx' = fx * W'/W`` and ``cx' = (cx + 0.5) * W'/W - 0.5``
(rows likewise), and torch's ``align_corners=False`` sampling matches exactly.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from .frames import Frame

__all__ = [
    "UnsupportedEncoding",
    "COLOR_ENCODINGS",
    "DEPTH_ENCODINGS",
    "decode_color",
    "decode_depth",
    "resize_frame",
]


class UnsupportedEncoding(ValueError):
    """An image encoding this pipeline cannot decode."""


# encoding → (channels, bytes per channel, channel order of the source); output is always RGB
COLOR_ENCODINGS: dict[str, tuple[int, int, str]] = {
    "rgb8": (3, 1, "rgb"),
    "bgr8": (3, 1, "bgr"),
    "rgba8": (4, 1, "rgb"),
    "bgra8": (4, 1, "bgr"),
    "mono8": (1, 1, "mono"),
    "rgb16": (3, 2, "rgb"),
    "bgr16": (3, 2, "bgr"),
    "rgba16": (4, 2, "rgb"),
    "bgra16": (4, 2, "bgr"),
    "mono16": (1, 2, "mono"),
}
# encoding → numpy dtype kind of one depth value ("u2": integer units × depth_scale; "f4": metres)
DEPTH_ENCODINGS: dict[str, str] = {"16uc1": "u2", "mono16": "u2", "32fc1": "f4"}
_DEPTH_NAMES = ["16UC1", "mono16", "32FC1"]


def decode_color(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: bytes | bytearray | memoryview,
    is_bigendian: bool = False,
) -> np.ndarray:
    """A colour or grey image → ``[H, W, 3]`` uint8 RGB. 16-bit values are rounded to 8 bits (v * 255 / 65535)."""
    key = str(encoding).strip().lower()
    if key not in COLOR_ENCODINGS:
        raise UnsupportedEncoding(f"unsupported colour encoding {encoding!r}; supported: {', '.join(COLOR_ENCODINGS)}")
    channels, nbytes, order = COLOR_ENCODINGS[key]
    px = _rows(encoding, height, width, step, data, channels * nbytes)  # [H, W * channels * nbytes] uint8
    if nbytes == 1:
        img = px.reshape(height, width, channels)
    else:
        wide = px.view(">u2" if is_bigendian else "<u2").reshape(height, width, channels).astype(np.uint32)
        img = ((wide * 255 + 32767) // 65535).astype(np.uint8)  # round(v / 257): exact for 8-bit values × 257
    if order == "mono":
        return np.repeat(img, 3, axis=2)  # a new array
    rgb = img[..., 2::-1] if order == "bgr" else img[..., :3]
    return np.ascontiguousarray(rgb)  # px is already a private copy; only reordered views are copied again


def decode_depth(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: bytes | bytearray | memoryview,
    is_bigendian: bool = False,
    depth_scale: float = 0.001,
    depth_min: float = 0.0,
    depth_max: float = float("inf"),
) -> np.ndarray:
    """A depth image → ``[H, W]`` float32 metres; 0, NaN, inf and values outside ``[depth_min, depth_max]`` → NaN.

    16UC1 / mono16 hold integer units (``× depth_scale``, millimetres by default, as REP 118 allows);
    32FC1 holds metres (REP 118).
    """
    key = str(encoding).strip().lower()
    if key not in DEPTH_ENCODINGS:
        raise UnsupportedEncoding(f"unsupported depth encoding {encoding!r}; supported: {', '.join(_DEPTH_NAMES)}")
    if not depth_scale > 0:
        raise ValueError(f"depth_scale must be positive metres per unit, got {depth_scale}")
    kind = DEPTH_ENCODINGS[key]
    px = _rows(encoding, height, width, step, data, 2 if kind == "u2" else 4)
    raw = px.view((">" if is_bigendian else "<") + kind).reshape(height, width)
    if kind == "u2":
        depth = raw.astype(np.float32) * np.float32(depth_scale)
        depth[raw == 0] = np.nan  # 0 = no measurement
    else:
        depth = raw.astype(np.float32)  # native byte order, a copy
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(depth) | (depth <= 0) | (depth < depth_min) | (depth > depth_max)
    depth[bad] = np.nan
    return depth


def _rows(encoding: str, height: int, width: int, step: int, data, pixel_bytes: int) -> np.ndarray:
    """The pixel bytes ``[H, W * pixel_bytes]`` uint8 of a buffer whose rows are ``step`` bytes (padding cut)."""
    height, width, step = int(height), int(width), int(step)
    if height < 1 or width < 1:
        raise ValueError(f"{encoding} image has an empty size {height}x{width}")
    row = width * pixel_bytes
    if step < row:
        raise ValueError(f"{encoding} image step {step} is smaller than width {width} x {pixel_bytes} bytes = {row}")
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size != height * step:
        raise ValueError(f"{encoding} image data has {buf.size} bytes but height {height} x step {step} = "
                         f"{height * step} (mismatched sizes: wrong height/step or truncated message)")
    return buf.reshape(height, step)[:, :row].copy()  # owns its memory; contiguous for the dtype views


def resize_frame(frame: Frame, height: int, width: int) -> Frame:
    """``frame`` at ``height x width``: RGB area average when shrinking, bilinear otherwise; depth nearest
    (invalid stays invalid, no mixed edges), K rescaled with the pixel-centre convention above."""
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"cannot resize to {height}x{width}")
    H, W = frame.size
    if (H, W) == (height, width):
        return frame
    sx, sy = width / W, height / H
    x = torch.from_numpy(frame.rgb.copy()).permute(2, 0, 1)[None].float()  # [1, 3, H, W] (a copy: frames are read-only)
    if height <= H and width <= W:
        y = F.interpolate(x, size=(height, width), mode="area")  # box average: exact for integer factors
    else:  # enlarging (in one axis at least): bilinear, low-pass filtered along a shrinking axis
        y = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    rgb = y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()  # [H', W', 3]

    depth = None
    if frame.depth is not None:
        # nearest to each new pixel centre: new u' sits at old (u' + 0.5) * W / W' - 0.5, in pixel floor((u' + 0.5) W / W')
        rows = np.minimum(((np.arange(height) + 0.5) / sy).astype(np.int64), H - 1)
        cols = np.minimum(((np.arange(width) + 0.5) / sx).astype(np.int64), W - 1)
        depth = frame.depth[rows[:, None], cols[None, :]].astype(np.float32, copy=True)

    K = frame.K.copy()
    K[0, 0] *= sx
    K[0, 1] *= sx  # skew is in x pixels per unit of normalised y
    K[1, 1] *= sy
    K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return dataclasses.replace(frame, rgb=rgb, K=K, depth=depth)
