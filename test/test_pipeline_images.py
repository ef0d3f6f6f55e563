"""Raw image buffers → arrays, and frame resizing with its pixel-centre convention."""

from __future__ import annotations

import numpy as np
import pytest

from eps3d_ros.frames.frame import Frame
from eps3d_ros.frames.images import UnsupportedEncoding, decode_color, decode_depth

H, W = 5, 7


@pytest.fixture()
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _buffer(pixels: np.ndarray, pad: int = 0) -> tuple[int, bytes]:
    """Row-major bytes of ``pixels [H, W, ...]`` with ``pad`` junk bytes per row; returns (step, data)."""
    rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
    junk = np.full((rows.shape[0], pad), 0xAB, np.uint8)
    out = np.concatenate([rows, junk], axis=1)
    return out.shape[1], out.tobytes()


@pytest.mark.parametrize("pad", [0, 3])
def test_8bit_colour_encodings_round_trip(rgb, pad) -> None:
    alpha = np.full((H, W, 1), 200, np.uint8)
    cases = {
        "rgb8": rgb,
        "bgr8": rgb[..., ::-1],
        "rgba8": np.concatenate([rgb, alpha], -1),
        "bgra8": np.concatenate([rgb[..., ::-1], alpha], -1),
    }
    for enc, src in cases.items():
        step, data = _buffer(np.ascontiguousarray(src), pad)
        out = decode_color(enc, H, W, step, data)
        assert out.dtype == np.uint8 and out.shape == (H, W, 3) and out.flags.c_contiguous, enc
        np.testing.assert_array_equal(out, rgb, err_msg=enc)
    grey = rgb[..., 0]
    step, data = _buffer(np.ascontiguousarray(grey[..., None]), pad)
    out = decode_color("mono8", H, W, step, data)
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, -1))


def test_bgr_is_reordered_to_rgb() -> None:
    step, data = _buffer(np.array([[[10, 20, 30]]], np.uint8))  # B=10 G=20 R=30
    assert decode_color("bgr8", 1, 1, step, data).tolist() == [[[30, 20, 10]]]


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 2])
def test_16bit_colour_encodings_scale_down(rgb, bigendian, pad) -> None:
    dt = ">u2" if bigendian else "<u2"
    wide = rgb.astype(np.uint16) * 257  # 8-bit value v ↦ 16-bit v * 257 (0 ↦ 0, 255 ↦ 65535)
    for enc, src in {"rgb16": wide, "bgr16": wide[..., ::-1]}.items():
        step, data = _buffer(np.ascontiguousarray(src).astype(dt), pad)
        np.testing.assert_array_equal(decode_color(enc, H, W, step, data, is_bigendian=bigendian), rgb, err_msg=enc)
    step, data = _buffer(np.ascontiguousarray(wide[..., :1]).astype(dt), pad)
    out = decode_color("mono16", H, W, step, data, is_bigendian=bigendian)
    np.testing.assert_array_equal(out, np.repeat(rgb[..., :1], 3, -1))
    # rounding of values that are not multiples of 257: 128 / 257 = 0.498 → 0, 129 / 257 = 0.502 → 1
    step, data = _buffer(np.array([[[128, 129, 65535]]], dt))
    assert decode_color("rgb16", 1, 1, step, data, is_bigendian=bigendian).tolist() == [[[0, 1, 255]]]


def test_endianness_matters() -> None:
    step, data = _buffer(np.array([[[0x0100]]], ">u2"))  # big-endian 256
    assert decode_color("mono16", 1, 1, step, data, is_bigendian=True)[0, 0, 0] == 1  # 256 / 257 → 1
    assert decode_color("mono16", 1, 1, step, data, is_bigendian=False)[0, 0, 0] == 0  # read as 1


@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_16uc1_and_32fc1(bigendian) -> None:
    mm = np.array([[0, 1000, 2500], [65535, 50, 3000]], dtype=np.uint16)
    step, data = _buffer(mm.astype(">u2" if bigendian else "<u2"), pad=4)
    for enc in ("16UC1", "mono16"):
        d = decode_depth(enc, 2, 3, step, data, is_bigendian=bigendian, depth_min=0.1, depth_max=10.0)
        assert d.dtype == np.float32 and d.shape == (2, 3)
        expected = [[np.nan, 1.0, 2.5], [np.nan, np.nan, 3.0]]  # 0 → invalid, 65.535 m > max, 0.05 m < min
        np.testing.assert_allclose(d, expected, rtol=1e-6)
    # another scale (e.g. 0.1 mm units)
    d = decode_depth("16UC1", 2, 3, step, data, is_bigendian=bigendian, depth_scale=1e-4)
    assert d[0, 1] == pytest.approx(0.1) and d[1, 0] == pytest.approx(6.5535)

    m = np.array([[0.0, np.nan, 1.25], [np.inf, -1.0, 20.0]], dtype=np.float32)
    step, data = _buffer(m.astype(">f4" if bigendian else "<f4"), pad=8)
    d = decode_depth("32FC1", 2, 3, step, data, is_bigendian=bigendian, depth_max=10.0)
    assert d.dtype == np.float32 and d.dtype.isnative
    np.testing.assert_array_equal(np.isnan(d), [[True, True, False], [True, True, True]])
    assert d[0, 2] == 1.25


def test_unsupported_encoding_names_it_and_the_supported_ones() -> None:
    with pytest.raises(UnsupportedEncoding, match=r"'yuv422'.*rgb8.*bgr8.*mono16"):
        decode_color("yuv422", 1, 1, 2, b"\0\0")
    with pytest.raises(UnsupportedEncoding, match=r"'8UC3'.*16UC1.*32FC1"):
        decode_depth("8UC3", 1, 1, 3, b"\0\0\0")
    assert issubclass(UnsupportedEncoding, ValueError)


def test_size_mismatches_are_named() -> None:
    with pytest.raises(ValueError, match=r"has 20 bytes but height 2 x step 9 = 18"):
        decode_color("rgb8", 2, 3, 9, bytes(20))
    with pytest.raises(ValueError, match=r"step 8 is smaller than width 3 x 3 bytes = 9"):
        decode_color("rgb8", 2, 3, 8, bytes(16))
    with pytest.raises(ValueError, match=r"has 10 bytes but height 2 x step 6 = 12"):
        decode_depth("16UC1", 2, 3, 6, bytes(10))
    with pytest.raises(ValueError, match="mismatched sizes: depth is 4x4 but rgb is 5x7"):
        Frame(0.0, np.zeros((5, 7, 3), np.uint8), np.eye(3), "cam", depth=np.ones((4, 4), np.float32))


def test_frame_validation_messages() -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(ValueError, match="non-positive focal"):
        Frame(0.0, rgb, np.zeros((3, 3)), "cam")
    with pytest.raises(ValueError, match="uint8"):
        Frame(0.0, rgb.astype(np.float32), np.eye(3), "cam")
    with pytest.raises(ValueError, match="float32 metres"):
        Frame(0.0, rgb, np.eye(3), "cam", depth=np.zeros((4, 6), np.uint16))
    with pytest.raises(ValueError, match="proper rotation"):
        Frame(0.0, rgb, np.eye(3), "cam", pose=np.diag([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="frame_id"):
        Frame(0.0, rgb, np.eye(3), "")
    f = Frame(1, rgb, [500.0, 0, 3, 0, 500, 2, 0, 0, 1], "cam")  # CameraInfo.k: 9 values
    assert f.K.shape == (3, 3) and f.K.dtype == np.float64 and f.stamp == 1.0
    with pytest.raises(ValueError):
        f.rgb[0, 0, 0] = 1  # read-only: frames are shared between threads
