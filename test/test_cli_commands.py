"""The ``eps3d`` scene commands end to end on tiny inputs: demo (+ --ros), run (images, bag), query, export,
render, bench, inspect-checkpoint; user errors give ``eps3d: error:`` and exit code 2 (console script).

The model is the ``tiny`` preset with random weights, saved like the demo model folder (model.safetensors,
config.json, text_encoder.safetensors with seeded random tiny-CLIP weights).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import REPO
from eps3d_ros.cli import main
from eps3d_ros.commands import COMMANDS

REDWOOD = REPO.parent / "shared" / "data" / "redwood_rgbd"
EPS3D_BIN = Path(sys.executable).parent / "eps3d"
FAST = ["--set", "panoptic.clustering.hdbscan.min_cluster_size=30", "--max-samples", "1500", "--device", "cpu"]


def call(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def console(*argv, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(EPS3D_BIN), *[str(a) for a in argv]], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from safetensors.torch import save_file

    from eps3d_ros.model import EPS3D, EPS3DConfig
    from eps3d_ros.text.clip import import_open_clip, register_tiny_test_model

    d = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    EPS3D(EPS3DConfig.from_preset("tiny")).save_pretrained(d)
    register_tiny_test_model()
    torch.manual_seed(1)
    clip = import_open_clip().create_model("eps3d-tiny-clip", pretrained=None)
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(d / "text_encoder.safetensors"),
              metadata={"open_clip_model": "eps3d-tiny-clip"})
    return d


@pytest.fixture(scope="module")
def scene_file(model_dir, tmp_path_factory) -> Path:
    """``eps3d run`` on two Redwood colour images (no depth, no poses)."""
    out = tmp_path_factory.mktemp("run") / "scene.eps3d"
    code, stdout, stderr = call(["run", "--images", REDWOOD / "color", "--max-views", "2", "--size", "42x56",
                                 "--model", model_dir, "--out", out, "--no-progress", *FAST])
    assert code == 0, stderr
    assert "frames: 2 of 5" in stdout and "480x640 -> 42x56, HxW" in stdout and "timings:" in stdout
    return out


def test_every_command_has_help() -> None:
    for cmd in (*COMMANDS, None):
        r = console(*([cmd] if cmd else []), "--help", timeout=60)
        assert r.returncode == 0 and "usage: eps3d" in r.stdout, (cmd, r.stderr)


def test_the_parser_stays_light() -> None:
    """Building every command's parser (``eps3d --help``) imports neither torch nor rclpy: the dataset names of
    run / data / teachers / evaluate come from eps3d_ros.data without its synthetic scenes."""
    probe = ("import sys\nfrom eps3d_ros.cli import build_parser\nbuild_parser()\n"
             "print(sorted(m for m in ('torch', 'rclpy') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr)


def test_run_on_images_writes_a_scene_file(scene_file, model_dir) -> None:
    from eps3d_ros.io.scene_file import load_scene

    sf = load_scene(scene_file)
    assert sf.cameras.num_views == 2 and (sf.cameras.height, sf.cameras.width) == (42, 56)
    assert sf.scene.num_gaussians == 2 * 42 * 56 and len(sf.scene.objects) > 0
    assert sf.frame_id == "camera" and not sf.scale_known  # no depth, no poses
    assert sf.info["selected_frames"] == [0, 4] and sf.info["source"].startswith("images")
    assert sf.text_encoder.model == "eps3d-tiny-clip"
    assert sf.text_encoder.pretrained == str((model_dir / "text_encoder.safetensors").resolve())


def test_query(scene_file) -> None:
    # random weights: only the ranking is meaningful, so every object is ranked (--min-relevance 0)
    code, out, _ = call(["query", scene_file, "chair", "--top", "2", "--json", "--min-relevance", "0"])
    assert code == 0
    r = json.loads(out)
    assert r["text"] == "chair" and r["frame_id"] == "camera" and not r["scale_known"]
    assert 1 <= len(r["matches"]) <= 2 and r["matches"][0]["score"] == 1.0
    assert set(r["matches"][0]) >= {"id", "label", "centroid", "obb_extent", "num_points", "relevance"}
    assert r["min_relevance"] == 0 and not r["no_match"] and r["closest"]["relevance"] >= r["matches"][0]["relevance"]
    code, out, _ = call(["query", scene_file, "chair", "--min-relevance", "0"])
    assert code == 0 and "'chair' in" in out and "rank" in out and "relev." in out
    code, out, _ = call(["query", scene_file, "chair", "--min-relevance", "1"])
    assert code == 1 and out.startswith("no object matches 'chair' (closest: #")


def test_query_without_objects_exits_1(scene_file, tmp_path) -> None:
    from eps3d_ros.io.scene_file import load_scene, save_scene

    sf = load_scene(scene_file)
    empty = dataclasses.replace(sf, scene=dataclasses.replace(sf.scene, objects=()))
    save_scene(tmp_path / "empty.eps3d", empty)
    code, out, _ = call(["query", tmp_path / "empty.eps3d", "mug"])
    assert code == 1 and out.startswith("no object matches 'mug'")


def test_export_ply_is_read_back(scene_file, tmp_path) -> None:
    from eps3d_ros.io.ply import read_gaussian_ply
    from eps3d_ros.io.scene_file import load_scene

    code, out, _ = call(["export", scene_file, "--out", tmp_path / "scene.ply"])  # the suffix picks the format
    assert code == 0 and "(ply, " in out and "SH degree 3" in out
    code, _, _ = call(["export", scene_file, "--format", "ply", "--out", tmp_path / "same", "--sh-degree", "3"])
    assert code == 0 and (tmp_path / "same").read_bytes() == (tmp_path / "scene.ply").read_bytes()
    assert call(["export", scene_file, "--ply", tmp_path / "short.ply"])[0] == 0  # --ply FILE: the short form
    g = read_gaussian_ply(tmp_path / "scene.ply")
    scene = load_scene(scene_file).scene
    assert len(g.means) == scene.num_gaussians and g.harmonics.shape[1:] == (3, 16)
    assert np.array_equal(g.means, scene.means) and np.allclose(g.opacities, scene.opacities, atol=1e-5)
    sem, ins = scene.panoptic_labels()
    assert np.array_equal(g.labels, sem) and np.array_equal(g.instances, ins)


def test_render_pngs(scene_file, tmp_path) -> None:
    code, out, _ = call(["render", scene_file, "--out", tmp_path / "r", "--scale", "2", "--views", "1"])
    assert code == 0 and "1 views of 84x112 (HxW)" in out
    for kind in ("rgb", "semantic", "instance"):
        with Image.open(tmp_path / "r" / f"view_01_{kind}.png") as im:
            assert im.size == (112, 84)
    assert (tmp_path / "r" / "legend.png").is_file() and (tmp_path / "r" / "overview.png").is_file()
    assert not (tmp_path / "r" / "view_00_rgb.png").exists()


def test_run_on_a_bag_with_depth_and_tf_is_metric(model_dir, tmp_path) -> None:
    from eps3d_ros.data.redwood import load_rgbd_sequence
    from eps3d_ros.io.scene_file import load_scene
    from helpers.redwood_bag import write_rgbd_bag

    bag = write_rgbd_bag(load_rgbd_sequence(REDWOOD), tmp_path / "redwood")
    # the random test network's cameras fit no TF: measured depth and TF place the Gaussians
    code, out, err = call(["run", "--bag", bag, "--max-views", "3", "--size", "42x56", "--model", model_dir,
                           "--out", tmp_path / "bag.eps3d", "--json", "--no-progress", "--measured-depth", *FAST])
    assert code == 0, err
    r = json.loads(out)
    assert r["frames"] == 3 and r["size"] == [42, 56] and r["frame_id"] == "map" and r["scale_known"]
    assert r["kind"] == "map" and r["windows"]["fused"] == 1 and r["topics"]["depth"] == "/camera/depth/image"
    assert "rgb: /camera/rgb/image" in err and "depth: yes, poses: yes" in err
    sf = load_scene(tmp_path / "bag.eps3d")  # a map file is a scene file
    assert sf.scale_known and sf.info["topics"]["depth"] == "/camera/depth/image" and sf.info["map"]["fused"]
    assert set(r["timings_s"]) >= {"read frames", "load model", "network", "panoptic", "fusion", "write file"}


def test_demo_end_to_end(model_dir, tmp_path) -> None:
    from eps3d_ros.io.ply import read_gaussian_ply
    from eps3d_ros.io.scene_file import load_scene

    out = tmp_path / "demo"
    code, stdout, stderr = call(["demo", "--model", model_dir, "--views", "2", "--size", "56x56", "--out", out,
                                 "--query", "red mug", "--top", "2", *FAST])
    assert code == 0, stderr
    for text in ("input: synthetic scene seed 100000: 2 views of 56x56 (HxW) with depth and camera poses", "ground truth:",
                 "objects in 'map' (m;", "query 'red mug' (top 2, relevance >= 0.5):", "timings:", "generate scene", "load model",
                 "network", "panoptic", "render PNGs", "write PLY", "ground truth vs found (same class",
                 "found; found things matched to no true object:"):
        assert text in stdout, text
    sf = load_scene(out / "scene.eps3d")
    assert sf.scale_known and sf.frame_id == "map" and sf.cameras.num_views == 2
    assert len(read_gaussian_ply(out / "scene.ply").means) == 2 * 56 * 56
    for i in range(2):
        with Image.open(out / f"view_{i:02d}_semantic.png") as im:
            assert im.size == (112, 112)  # --render-scale 2
    assert (out / "overview.png").is_file() and (out / "legend.png").is_file()


def test_demo_measured_depth_puts_centres_on_the_surfaces(model_dir, tmp_path) -> None:
    from eps3d_ros.data.synthetic import generate_scene
    from eps3d_ros.io.scene_file import load_scene

    out = tmp_path / "demo"
    code, stdout, stderr = call(["demo", "--model", model_dir, "--views", "2", "--size", "56x56", "--out", out,
                                 "--measured-depth", *FAST])
    assert code == 0, stderr
    assert "Gaussian centres from the measured depth" in stdout and "query 'chair'" in stdout
    truth = generate_scene(seed=100_000, num_views=2, height=56, width=56)
    world = np.stack([truth.world_points(v) for v in range(2)]).reshape(-1, 3)
    hit = np.isfinite(world).all(1)
    means = load_scene(out / "scene.eps3d").scene.means.astype(np.float64)
    assert len(means) == len(world) and hit.sum() > 1000
    np.testing.assert_allclose(means[hit], world[hit], atol=1e-4)  # metres, in the map frame
    code, _, stderr = call(["demo", "--model", model_dir, "--measured-depth", "--no-poses", "--out", out, *FAST])
    assert code == 2 and "--measured-depth needs" in stderr


def test_demo_ros_calls_the_query_service(model_dir, tmp_path) -> None:
    # random test weights: their cameras fit no TF, so the scene is placed by measured depth and TF
    code, stdout, stderr = call(["demo", "--ros", "--model", model_dir, "--text-model", "eps3d-tiny-clip",
                                 "--text-weights", "random", "--views", "3", "--size", "42x42", "--out", tmp_path / "d",
                                 "--top", "2", "--measured-depth", *FAST])
    assert code == 0, stderr
    assert "[ros] call /eps3d_demo/eps3d_node/query_objects" in stdout
    assert "[ros] response: success=True, frame 'map', scale_known=True" in stdout
    assert "ROS node demo" in stdout


def test_bench_quick(tmp_path) -> None:
    code, out, _ = call(["bench", "--quick", "--views", "2", "--size", "42x42", "--repeats", "1",
                         "--json", tmp_path / "b.json"])
    assert code == 0
    r = json.loads(out)
    assert r == json.loads((tmp_path / "b.json").read_text())
    assert r["config"]["views"] == 2 and r["scene"]["gaussians"] == 2 * 42 * 42
    for key in ("forward", "query_cached_text", "render_all_views", "scene_file_write", "ply_write"):
        assert r[key]["median_s"] >= 0, key
    assert set(r["reconstruction_s"]) == {"preprocess", "network", "alignment", "panoptic", "total"}


def test_inspect_checkpoint(model_dir) -> None:
    code, out, _ = call(["inspect-checkpoint", model_dir])
    assert code == 0 and json.loads(out)["strict_load_ok"]


def test_user_errors_exit_2_with_a_message(scene_file, model_dir, tmp_path) -> None:
    from eps3d_ros.io.scene_file import FORMAT_VERSION
    from helpers.synthetic_bag import write_synthetic_bag

    corrupt = tmp_path / "corrupt.eps3d"
    corrupt.write_bytes(b"\x00" * 64)
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(scene_file), framework="np") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(tmp_path / "v9.eps3d"), metadata={**meta, "format_version": str(FORMAT_VERSION + 8)})
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "photo.jpg").write_text("not really a jpeg")
    from eps3d_ros.data.synthetic import generate_scene

    no_images = write_synthetic_bag(tmp_path / "noimg", generate_scene(seed=1, num_views=2, height=28, width=28),
                                     mcap=True, colour_topics=())
    run = ["run", "--model", model_dir, "--out", tmp_path / "x.eps3d"]
    cases = [
        (["query", tmp_path / "missing.eps3d", "mug"], "scene file not found"),
        (["query", corrupt, "mug"], "not a scene file"),
        (["export", tmp_path / "v9.eps3d", "--ply", tmp_path / "x.ply"], f"format version {FORMAT_VERSION + 8}"),
        (["export", scene_file, "--ply", tmp_path / "no" / "x.ply"], "does not exist"),
        (["export", scene_file, "--out", tmp_path / "x.obj"], "no format writes '.obj' files; give --format"),
        (["export", scene_file], "give the file to write"),
        (["render", scene_file, "--out", tmp_path / "r", "--views", "7"], "out of range"),
        ([*run, "--images", tmp_path / "empty"], "no images in"),
        ([*run, "--images", tmp_path / "bad"], "unsupported or corrupt image"),
        ([*run, "--images", tmp_path / "nowhere"], "image folder not found"),
        ([*run, "--bag", no_images], "no colour image topic"),
        ([*run, "--images", REDWOOD / "color", "--size", "50x50"], "multiples of 14"),
        (["run", "--model", tmp_path / "nomodel", "--out", tmp_path / "x.eps3d", "--images", REDWOOD / "color"],
         "model.safetensors"),
    ]
    for argv, fragment in cases:
        r = console(*argv)
        assert r.returncode == 2, (argv, r.stdout, r.stderr)
        assert r.stderr.startswith("eps3d: error:") and fragment in r.stderr, (argv, r.stderr)
        assert "Traceback" not in r.stderr
    r = console("demo", "--out", tmp_path / "d", env={"EPS3D_DEMO_MODEL": str(tmp_path / "no_demo_model")})
    assert r.returncode == 2 and r.stderr.startswith("eps3d: error: demo model not found"), r.stderr
    r = console("run", "--images", REDWOOD / "color")  # argparse: --out missing
    assert r.returncode == 2 and "--out" in r.stderr
    assert not (tmp_path / "x.eps3d").exists()


def test_run_checks_its_arguments_before_reading_any_frame(model_dir, tmp_path) -> None:
    """A bad --device, --vocabulary or --model is reported, not the (missing) input read first."""
    missing = tmp_path / "no_such_folder"
    code, _, err = call(["run", "--images", missing, "--out", tmp_path / "s.eps3d", "--model", model_dir,
                         "--device", "tpu"])
    assert code == 2 and "--device must be auto, cpu, cuda or cuda:N" in err
    code, _, err = call(["run", "--images", missing, "--out", tmp_path / "s.eps3d", "--model", model_dir,
                         "--vocabulary", "mug,,bowl"])
    assert code == 2 and "empty class name" in err
    code, _, err = call(["run", "--images", missing, "--out", tmp_path / "s.eps3d", "--model", tmp_path])
    assert code == 2 and "no weights file" in err


def test_run_on_images_of_two_sizes_keeps_their_aspect(model_dir, tmp_path) -> None:
    """VGGT's examples/room mixes a 512x384 PNG and 1280x960 JPGs: one window, one network size, no stretch."""
    d = tmp_path / "room"
    d.mkdir()
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)).save(d / "00.png")
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 256, (960, 1280, 3), dtype=np.uint8)).save(d / f"{i:02d}.jpg")
    out = tmp_path / "room.eps3d"
    code, stdout, stderr = call(["run", "--images", d, "--out", out, "--model", model_dir, "--size", "56x56",
                                 "--no-progress", *FAST])
    assert code == 0, stderr
    assert "384x512 -> 42x56" in stdout and "images of several sizes" in stdout
    from eps3d_ros.io.scene_file import load_scene

    cams = load_scene(out).cameras
    assert (cams.height, cams.width) == (42, 56)
    np.testing.assert_allclose(cams.intrinsics[:, 0, 0] / cams.intrinsics[:, 1, 1], 1.0, atol=1e-9)


def test_run_builds_a_map_window_by_window_and_the_scene_commands_read_it(model_dir, tmp_path) -> None:
    """A posed image sequence (a poses file, depth images): windows of 4 fused into one map file, which
    query / export / render read like a scene file and load_map restores."""
    from eps3d_ros.data.synthetic import generate_sequence
    from eps3d_ros.io.map_file import load_map

    seq = generate_sequence(1, num_frames=12, height=56, width=56)
    images, depth = tmp_path / "images", tmp_path / "depth"
    images.mkdir()
    depth.mkdir()
    for t in range(seq.num_frames):
        Image.fromarray(seq.rgb[t]).save(images / f"{t:03d}.png")
        Image.fromarray(np.round(seq.depth[t] * 1000).astype(np.uint16)).save(depth / f"{t:03d}.png")
    (tmp_path / "poses.json").write_text(json.dumps({"poses": seq.poses.astype(float).tolist()}))
    K = seq.intrinsics[0].astype(float)
    (tmp_path / "k.json").write_text(json.dumps({"K": (K - [[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]]).tolist()}))
    out = tmp_path / "room.eps3d"
    code, stdout, stderr = call(["run", "--images", images, "--depth-dir", depth, "--poses", tmp_path / "poses.json",
                                 "--intrinsics", tmp_path / "k.json", "--window", "4", "--measured-depth",
                                 "--model", model_dir, "--out", out, "--no-progress", "--json", *FAST])
    assert code == 0, stderr
    r = json.loads(stdout)
    assert (r["kind"], r["frames"], r["frame_id"], r["fused"]) == ("map", 12, "map", True)
    assert r["windows"] == {"reconstructed": 3, "fused": 3, "camera_frame": 0, "latest_only": 0, "in_file": 3}
    m = load_map(out)
    assert len(m.objects) == r["objects"] > 0 and max(o.observations for o in m.objects) >= 2
    assert [o["id"] for o in r["object_table"]] == [o.id for o in m.objects]
    code, text, _ = call(["query", out, "chair", "--json", "--min-relevance", "0"])
    assert code == 0 and json.loads(text)["frame_id"] == "map"
    assert call(["export", out, "--ply", tmp_path / "room.ply"])[0] == 0
    code, text, _ = call(["render", out, "--out", tmp_path / "renders", "--views", "0"])
    assert code == 0 and (tmp_path / "renders" / "view_00_rgb.png").is_file()
    code, _, err = call(["run", "--images", images, "--poses", tmp_path / "k.json", "--model", model_dir,
                         "--out", out])
    assert code == 2 and "poses" in err
