"""``eps3d run`` with several cameras: a head camera (112x112) and a wrist camera (84x112) of a synthetic rig, as two
image folders (each with its own intrinsics, depth and poses) and as one bag with two colour topics (depth,
camera_info and TF found per camera). One map in the world frame from windows of both cameras; the per-camera
options and their errors.

The network is the tiny preset with random weights (``test_cli_commands``' model folder): the test is about the
frames' way in (cameras, intrinsics, poses, one stream, windows across cameras), not the segmentation.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from eps3d_ros.commands.camera_sources import camera_names, per_camera
from eps3d_ros.commands.guard import UserError
from eps3d_ros.data.camera_rig import generate_rig_sequence
from test_cli_commands import FAST, call, model_dir  # noqa: F401 - the tiny model folder fixture

PER_CAMERA = 8


@pytest.fixture(scope="module")
def rig():
    rig = generate_rig_sequence(2, num_frames=PER_CAMERA)
    return rig, list(rig.frames())


def _write_folders(root, frames) -> dict[str, dict]:
    """Per camera: images/, depth/ (16-bit mm), K.json (CameraInfo's K), poses.json (camera-to-world)."""
    out: dict[str, dict] = {}
    for f in frames:
        d = out.setdefault(f.camera, {"images": root / f.camera / "images", "depth": root / f"{f.camera}_depth",
                                      "K": root / f"{f.camera}_K.json", "poses": [], "n": 0})
        d["images"].mkdir(parents=True, exist_ok=True)
        d["depth"].mkdir(exist_ok=True)
        Image.fromarray(f.rgb).save(d["images"] / f"{d['n']:03d}.png")
        Image.fromarray(np.round(np.nan_to_num(f.depth) * 1000).astype(np.uint16)).save(d["depth"] / f"{d['n']:03d}.png")
        d["K"].write_text(json.dumps({"K": np.asarray(f.K, float).tolist()}))
        d["poses"].append(np.asarray(f.pose, float).tolist())
        d["n"] += 1
    for cam, d in out.items():
        d["poses_file"] = root / f"{cam}_poses.json"
        d["poses_file"].write_text(json.dumps({"poses": d["poses"]}))
    return out


def _inside_the_room(rig, objects) -> None:
    """Measured depth and the poses place every object in the room (a pose or intrinsics convention mixed up
    between the cameras would throw the wrist's views out of it)."""
    lay = rig.layout
    for o in objects:
        c = np.asarray(o.centroid)
        assert np.all(c[:2] >= lay.room_min - 0.05) and np.all(c[:2] <= lay.room_max + 0.05), c
        assert -0.05 <= c[2] <= lay.wall_height + 0.05, c


def _check_map(r: dict, rig) -> None:
    assert r["cameras"] == {"head": PER_CAMERA, "wrist": PER_CAMERA} and r["frames"] == 2 * PER_CAMERA
    n = 2 * PER_CAMERA // 4
    assert (r["kind"], r["windows"], r["frame_id"], r["fused"], r["scale_known"]) == \
        ("map", {"reconstructed": n, "fused": n, "camera_frame": 0, "latest_only": 0, "in_file": n}, "map", True, True)
    assert r["last_window_views"] == "head:2 wrist:2"  # windows of 4 views: the two cameras by turns
    assert r["size"] == [56, 56]  # the larger network size of the two (the wrist's 84x112 fits as 42x56)


@pytest.mark.slow
def test_run_with_two_image_folders_makes_one_map_of_both_cameras(model_dir, rig, tmp_path) -> None:
    from eps3d_ros.io.map_file import load_map

    seq, frames = rig
    cams = _write_folders(tmp_path, frames)
    h, w = cams["head"], cams["wrist"]
    out = tmp_path / "rig.eps3d"
    code, stdout, stderr = call([
        "run", "--images", f"head={h['images']}", "--images", f"wrist={w['images']}",
        "--intrinsics", f"wrist={w['K']}", "--intrinsics", f"head={h['K']}",  # by name, in any order
        "--poses", f"head={h['poses_file']}", "--poses", f"wrist={w['poses_file']}",
        "--depth-dir", h["depth"], "--depth-dir", w["depth"],  # unnamed: in the cameras' order
        "--window", "4", "--measured-depth", "--size", "56x56", "--model", model_dir, "--out", out, "--json",
        "--no-progress", *FAST])
    assert code == 0, stderr
    r = json.loads(stdout)
    _check_map(r, seq)
    assert "cameras: head (8 frames), wrist (8 frames)" in stderr and "depth: yes, poses: yes" in stderr
    m = load_map(out)
    assert len(m.objects) == r["objects"] > 0 and max(o.observations for o in m.objects) >= 2
    _inside_the_room(seq, m.objects)

    # what cannot make one map is refused before a window runs, naming the option
    base = ["run", "--images", f"head={h['images']}", "--images", f"wrist={w['images']}", "--model", model_dir,
            "--out", tmp_path / "x.eps3d", "--size", "56x56"]
    code, _, err = call([*base, "--poses", h["poses_file"]])
    assert code == 2 and "--poses given 1 time(s) for 2 cameras (head, wrist)" in err, err
    code, _, err = call([*base, "--poses", f"head={h['poses_file']}"])
    assert code == 2 and "camera(s) wrist have no poses while the others have" in err, err
    code, _, err = call([*base, "--poses", f"arm={h['poses_file']}", "--poses", f"wrist={w['poses_file']}"])
    assert code == 2 and "no camera named 'arm'" in err, err
    code, _, err = call(["run", "--images", h["images"], "--images", w["images"], "--model", model_dir,
                         "--out", tmp_path / "x.eps3d"])
    assert code == 2 and "two cameras named 'images'" in err, err  # both folders are called images/


@pytest.mark.slow
def test_run_on_a_bag_of_two_cameras_finds_each_cameras_depth_info_and_tf(model_dir, rig, tmp_path) -> None:
    from helpers.synthetic_bag import write_frames_bag

    seq, frames = rig
    bag = write_frames_bag(tmp_path / "rig", frames)
    code, stdout, stderr = call(["run", "--bag", bag, "--rgb-topic", "/head/image", "--rgb-topic", "/wrist/image",
                                 "--window", "4", "--measured-depth", "--size", "56x56", "--model", model_dir,
                                 "--out", tmp_path / "bag.eps3d", "--json", "--no-progress", *FAST])
    assert code == 0, stderr
    r = json.loads(stdout)
    _check_map(r, seq)
    for cam in ("head", "wrist"):
        assert r["topics"][f"{cam} rgb"] == f"/{cam}/image" and r["topics"][f"{cam} depth"] == f"/{cam}/depth"
        assert r["topics"][f"{cam} camera_info"] == f"/{cam}/camera_info" and r["topics"][f"{cam} map_frame"] == "map"
    # one colour topic of two, without naming it, is ambiguous
    code, _, err = call(["run", "--bag", bag, "--model", model_dir, "--out", tmp_path / "x.eps3d"])
    assert code == 2 and "several colour image topics" in err and "/wrist/image" in err, err


def test_per_camera_options_are_named_or_in_the_cameras_order() -> None:
    cams = camera_names(["head=a/rgb", "b/wrist"], lambda v: v.rsplit("/", 1)[-1], "--images")
    assert cams == [("head", "a/rgb"), ("wrist", "b/wrist")]
    names = [n for n, _ in cams]
    assert per_camera(["wrist=w.json", "head=h.json"], names, "--poses") == {"head": "h.json", "wrist": "w.json"}
    assert per_camera(["h.json", "w.json"], names, "--poses") == {"head": "h.json", "wrist": "w.json"}
    assert per_camera(["wrist=w.json"], names, "--poses") == {"wrist": "w.json"}  # the head has none
    assert per_camera(None, names, "--poses") == {}
    assert per_camera(["p.json"], ["camera"], "--poses") == {"camera": "p.json"}
    with pytest.raises(UserError, match="given 3 time"):
        per_camera(["a", "b", "c"], names, "--poses")
    with pytest.raises(UserError, match="given 2 time"):  # mixed named and unnamed
        per_camera(["head=a", "b"], names, "--poses")
    with pytest.raises(UserError, match="given twice for camera 'head'"):
        per_camera(["head=a", "head=b"], names, "--poses")
    with pytest.raises(UserError, match="two cameras named 'rgb'"):
        camera_names(["x/rgb", "y/rgb"], lambda v: v.rsplit("/", 1)[-1], "--images")
