"""The one intake: network size (aspect kept), fitting with exact intrinsics, windows of mixed sizes, keyframes."""

from __future__ import annotations

import numpy as np
import pytest

from eps3d_ros.frames.frame import Frame
from eps3d_ros.frames.intake import (
    MIN_IMAGE_SIDE,
    check_image_size,
    enlargement,
    fit_frame,
    network_size,
    prepare_frame,
    select_indices,
    select_keyframes,
    select_window,
    views_per_camera,
    window_frames,
    window_size_of,
)


def _project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    p = X @ K.T
    return p[:, :2] / p[:, 2:]


def _frame(h: int, w: int, K: np.ndarray | None = None, stamp: float = 0.0, depth: bool = True, seed: int = 0) -> Frame:
    rng = np.random.default_rng(seed)
    K = np.array([[0.9 * w, 0.0, 0.52 * w], [0.0, 0.9 * w, 0.47 * h], [0.0, 0.0, 1.0]]) if K is None else K
    d = rng.uniform(1.0, 3.0, (h, w)).astype(np.float32) if depth else None
    return Frame(stamp, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), K, "cam", depth=d)


@pytest.mark.parametrize("hw, box, expected", [
    ((480, 640), (112, 112), (84, 112)),     # 4:3 fits the square box by its width: aspect exact
    ((640, 480), (112, 112), (112, 84)),     # portrait
    ((480, 640), (224, 224), (168, 224)),
    ((1080, 1920), (112, 112), (56, 112)),   # 63 rows after scaling: 7 cropped
    ((384, 512), (112, 112), (84, 112)),
    ((960, 1280), (112, 112), (84, 112)),
    ((48, 64), (112, 112), (84, 112)),       # small frames are enlarged to the model's size
    ((480, 640), (168, 224), (168, 224)),
    ((10, 1000), (112, 112), (14, 112)),     # never below one patch
])
def test_network_size_keeps_the_aspect_within_the_box(hw, box, expected) -> None:
    assert network_size(*hw, box) == expected
    h, w = expected
    assert h % 14 == 0 and w % 14 == 0 and h <= max(box[0], 14) and w <= box[1]


def test_network_size_refuses_a_box_below_one_patch() -> None:
    with pytest.raises(ValueError, match="at least 14x14"):
        network_size(480, 640, (0, 0))


def test_640x480_keeps_fx_over_fy_and_the_principal_point_exactly() -> None:
    K = np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]])
    f = _frame(480, 640, K)
    g = prepare_frame(f, (112, 112))
    assert g.size == (84, 112) and g.depth.shape == (84, 112)
    c = 112 / 640
    assert g.K[0, 0] / g.K[1, 1] == pytest.approx(K[0, 0] / K[1, 1], abs=1e-12)
    np.testing.assert_allclose(g.K[:2, :2], K[:2, :2] * c, rtol=1e-12)
    # the principal point keeps its place in the scene: (cx + 0.5) c - 0.5, nothing cropped
    np.testing.assert_allclose(g.K[:2, 2], (K[:2, 2] + 0.5) * c - 0.5, rtol=1e-12)
    assert prepare_frame(g, (112, 112)) is g  # idempotent: a prepared frame passes through


@pytest.mark.parametrize("src, out", [((480, 640), (112, 112)), ((1080, 1920), (56, 112)), ((50, 70), (84, 112)),
                                      ((333, 501), (70, 112))])
def test_fit_frame_moves_every_projection_exactly(src, out) -> None:
    rng = np.random.default_rng(3)
    K = np.array([[400.0, 0.7, src[1] * 0.48], [0.0, 380.0, src[0] * 0.53], [0.0, 0.0, 1.0]])
    f = _frame(*src, K)
    g = fit_frame(f, *out)
    assert g.size == out and g.rgb.dtype == np.uint8 and g.depth.shape == out
    H, W = src
    c = max(out[0] / H, out[1] / W)
    y0, x0 = (int(H * c + 1e-9) - out[0]) // 2, (int(W * c + 1e-9) - out[1]) // 2
    X = np.column_stack([rng.uniform(-0.3, 0.3, 20), rng.uniform(-0.3, 0.3, 20), rng.uniform(1, 2, 20)])
    p, q = _project(K, X), _project(g.K, X)
    np.testing.assert_allclose(q, (p + 0.5) * c - 0.5 - [x0, y0], atol=1e-9)
    assert g.K[0, 0] / g.K[1, 1] == pytest.approx(K[0, 0] / K[1, 1], abs=1e-12)  # never stretched
    # depth: the nearest source pixel of each output pixel centre, never mixed
    u, v = out[1] // 3, out[0] // 2
    su, sv = int(np.floor((u + x0 + 0.5) / c)), int(np.floor((v + y0 + 0.5) / c))
    assert g.depth[v, u] == f.depth[min(sv, H - 1), min(su, W - 1)]


def test_fit_frame_image_content_follows_the_intrinsics() -> None:
    """A bright blob at the projection of a point is found at that point's projection through the new K."""
    H, W = 480, 640
    v, u = np.mgrid[0:H, 0:W]
    ct = (401.3, 177.8)  # continuous (u, v) of the blob centre
    blob = np.exp(-((u - ct[0]) ** 2 + (v - ct[1]) ** 2) / (2 * 9.0 ** 2))
    rgb = np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    K = np.array([[500.0, 0, 320.0], [0, 500.0, 240.0], [0, 0, 1.0]])
    for out in ((84, 112), (112, 112), (168, 224)):
        g = fit_frame(Frame(0.0, rgb, K, "cam"), *out)
        img = g.rgb[..., 0].astype(np.float64)
        vv, uu = np.mgrid[0:out[0], 0:out[1]]
        found = np.array([(img * uu).sum(), (img * vv).sum()]) / img.sum()
        X = np.linalg.inv(K) @ np.array([*ct, 1.0])
        np.testing.assert_allclose(found, _project(g.K, X[None])[0], atol=0.05)


def test_fit_frame_depth_keeps_invalid_invalid() -> None:
    depth = np.full((40, 40), 2.0, np.float32)
    depth[:20, :20] = np.nan
    depth[20:, 20:] = 5.0
    f = Frame(0.0, np.zeros((40, 40, 3), np.uint8), np.diag([50.0, 50.0, 1.0]), "cam", depth=depth)
    g = fit_frame(f, 14, 14)
    assert np.isnan(g.depth[:7, :7]).all() and not np.isnan(g.depth[7:, :]).any()
    assert set(np.unique(g.depth[~np.isnan(g.depth)])) == {2.0, 5.0}  # values are taken, never mixed
    up = fit_frame(f, 56, 56)
    assert np.isnan(up.depth).sum() == 28 * 28


def test_a_window_mixing_512x384_and_1280x960_gets_one_network_size() -> None:
    small = _frame(384, 512, stamp=1.0)
    big = _frame(960, 1280, stamp=2.0, seed=1)
    out = window_frames([small, big], (112, 112))
    assert [f.size for f in out] == [(84, 112), (84, 112)] and [f.stamp for f in out] == [1.0, 2.0]
    for src, g in zip((small, big), out):
        c = 112 / src.width
        np.testing.assert_allclose(g.K[:2, :2], src.K[:2, :2] * c, rtol=1e-12)
    # another aspect in the window (a 16:9 wrist camera beside a 4:3 head): all fitted (cover + crop) to the
    # largest network size of the window, never stretched, in any order
    wide = _frame(360, 640, stamp=3.0, seed=2)
    for window in ([small, big, wide], [wide, small]):
        out = window_frames(window, (112, 112))
        assert {f.size for f in out} == {(84, 112)}
        for src, g in zip(window, out):
            assert g.K[0, 0] / g.K[1, 1] == pytest.approx(src.K[0, 0] / src.K[1, 1], abs=1e-12)
    # equal areas: the size most frames have, whatever the order (an odd newest frame does not crop the others)
    portrait = _frame(640, 480, stamp=4.0, seed=3)
    for order in ([small, big, portrait], [portrait, small, big], [big, portrait, small]):
        assert {f.size for f in window_frames(order, (112, 112))} == {(84, 112)}
    # the larger area first, then the count, then the wider, in any order
    assert window_size_of([(56, 112), (84, 112)]) == window_size_of([(84, 112), (56, 112)]) == (84, 112)
    assert window_size_of([(56, 112), (56, 112), (84, 112)]) == (84, 112)
    assert window_size_of([(112, 84), (84, 112)]) == window_size_of([(84, 112), (112, 84)]) == (84, 112)
    assert window_size_of([(112, 84), (112, 84), (84, 112)]) == (112, 84)
    with pytest.raises(ValueError, match="empty window"):
        window_frames([], (112, 112))


def _posed(stamp: float, x: float) -> Frame:
    pose = np.eye(4)
    pose[0, 3] = x
    return Frame(stamp, np.zeros((14, 14, 3), np.uint8), np.diag([10.0, 10.0, 1.0]), "cam", pose=pose)


def test_keyframes_need_time_and_motion_and_fill_up_when_standing_still() -> None:
    moving = [_posed(0.1 * i, 0.02 * i) for i in range(10)]  # 2 cm per 0.1 s
    picked = select_keyframes(moving, 3, min_interval=0.2, min_translation=0.05, min_rotation_deg=5.0)
    assert [round(f.stamp, 1) for f in picked] == [0.3, 0.6, 0.9]  # 3 steps back = 6 cm and 0.3 s
    still = [_posed(0.1 * i, 0.0) for i in range(10)]
    picked = select_keyframes(still, 3, min_interval=0.2, min_translation=0.05, min_rotation_deg=5.0)
    assert [round(f.stamp, 1) for f in picked] == [0.7, 0.8, 0.9]  # the most recent fill up
    with pytest.raises(ValueError):
        select_keyframes(still, 0, 0.2, 0.05, 5.0)


def _cam(camera: str, stamp: float, x: float, size: int = 14) -> Frame:
    pose = np.eye(4)
    pose[0, 3] = x
    return Frame(stamp, np.zeros((size, size, 3), np.uint8), np.diag([10.0, 10.0, 1.0]), f"{camera}_optical",
                 pose=pose, camera=camera)


def test_a_window_of_two_cameras_takes_each_cameras_newest_frame_and_keyframes_by_turns() -> None:
    keys = dict(min_interval=0.2, min_translation=0.05, min_rotation_deg=5.0)
    # interleaved streams: a moving head at 10 Hz, a moving wrist at 4 Hz, not in step
    head = [_cam("head", 0.1 * i, 0.02 * i) for i in range(12)]
    wrist = [_cam("wrist", 0.02 + 0.25 * i, 0.06 * i) for i in range(5)]
    frames = sorted(head + wrist, key=lambda f: f.stamp)
    window = select_window(frames, 4, **keys)
    assert views_per_camera(window) == {"wrist": 2, "head": 2}
    assert [(f.camera, round(f.stamp, 2)) for f in window] == [("wrist", 0.77), ("head", 0.8), ("wrist", 1.02),
                                                             ("head", 1.1)]
    assert [f.stamp for f in window] == sorted(f.stamp for f in window)  # oldest -> newest
    # one camera only: exactly the single-camera rule
    assert select_window(head, 3, **keys) == select_keyframes(head, 3, **keys)
    # a camera with one frame gives its turns to the other; a window of 1 is the newest camera's newest frame
    one = [_cam("wrist", 0.55, 0.0)]
    assert views_per_camera(select_window(sorted(head + one, key=lambda f: f.stamp), 4, **keys)) == \
        {"head": 3, "wrist": 1}
    assert [(f.camera, f.stamp) for f in select_window(frames, 1, **keys)] == [("head", head[-1].stamp)]
    # hardware-synchronised cameras: equal stamps, both kept, head first when its turn comes first
    sync = [_cam(c, 0.3 * i, 0.1 * i) for i in range(4) for c in ("head", "wrist")]
    window = select_window(sync, 4, **keys)
    assert [(f.camera, round(f.stamp, 1)) for f in window] == [("head", 0.6), ("wrist", 0.6), ("head", 0.9),
                                                             ("wrist", 0.9)]


def test_select_indices_spreads_over_a_recording() -> None:
    assert select_indices(10, max_views=3) == [0, 4, 9] and select_indices(10, every=3) == [0, 3, 6, 9]
    with pytest.raises(ValueError):
        select_indices(5, every=0)


def test_frames_below_the_minimum_size_are_refused_by_name() -> None:
    assert MIN_IMAGE_SIDE == 32
    with pytest.raises(ValueError, match=r"the frame at 1.500 s is 1x1 pixels \(WxH\): frames need at least 32"):
        prepare_frame(_frame(1, 1, stamp=1.5), (112, 112))
    with pytest.raises(ValueError, match="is 640x31 pixels"):
        check_image_size(31, 640)
    assert prepare_frame(_frame(32, 32), (112, 112)).size == (112, 112)
    assert enlargement(32, 32, 112, 112) == 3.5 and enlargement(480, 640, 84, 112) == 1.0


def test_a_session_refuses_a_tiny_frame_and_keeps_going() -> None:
    """The node's intake (Session.offer): a 1x1 image is refused, counted and said; the next good frame is taken."""
    from eps3d_ros.pipeline.session import Session
    from eps3d_ros.settings.tree import Eps3dConfig

    cfg = Eps3dConfig()
    cfg.pipeline.image_height, cfg.pipeline.image_width = 84, 112
    class NeverRun:  # two frames make no window: nothing is reconstructed here
        def run(self, frames, *args, **kwargs):
            raise AssertionError("no window expected")

    session = Session(cfg, NeverRun())
    try:
        assert not session.offer(_frame(1, 1, stamp=1.0))
        assert session.last_offer.reason == "too_small" and "1x1 pixels" in session.last_offer.message
        assert session.offer(_frame(84, 112, stamp=2.0))
    finally:
        session.close()
