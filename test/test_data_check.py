"""``eps3d data check``: every broken file listed, exit 1; a good tree exits 0 with the counts."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np

from helpers.dataset_trees import H, W, save_jpg, save_png, two_view_frames, write_scannet_scene, write_tsv

TSV = [(1, "wall", 1, "wall"), (2, "chair", 5, "chair")]


def _tree(root, scenes: int = 2, frames: int = 3):
    g = two_view_frames()
    write_tsv(root, TSV)
    labels = np.ones((frames, H, W), np.uint16)
    for s in range(scenes):
        rgb = np.resize(g["rgb"], (frames, H, W, 3))
        write_scannet_scene(root, f"scene000{s}_00", rgb, np.resize(g["depth_mm"], (frames, H, W)),
                            np.resize(g["poses"], (frames, 4, 4)), labels=labels)


def _check(root, *extra) -> subprocess.CompletedProcess:
    """``eps3d data check`` in this process, its result shaped as a finished process."""
    from eps3d_ros.cli import main

    argv = ["data", "check", "--dataset", "scannet", str(root), *map(str, extra)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def test_good_tree_exits_0_with_counts(tmp_path) -> None:
    _tree(tmp_path)
    r = _check(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "scene0000_00: 3 frames (labels, depth)" in r.stdout
    assert "2 scene(s), 6 frame(s), 0 broken file(s), 0 warning(s): usable" in r.stdout
    r = _check(tmp_path, "--json", "--scenes", "scene0001_00")
    d = json.loads(r.stdout)
    assert r.returncode == 0 and d["scenes"] == 1 and d["frames"] == 3 and d["usable"] and d["errors"] == []


def test_broken_tree_lists_every_broken_file_and_exits_1(tmp_path) -> None:
    _tree(tmp_path)
    a, b = tmp_path / "scene0000_00", tmp_path / "scene0001_00"
    (a / "pose" / "0.txt").unlink()
    (a / "pose" / "2.txt").write_text("nan 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    (b / "color" / "1.jpg").write_bytes(b"not a jpeg")
    save_jpg(b / "color" / "2.jpg", np.zeros((H, W + 4, 3), np.uint8))
    bad = np.ones((H, W), np.uint16)
    bad[3, 3] = 999
    save_png(b / "label-filt" / "0.png", bad)
    save_png(a / "depth" / "1.png", np.full((H, W), 7, np.uint8))  # 8-bit: not a depth image
    r = _check(tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [line for line in r.stdout.splitlines() if line.startswith("ERROR ")]
    expected = {"scene0000_00/pose/0.txt: missing pose file", "scene0000_00/pose/2.txt: camera-to-world pose has NaN",
                "scene0001_00/color/1.jpg: not a readable colour image",
                "scene0001_00/color/2.jpg: wrong image size 36x24", "scene0001_00/label-filt/0.png: unknown label id",
                "scene0000_00/depth/1.png: a depth image must be one 16-bit channel"}
    for e in expected:
        assert sum(e in line for line in errors) == 1, (e, errors)
    assert len(errors) == len(expected)
    assert "6 broken file(s)" in r.stdout and "NOT usable" in r.stdout
    r = _check(tmp_path, "--quick")
    assert r.returncode == 1 and "pose/0.txt: missing file" in r.stdout


def test_bad_command_lines(tmp_path) -> None:
    r = _check(tmp_path / "nowhere")
    assert r.returncode == 1 and "dataset root not found" in r.stdout
    r = subprocess.run([sys.executable, "-m", "eps3d_ros.cli", "data", "check", str(tmp_path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "--dataset" in r.stderr


def test_depth_in_the_wrong_units_is_flagged(tmp_path) -> None:
    from eps3d_ros.data.check import check_dataset

    _tree(tmp_path, scenes=1)
    for i in range(3):  # tenths of a millimetre read as millimetres: a room 30 m deep
        save_png(tmp_path / "scene0000_00" / "depth" / f"{i}.png", np.full((H, W), 30000, np.uint16))
    report = check_dataset("scannet", tmp_path)
    assert not report.usable and report.frames == 3
    assert all("wrong depth units" in i.problem for i in report.errors) and len(report.errors) == 3
