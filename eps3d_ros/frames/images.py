"""Raw image buffers (what a ``sensor_msgs/Image`` carries, as plain values) → numpy.

Decoding honours ``step`` (bytes per row, rows may be padded) and ``is_bigendian`` (16-bit and
float data). The arrays returned own their memory (the message buffer may be reused). Fitting frames
to the network (one scale factor, aspect kept) is :mod:`eps3d_ros.frames.intake`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "UnsupportedEncoding",
    "COLOR_ENCODINGS",
    "DEPTH_ENCODINGS",
    "decode_color",
    "decode_depth",
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
