"""Dataset readers on tiny trees written in each dataset's real layout: intrinsics and poses (a pixel with depth
seen in two frames lands on one world point within 1 mm), depth in metres, labels mapped to names, and bad
trees (missing pose, NaN/inf pose, wrong image size, unknown label id) → an error naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from helpers.dataset_trees import (
    BACKGROUND_MM,
    DEPTH_A_MM,
    DEPTH_B_MM,
    PIX_A,
    PIX_B,
    H,
    K,
    W,
    save_jpg,
    save_png,
    synthetic_scannet,
    two_view_frames,
    world_point,
    write_replica_scene,
    write_scannet_scene,
    write_scannetpp_scene,
    write_transforms,
    write_tsv,
    write_tum,
)
from eps3d_ros.data.dataset_scene import DatasetError, fov_intrinsics
from eps3d_ros.data.datasets import open_dataset, select_scenes

TSV = [(1, "wall", 1, "wall"), (2, "chair", 5, "chair"), (3, "floor", 2, "floor"), (40, "mug", 40, "otherprop")]


def _labels(n: int, ids: tuple[int, ...] = (1, 2, 3, 40)) -> np.ndarray:
    lab = np.zeros((n, H, W), np.uint16)
    for k, rid in enumerate(ids):
        lab[:, :, k * 8:(k + 1) * 8] = rid
    return lab


def _assert_same_point(scene, point: np.ndarray) -> None:
    f0, f1 = scene.frame(0), scene.frame(1)
    assert f0.depth.dtype == np.float32 and f0.depth.shape == f0.rgb.shape[:2]
    assert f0.depth[PIX_A[1], PIX_A[0]] == pytest.approx(DEPTH_A_MM / 1000.0, abs=1e-6)  # metres
    assert float(np.median(f0.depth)) == pytest.approx(BACKGROUND_MM / 1000.0, abs=1e-6)
    a, b = world_point(f0, PIX_A), world_point(f1, PIX_B)
    assert np.linalg.norm(a - b) < 1e-3, (a, b)
    assert np.linalg.norm(a - point) < 1e-3
    # camera-from-world of the reader agrees with its pose
    E = f1.extrinsics
    cam = E[:, :3] @ b + E[:, 3]
    assert cam[2] == pytest.approx(DEPTH_B_MM / 1000.0, abs=1e-4)


# ---------------------------------------------------------------------------------------- ScanNet
def _scannet(tmp_path, **kw):
    g = two_view_frames()
    write_tsv(tmp_path, TSV)
    write_scannet_scene(tmp_path, "scene0000_00", g["rgb"], g["depth_mm"], g["poses"], labels=_labels(2),
                        instances=np.ones((2, H, W), np.uint8), **kw)
    return g


def test_scannet_export_geometry_depth_and_nyu40_names(tmp_path) -> None:
    g = _scannet(tmp_path)
    ds = open_dataset("scannet", tmp_path, label_set="nyu40")
    assert ds.scene_ids() == ["scene0000_00"]
    scene = ds.scene("scene0000_00")
    assert scene.layout == "export" and len(scene) == 2 and scene.frame_ids == ["0", "1"]
    np.testing.assert_allclose(scene.intrinsics(0), K)
    _assert_same_point(scene, g["point"])
    f = scene.frame(0)
    names = scene.label_set.names
    assert [names[c] for c in f.semantic[0, ::8]] == ["wall", "chair", "floor", "otherprop"]
    assert [names[i] for i in scene.label_set.stuff] == ["wall", "floor"]
    assert f.instance.dtype == np.int64 and (f.instance == 1).all()


def test_scannet200_names_and_ids_outside_the_200(tmp_path) -> None:
    write_tsv(tmp_path, TSV + [(12, "counter", 12, "counter")])  # 12 is not a ScanNet200 id
    g = two_view_frames()
    write_scannet_scene(tmp_path, "scene0000_00", g["rgb"], g["depth_mm"], g["poses"], labels=_labels(2, (1, 2, 12, 40)))
    scene = open_dataset("scannet", tmp_path, label_set="scannet200").scene("scene0000_00")
    f = scene.frame(1)
    names = scene.label_set.names
    assert len(names) == 201 and names[1] == "wall" and names[2] == "chair"
    assert [names[c] for c in f.semantic[0, ::8]] == ["wall", "chair", "unlabelled", "mug"]


def test_scannet_depth_at_its_own_resolution_is_brought_onto_the_colour_pixels(tmp_path) -> None:
    """Depth at half resolution with its own intrinsics (the real 640x480 vs 1296x968 layout)."""
    g = two_view_frames()
    Kd = K.copy()
    Kd[:2] *= 0.5
    Kd[:2, 2] = (K[:2, 2] + 0.5) * 0.5 - 0.5
    small = np.full((2, H // 2, W // 2), BACKGROUND_MM, np.uint16)
    for f, (u, v), mm in ((0, PIX_A, DEPTH_A_MM), (1, PIX_B, DEPTH_B_MM)):
        small[f, v // 2, u // 2] = mm  # the depth pixel whose footprint holds the colour pixel
    write_tsv(tmp_path, TSV)
    write_scannet_scene(tmp_path, "scene0000_00", g["rgb"], small, g["poses"], K_depth=Kd)
    scene = open_dataset("scannet", tmp_path).scene("scene0000_00")
    f0, f1 = scene.frame(0), scene.frame(1)
    assert f0.depth.shape == (H, W)
    assert np.linalg.norm(world_point(f0, PIX_A) - world_point(f1, PIX_B)) < 1e-3


def test_scannet_synthetic_tree_world_points_match_the_truth(tmp_path) -> None:
    from eps3d_ros.data.synthetic import generate_scene

    s = generate_scene(3, num_views=2, height=28, width=42)
    synthetic_scannet(tmp_path, [s])
    scene = open_dataset("scannet", tmp_path).scene("scene0000_00")
    for v in range(2):
        f = scene.frame(v)
        ours, truth = f.world_points(), s.world_points(v)
        ok = np.isfinite(truth).all(-1)
        assert np.nanmax(np.linalg.norm(ours[ok] - truth[ok], axis=-1)) < 1e-3  # mm quantisation only
        np.testing.assert_array_equal(f.semantic, s.semantic[v])
        np.testing.assert_array_equal(f.instance, s.instance[v])
    assert list(scene.label_set.names) == ["unlabelled", *s.class_names[1:]]


def test_scannet_bad_tree_errors_name_each_file_and_check_lists_them_all(tmp_path) -> None:
    g = two_view_frames()
    write_tsv(tmp_path, TSV)
    rgb = np.concatenate([g["rgb"], g["rgb"], g["rgb"]])
    d = write_scannet_scene(tmp_path, "scene0000_00", rgb, np.concatenate([g["depth_mm"]] * 3),
                            np.concatenate([g["poses"]] * 3), labels=_labels(6))
    (d / "pose" / "1.txt").unlink()  # missing pose
    (d / "pose" / "2.txt").write_text("-inf -inf -inf -inf\n" * 4)  # ScanNet's invalid pose
    save_jpg(d / "color" / "3.jpg", np.zeros((H + 2, W, 3), np.uint8))  # wrong image size
    bad = _labels(1)[0]
    bad[0, 0] = 777  # not in the TSV
    save_png(d / "label-filt" / "4.png", bad)
    scene = open_dataset("scannet", tmp_path).scene("scene0000_00")
    with pytest.raises(DatasetError, match=r"pose/1\.txt: missing pose file"):
        scene.frame(1)
    with pytest.raises(DatasetError, match=r"pose/2\.txt: .*NaN or infinite"):
        scene.frame(2)
    with pytest.raises(DatasetError, match=r"color/3\.jpg: wrong image size 32x26"):
        scene.frame(3)
    with pytest.raises(DatasetError, match=r"label-filt/4\.png: unknown label id\(s\) \[777\]"):
        scene.frame(4)
    scene.frame(5)  # the good frames still read
    issues = scene.check()
    assert sorted(i.path.split("scene0000_00/")[1] for i in issues) == [
        "color/3.jpg", "label-filt/4.png", "pose/1.txt", "pose/2.txt"]
    (d / "pose" / "1.txt").write_text((d / "pose" / "0.txt").read_text())  # skipping leaves missing files errors
    skipped = open_dataset("scannet", tmp_path, invalid_poses="skip").scene("scene0000_00")
    assert "2" not in skipped.frame_ids and any("invalid" in n for n in skipped.notes)


def test_scannet_eps3d_test_layout(tmp_path) -> None:
    """The EPS3D release's test data: images/<name>.jpg + .npz (camera_pose, camera_intrinsics), depths/, labels/,
    instance/; names sorted as strings, as its loader does."""
    g = two_view_frames()
    write_tsv(tmp_path, TSV)
    d = tmp_path / "scene0100_00"
    for i, name in enumerate(["10", "9"]):  # as strings "10" < "9"
        save_jpg(d / "images" / f"{name}.jpg", g["rgb"][i])
        np.savez(d / "images" / f"{name}.npz", camera_pose=g["poses"][i], camera_intrinsics=K)
        save_png(d / "depths" / f"{name}.png", g["depth_mm"][i])
        save_png(d / "labels" / f"{name}.png", _labels(1)[0])
        save_png(d / "instance" / f"{name}.png", np.full((H, W), 3, np.uint8))
    scene = open_dataset("scannet", tmp_path).scene("scene0100_00")
    assert scene.layout == "eps3d-test" and scene.frame_ids == ["10", "9"]
    _assert_same_point(scene, g["point"])
    assert scene.label_set.names[scene.frame(1).semantic[0, 9]] == "chair"


def test_splits_and_scene_selection(tmp_path) -> None:
    _scannet(tmp_path)
    ds = open_dataset("scannet", tmp_path)
    with pytest.raises(DatasetError, match="scannetv2_val.txt: missing split file"):
        select_scenes(ds, split="val")
    (tmp_path / "scannetv2_val.txt").write_text("scene0000_00\nscene0999_00\n")
    with pytest.raises(DatasetError, match="scene0999_00 of split 'val'"):
        select_scenes(ds, split="val")
    (tmp_path / "scannetv2_val.txt").write_text("scene0000_00\n")
    assert select_scenes(ds, split="val") == ["scene0000_00"]
    assert select_scenes(ds, ["scene0000_00"]) == ["scene0000_00"]
    with pytest.raises(ValueError, match="label set"):
        open_dataset("scannet", tmp_path, label_set="coco")


# ---------------------------------------------------------------------------------------- ScanNet++
def test_scannetpp_dslr_geometry_semantics_and_objects(tmp_path) -> None:
    g = two_view_frames()
    sem = np.full((2, H, W), 255, np.uint8)
    sem[:, :, :10] = 0
    sem[:, :, 10:20] = 2
    obj = np.full((2, H, W), -1, np.int64)
    obj[:, 5:10, 5:10] = 7
    write_scannetpp_scene(tmp_path, "0a7cc12c0e", g["rgb"], g["poses"], depth_mm=g["depth_mm"], semantics=sem,
                          objects=obj, classes=["wall", "floor", "chair"])
    ds = open_dataset("scannetpp", tmp_path)
    scene = ds.scene("0a7cc12c0e")
    assert scene.frame_ids == ["DSC00001.JPG", "DSC00002.JPG"]  # frames + test_frames, by name
    _assert_same_point(scene, g["point"])
    f = scene.frame(0)
    names = scene.label_set.names
    assert names[f.semantic[0, 0]] == "wall" and names[f.semantic[0, 15]] == "chair" and f.semantic[0, 25] == 0
    assert f.instance[6, 6] == 7 and f.instance[0, 0] == 0
    bad = sem[0].copy()
    bad[0, 0] = 9
    save_png(tmp_path / "semantics_2d" / "semantics" / "0a7cc12c0e" / "DSC00002.JPG.png", bad)
    with pytest.raises(DatasetError, match=r"DSC00002\.JPG\.png: unknown label id\(s\) \[9\]"):
        scene.frame(1)
    # object-id files are read without running code: numpy arrays (numpy 2 or 1 names) only
    import os
    import torch

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"ids": RunsCode()}, tmp_path / "semantics_2d" / "obj_ids" / "0a7cc12c0e" / "DSC00001.JPG.pth")
    with pytest.raises(DatasetError, match=r"DSC00001\.JPG\.pth: refused: not a plain numpy array"):
        scene.frame(0)
    assert not (tmp_path / "ran").exists()


def test_scannetpp_refuses_fisheye_only(tmp_path) -> None:
    d = tmp_path / "data" / "abc" / "dslr" / "nerfstudio"
    d.mkdir(parents=True)
    (d / "transforms.json").write_text(json.dumps({"camera_model": "OPENCV_FISHEYE", "frames": []}))
    with pytest.raises(DatasetError, match="undistortion"):
        open_dataset("scannetpp", tmp_path).scene("abc")


# ---------------------------------------------------------------------------------------- Replica
def test_replica_sequence(tmp_path) -> None:
    K90 = fov_intrinsics(W, H, 90.0)
    g = two_view_frames(K90)
    sem = np.zeros((2, H, W), np.uint8)
    sem[:, :, :16], sem[:, :, 16:] = 31, 40
    write_replica_scene(tmp_path, "room_0", g["rgb"], g["poses"], g["depth_mm"], sem, np.full((2, H, W), 4, np.uint8),
                        {0: "undefined", 31: "floor", 40: "sofa", 93: "wall"})
    scene = open_dataset("replica", tmp_path).scene("room_0")
    np.testing.assert_allclose(scene.intrinsics(0), K90)
    _assert_same_point(scene, g["point"])
    names = scene.label_set.names
    f = scene.frame(1)
    assert names[f.semantic[0, 0]] == "floor" and names[f.semantic[0, 20]] == "sofa"
    assert [names[i] for i in scene.label_set.stuff] == ["floor", "wall"]
    assert (f.instance == 4).all()
    lines = (tmp_path / "room_0" / "Sequence_1" / "traj_w_c.txt").read_text().splitlines()
    (tmp_path / "room_0" / "Sequence_1" / "traj_w_c.txt").write_text(lines[0] + "\n")
    bad = sem[0].copy()
    bad[3, 3] = 55
    save_png(tmp_path / "room_0" / "Sequence_1" / "semantic_class" / "semantic_class_0.png", bad)
    scene = open_dataset("replica", tmp_path).scene("room_0")
    with pytest.raises(DatasetError, match=r"traj_w_c\.txt:2: missing pose"):
        scene.frame(1)
    with pytest.raises(DatasetError, match=r"semantic_class_0\.png: unknown label id\(s\) \[55\]"):
        scene.frame(0)


# ------------------------------------------------------------------------------------- captures
@pytest.mark.parametrize("flavour", ["nerfstudio", "instant-ngp"])
def test_transforms_json_capture(tmp_path, flavour) -> None:
    g = two_view_frames()
    write_transforms(tmp_path / "cap", g["rgb"], g["poses"], depth_mm=g["depth_mm"], flavour=flavour)
    ds = open_dataset("transforms", tmp_path / "cap")
    assert ds.scene_ids() == ["cap"]
    scene = ds.scene()
    np.testing.assert_allclose(scene.intrinsics(0), K, atol=1e-9)  # back to OpenCV pixel centres
    _assert_same_point(scene, g["point"])
    t = json.loads((tmp_path / "cap" / "transforms.json").read_text())
    t["frames"][1]["transform_matrix"][0][0] = float("nan")
    (tmp_path / "cap" / "transforms.json").write_text(json.dumps(t))
    with pytest.raises(DatasetError, match=r"transforms\.json frames\[frame_00001\]: transform_matrix has NaN"):
        open_dataset("transforms", tmp_path / "cap").scene().frame(1)


def test_tum_folder(tmp_path) -> None:
    g = two_view_frames()
    write_tum(tmp_path / "rgbd_dataset_freiburg1_desk", g["rgb"], g["poses"], g["depth_mm"])
    scene = open_dataset("transforms", tmp_path / "rgbd_dataset_freiburg1_desk").scene()
    _assert_same_point(scene, g["point"])


def test_redwood_folder_of_the_shared_recording() -> None:
    """The shared Redwood frames (a real PrimeSense capture) through the capture reader: view 0's points seen
    from view 1 land where view 1 measured them (as test_redwood checks for the eager reader)."""
    from helpers import SHARED

    scene = open_dataset("transforms", SHARED / "data" / "redwood_rgbd").scene()
    assert len(scene) == 5
    f0, f1 = scene.frame(0), scene.frame(1)
    np.testing.assert_allclose(f0.K, [[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])
    pts = f0.world_points().reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(1)][::7]
    E = f1.extrinsics
    cam = pts @ E[:, :3].T + E[:, 3]
    uv = cam @ f1.K.T
    u, v = np.round(uv[:, 0] / uv[:, 2]).astype(int), np.round(uv[:, 1] / uv[:, 2]).astype(int)
    ok = (u >= 0) & (u < 640) & (v >= 0) & (v < 480)
    measured = f1.depth[v[ok], u[ok]]
    good = measured > 0
    rel = np.abs(measured[good] - cam[ok, 2][good]) / measured[good]
    assert np.median(rel) < 0.02


def test_unknown_capture_and_dataset_kind(tmp_path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match="no captures"):
        open_dataset("transforms", tmp_path).scene_ids()
    with pytest.raises(ValueError, match="unknown dataset"):
        open_dataset("coco", tmp_path)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x" / "a.png")


# ----------------------------------------------------------------------- bad trees, every reader
def test_scannetpp_bad_tree(tmp_path) -> None:
    g = two_view_frames()
    rgb, poses = np.concatenate([g["rgb"]] * 2), np.concatenate([g["poses"]] * 2)
    d = write_scannetpp_scene(tmp_path, "abc", rgb, poses)
    t = json.loads((d / "nerfstudio" / "transforms_undistorted.json").read_text())
    t["frames"][0]["transform_matrix"][1][3] = float("inf")
    del t["frames"][1]["transform_matrix"]
    (d / "nerfstudio" / "transforms_undistorted.json").write_text(json.dumps(t))
    save_jpg(d / "resized_undistorted_images" / "DSC00003.JPG", np.zeros((H, W - 2, 3), np.uint8))
    scene = open_dataset("scannetpp", tmp_path).scene("abc")
    with pytest.raises(DatasetError, match=r"transforms_undistorted\.json: transform_matrix of frame DSC00001\.JPG has NaN"):
        scene.frame(0)
    with pytest.raises(DatasetError, match=r"missing pose: frame DSC00002\.JPG has no transform_matrix"):
        scene.frame(1)
    with pytest.raises(DatasetError, match=r"DSC00003\.JPG: wrong image size 30x24"):
        scene.frame(2)
    assert len(scene.check()) == 3


def test_replica_bad_tree(tmp_path) -> None:
    g = two_view_frames(fov_intrinsics(W, H, 90.0))
    d = write_replica_scene(tmp_path, "office_0", g["rgb"], g["poses"], g["depth_mm"])
    lines = (d / "traj_w_c.txt").read_text().splitlines()
    (d / "traj_w_c.txt").write_text(lines[0].replace(lines[0].split()[3], "nan", 1) + "\n" + lines[1] + "\n")
    save_png(d / "rgb" / "rgb_1.png", np.zeros((H + 1, W, 3), np.uint8))
    scene = open_dataset("replica", tmp_path).scene("office_0")
    with pytest.raises(DatasetError, match=r"traj_w_c\.txt:1: camera-to-world pose has NaN"):
        scene.frame(0)
    with pytest.raises(DatasetError, match=r"rgb_1\.png: wrong image size 32x25"):
        scene.frame(1)


def test_transforms_and_tum_bad_trees(tmp_path) -> None:
    g = two_view_frames()
    cap = write_transforms(tmp_path / "cap", g["rgb"], g["poses"], depth_mm=g["depth_mm"])
    t = json.loads((cap / "transforms.json").read_text())
    del t["frames"][0]["transform_matrix"]
    (cap / "transforms.json").write_text(json.dumps(t))
    (cap / "images" / "frame_00001.png").unlink()
    scene = open_dataset("transforms", cap).scene()
    with pytest.raises(DatasetError, match=r"frames\[frame_00000\]: missing pose"):
        scene.frame(0)
    with pytest.raises(DatasetError, match=r"frame_00001\.png: missing (colour|file)"):
        scene.frame(1)
    tum = write_tum(tmp_path / "rgbd_dataset_freiburg2_xyz", g["rgb"], g["poses"], g["depth_mm"])
    gt = (tum / "groundtruth.txt").read_text().splitlines()
    gt[-1] = " ".join(gt[-1].split()[:4] + ["nan", "0", "0", "1"])
    (tum / "groundtruth.txt").write_text("\n".join(gt) + "\n")
    with pytest.raises(DatasetError, match=r"groundtruth\.txt \(pose of .*\): quaternion is zero, NaN"):
        open_dataset("transforms", tum).scene().frame(1)


def test_object_id_files_of_numpy_1_and_2_load_without_pickle_code(tmp_path) -> None:
    """The ScanNet++ toolkit saves numpy arrays with torch.save; files written under numpy 1 name its array
    reconstructor numpy.core.multiarray, under numpy 2 numpy._core.multiarray: both are allowed, nothing else."""
    import io
    import zipfile

    import torch

    from eps3d_ros.data.scannetpp import load_numpy_pth

    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    buf = io.BytesIO()
    torch.save(a, buf)
    (tmp_path / "new.pth").write_bytes(buf.getvalue())
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(tmp_path / "old.pth", "w") as out:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            out.writestr(name, data)
    for name in ("new.pth", "old.pth"):
        np.testing.assert_array_equal(load_numpy_pth(tmp_path / name), a)
