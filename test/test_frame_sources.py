"""Frames from image folders and rosbag2s: selection, fitting to the network with K, depth, TF poses, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eps3d_ros.io.bag_frames import frames_from_bag
from eps3d_ros.io.frame_sources import FrameSourceError
from eps3d_ros.io.image_folder import (
    frames_from_images,
    guess_intrinsics,
    list_images,
    read_calibration,
    read_intrinsics,
    scale_intrinsics,
)
from eps3d_ros.geometry.transform_tree import TransformTree
from helpers import REPO
from helpers.synthetic_bag import write_synthetic_bag

REDWOOD = REPO.parent / "shared" / "data" / "redwood_rgbd"


def test_intrinsics_guess_and_files(tmp_path) -> None:
    K = guess_intrinsics(480, 640, 90.0)
    assert np.allclose(K, [[320.0, 0, 319.5], [0, 320.0, 239.5], [0, 0, 1]])
    (tmp_path / "k.json").write_text(json.dumps({"K": [[500, 0, 320], [0, 501, 240], [0, 0, 1]]}))
    (tmp_path / "f.json").write_text(json.dumps({"fx": 500, "fy": 501, "cx": 320, "cy": 240}))
    assert np.allclose(read_intrinsics(tmp_path / "k.json"), read_intrinsics(tmp_path / "f.json"))
    o3d = read_intrinsics(REDWOOD / "camera_primesense.json", 480, 640)  # column-major Open3D matrix
    assert np.allclose(o3d, [[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])
    with pytest.raises(FrameSourceError, match="is for 640x480"):
        read_intrinsics(REDWOOD / "camera_primesense.json", 240, 320)
    (tmp_path / "bad.json").write_text("{]")
    with pytest.raises(FrameSourceError, match="not a JSON"):
        read_intrinsics(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        read_intrinsics(tmp_path / "none.json")
    K, size = read_calibration(REDWOOD / "camera_primesense.json")
    assert size == (480, 640) and read_calibration(tmp_path / "k.json")[1] is None
    half = scale_intrinsics(K, size, (240, 320))  # the same camera at half resolution: one factor
    assert np.allclose(half, [[262.5, 0, 159.5], [0, 262.5, 119.5], [0, 0, 1]])
    with pytest.raises(FrameSourceError, match="another aspect"):
        scale_intrinsics(K, size, (240, 240))


def test_redwood_images_with_depth() -> None:
    fs = frames_from_images(REDWOOD / "color", box=(224, 224), every=2, max_views=2, depth_folder=REDWOOD / "depth",
                            K=read_intrinsics(REDWOOD / "camera_primesense.json"))
    assert fs.selected == [0, 4] and fs.total == 5 and fs.original_size == (480, 640) and fs.size == (168, 224)
    f = fs.frames[1]
    assert f.size == (168, 224) and f.rgb.dtype == np.uint8 and f.stamp == pytest.approx(4 / 30)
    assert np.allclose(f.K, [[183.75, 0, 111.5], [0, 183.75, 83.5], [0, 0, 1]])
    assert 1.5 < np.nanmedian(f.depth) < 2.2 and f.pose is None and not fs.notes
    guessed = frames_from_images(REDWOOD / "color", box=(56, 56), max_views=1)
    assert guessed.frames[0].size == (42, 56) and "guessed" in guessed.notes[0]  # 4:3 kept inside the box


def _png(path: Path, arr: np.ndarray) -> None:
    Image.fromarray(arr).save(path)


def test_image_folder_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FrameSourceError, match="it is empty"):
        frames_from_images(tmp_path / "empty", box=(28, 28))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    (other / "sub").mkdir()
    with pytest.raises(FrameSourceError, match=r"no images in .*\.txt.*sub-folders: sub"):
        frames_from_images(other, box=(28, 28))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_text("not a jpeg")
    with pytest.raises(FrameSourceError, match="unsupported or corrupt image"):
        frames_from_images(bad, box=(28, 28))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _png(mixed / "1.png", np.zeros((40, 60, 3), np.uint8))
    _png(mixed / "2.png", np.zeros((60, 40, 3), np.uint8))
    with pytest.raises(FrameSourceError, match="counts must agree"):
        frames_from_images(mixed, box=(28, 28), depth_folder=REDWOOD / "depth")
    with pytest.raises(FrameSourceError, match="not a folder"):
        frames_from_images(mixed / "1.png", box=(28, 28))
    with pytest.raises(FrameSourceError, match="another aspect"):  # one K for images of two shapes
        frames_from_images(mixed, box=(28, 28), K=guess_intrinsics(40, 60))


def test_images_of_several_sizes_are_each_fitted_with_their_aspect(tmp_path) -> None:
    """VGGT's examples/room mixes a 512x384 PNG and 1280x960 JPGs (all 4:3): each keeps its aspect."""
    d = tmp_path / "room"
    d.mkdir()
    _png(d / "a.png", np.full((384, 512, 3), 90, np.uint8))
    Image.fromarray(np.full((960, 1280, 3), 160, np.uint8)).save(d / "b.jpg", quality=95)
    fs = frames_from_images(d, box=(112, 112))
    assert [f.size for f in fs.frames] == [(84, 112), (84, 112)] and "several sizes" in fs.notes[-1]
    for f, (H, W) in zip(fs.frames, ((384, 512), (960, 1280))):
        K0 = guess_intrinsics(H, W)
        np.testing.assert_allclose(f.K[:2, :2], K0[:2, :2] * 112 / W, rtol=1e-12)


def test_image_modes_and_natural_order(tmp_path) -> None:
    d = tmp_path / "imgs"
    d.mkdir()
    _png(d / "img10.png", np.full((32, 32), 200, np.uint8))  # grey (32: the smallest frame taken)
    Image.fromarray(np.full((32, 32, 4), 100, np.uint8), "RGBA").save(d / "img2.png")
    Image.fromarray(np.full((32, 32), 65535, np.uint16)).save(d / "img1.png")  # 16-bit grey, not depth-like
    fs = frames_from_images(d, box=(28, 28))
    assert [f.rgb[0, 0, 0] for f in fs.frames] == [255, 100, 200]  # img1, img2, img10


# ----------------------------------------------------------------------------------------------- bags
def test_transform_tree_chains_and_interpolates() -> None:
    t = TransformTree(tolerance=0.05, max_gap=1.0)
    a = np.eye(4)
    a[:3, 3] = [1, 0, 0]
    t.add("map", "odom", 0.0, a, static=True)
    for stamp, x in ((0.0, 0.0), (1.0, 2.0)):
        b = np.eye(4)
        b[:3, 3] = [0, x, 0]
        t.add("/odom", "cam", stamp, b)
    assert np.allclose(t.lookup("map", "cam", 0.5)[:3, 3], [1, 1, 0])
    assert t.lookup("map", "cam", 5.0) is None  # beyond the samples
    assert t.root("cam") == "map" and t.lookup("cam", "cam", 0.0) is not None
    t.add("other", "cam", 0.0, np.eye(4))
    assert t.conflicts == {"cam"}


@pytest.fixture(scope="module")
def synthetic():
    from eps3d_ros.data.synthetic import generate_scene

    return generate_scene(seed=3, num_views=4, height=56, width=56)


@pytest.mark.parametrize("mcap", [True, False])
def test_bag_with_compressed_colour_depth_and_tf_chain(tmp_path, synthetic, mcap) -> None:
    bag = write_synthetic_bag(tmp_path / "bag", synthetic, mcap=mcap)
    files = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    assert len(files) == 1 and files[0].suffix == (".mcap" if mcap else ".db3")
    for source in (bag, files[0]):  # the bag folder or its storage file
        fs = frames_from_bag(source, max_views=3, box=(56, 56))
        assert fs.topics == {"rgb": "/cam/color/image/compressed", "depth": "/cam/depth/image",
                             "camera_info": "/cam/color/camera_info", "poses": "/tf, /tf_static", "map_frame": "map"}
        assert fs.selected == [0, 2, 3] and fs.total == 4 and not fs.notes
        for f, i in zip(fs.frames, fs.selected):
            assert np.array_equal(f.rgb, synthetic.rgb[i]) and f.frame_id == "cam_optical"
            assert f.stamp == pytest.approx(50.0 + 0.5 * i)
            assert np.allclose(f.pose, synthetic.poses[i], atol=1e-5)  # map <- odom (static) <- camera
            assert np.allclose(f.K[:2, 2], synthetic.intrinsics[i][:2, 2] - 0.5)
            valid = synthetic.depth[i] > 0
            assert np.allclose(f.depth[valid], synthetic.depth[i][valid]) and np.isnan(f.depth[~valid]).all()


def test_bag_options_and_fallbacks(tmp_path, synthetic) -> None:
    bag = write_synthetic_bag(tmp_path / "bag", synthetic, mcap=True, colour_topics=("/cam/color/image_raw",))
    fs = frames_from_bag(bag, box=(28, 28), use_depth=False, use_poses=False, max_views=2)
    assert fs.size == (28, 28) and not fs.has_depth and not fs.has_poses and "poses" not in fs.topics
    # bgr8 decoded, then halved with an antialiased bilinear filter, as Pillow does
    ref = np.asarray(Image.fromarray(synthetic.rgb[0]).resize((28, 28), Image.BILINEAR), np.int16)
    assert np.abs(fs.frames[0].rgb.astype(np.int16) - ref).max() <= 2
    fs = frames_from_bag(bag, box=(56, 56), map_frame="odom", max_views=1)
    assert np.allclose(fs.frames[0].pose[:3, 3], synthetic.poses[0][:3, 3] - [0.5, -0.2, 0.1], atol=1e-5)
    fs = frames_from_bag(bag, box=(56, 56), map_frame="world", max_views=1)
    assert fs.frames[0].pose is None and "without a pose" in fs.notes[0]


def test_bag_errors(tmp_path, synthetic) -> None:
    with pytest.raises(FileNotFoundError, match="bag not found"):
        frames_from_bag(tmp_path / "none", box=(56, 56))
    (tmp_path / "x.bag").write_text("ros1?")
    with pytest.raises(FrameSourceError, match="not a rosbag2"):
        frames_from_bag(tmp_path / "x.bag", box=(56, 56))
    (tmp_path / "junk").mkdir()
    with pytest.raises(FrameSourceError, match="cannot open"):
        frames_from_bag(tmp_path / "junk", box=(56, 56))
    two = write_synthetic_bag(tmp_path / "two", synthetic, mcap=True, colour_topics=("/a/image", "/b/image"))
    with pytest.raises(FrameSourceError,
                       match="several colour image topics in the bag: /a/image, /b/image; choose one with --rgb-topic"):
        frames_from_bag(two, box=(56, 56))
    assert frames_from_bag(two, rgb_topic="/b/image", max_views=1, box=(56, 56)).topics["rgb"] == "/b/image"
    with pytest.raises(FrameSourceError, match="--rgb-topic /c/image: no such topic"):
        frames_from_bag(two, rgb_topic="/c/image", box=(56, 56))
    with pytest.raises(FrameSourceError, match="carries sensor_msgs/msg/CameraInfo"):
        frames_from_bag(two, rgb_topic="/cam/color/camera_info", box=(56, 56))
    none = write_synthetic_bag(tmp_path / "none", synthetic, mcap=False, colour_topics=())
    with pytest.raises(FrameSourceError, match="no colour image topic"):
        frames_from_bag(none, box=(56, 56))


def test_the_cli_and_the_node_give_the_same_network_input(tmp_path) -> None:
    """The same 640x480 frame read from a file by `eps3d run` and received as a message by the node."""
    from sensor_msgs.msg import CameraInfo
    from sensor_msgs.msg import Image as ImageMsg

    from eps3d_ros.frames.frame import Frame
    from eps3d_ros.frames.intake import prepare_frame
    from eps3d_ros.ros.messages import camera_info_to_k, image_to_rgb

    rgb = np.random.default_rng(4).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    K = np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]])
    d = tmp_path / "one"
    d.mkdir()
    _png(d / "0.png", rgb)
    cli = frames_from_images(d, box=(112, 112), K=K).frames[0]
    msg = ImageMsg(height=480, width=640, encoding="bgr8", step=3 * 640,
                   data=np.ascontiguousarray(rgb[..., ::-1]).tobytes())
    info = CameraInfo(height=480, width=640, k=K.reshape(-1).tolist())
    node = prepare_frame(Frame(0.0, image_to_rgb(msg), camera_info_to_k(info, 480, 640), "camera"), (112, 112))
    assert cli.size == node.size == (84, 112)
    assert np.array_equal(cli.rgb, node.rgb) and np.array_equal(cli.K, node.K)
