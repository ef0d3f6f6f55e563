"""Training on real-dataset layouts: windows (stride / overlap), crops with exact intrinsics, `eps3d train` for
5 steps on a ScanNet-layout tree with ground-truth teachers and on a transforms.json capture with the outputs
of `eps3d teachers`, and dataset windows in batches and on 2 ranks."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import REPO
from helpers.dataset_trees import synthetic_scannet, write_transforms
from eps3d_ros.conventions import extrinsics_to_poses, intrinsics_for_pixel_indices
from eps3d_ros.data.synthetic import generate_scene, generate_sequence
from eps3d_ros.data.windows import Window, WindowConfig, sample_windows, view_overlap
from eps3d_ros.train.scene_dataset import SceneDataset
from eps3d_ros.text.clip import create_random_text_encoder


def test_stride_windows_and_splits() -> None:
    w = sample_windows(10, WindowConfig(num_views=3, stride=2, step=3))
    assert [x.context for x in w] == [(0, 2, 4), (3, 5, 7)]
    w = sample_windows(20, WindowConfig(num_views=5, stride=1, split="alternate", max_windows=1))
    assert w == [Window((0, 2, 4), (1, 3))]
    w = sample_windows(6, WindowConfig(num_views=3, split="last", num_target=1))
    assert w[0] == Window((0, 1), (2,)) and len(w) == 4
    with pytest.raises(ValueError, match="mode"):
        sample_windows(5, WindowConfig(mode="random"))


def _turning(n: int, step_deg: float) -> np.ndarray:
    poses = np.stack([np.eye(4)] * n)
    for i in range(n):
        a = np.radians(step_deg * i)
        poses[i, :3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
    return poses


def test_overlap_windows_follow_the_view_overlap() -> None:
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    poses = _turning(40, 3.0)  # a camera turning on the spot, 3 degrees a frame (hfov ~65 degrees)
    assert view_overlap(poses[0], K, (48, 64), poses[0], K, (48, 64)) == 1.0
    assert view_overlap(poses[0], K, (48, 64), poses[39], K, (48, 64)) < 0.05
    cfg = WindowConfig(num_views=3, mode="overlap", min_overlap=0.5, max_overlap=0.8, step=10)
    windows = sample_windows(40, cfg, camera=lambda i: (poses[i], K, (48, 64)))
    assert windows and all(len(w.context) == 3 for w in windows)
    for w in windows:
        for a, b in zip(w.context, w.context[1:]):
            assert 0.5 <= view_overlap(poses[a], K, (48, 64), poses[b], K, (48, 64)) <= 0.8
            # the next view is the farthest such frame: one more frame is out of range
            assert b + 1 == 40 or view_overlap(poses[a], K, (48, 64), poses[b + 1], K, (48, 64)) < 0.5


def test_scene_dataset_crops_with_exact_intrinsics(tmp_path) -> None:
    s = generate_scene(5, num_views=3, height=28, width=42)
    synthetic_scannet(tmp_path, [s])
    ds = SceneDataset("scannet", tmp_path, windows=WindowConfig(num_views=3), height=28, width=28)
    assert len(ds) == 1 and ds.class_names == ["unlabelled", *s.class_names[1:]]
    assert [ds.class_names[i] for i in ds.stuff] == ["wall", "floor"]
    sample = ds[0]
    assert sample.images.shape == (3, 3, 28, 28)
    left = (42 - 28) // 2
    np.testing.assert_array_equal(sample.semantic.numpy(), s.semantic[:, :, left:left + 28])
    # unproject the sample's depth through its K (renderer convention: pixel u sampled at u + 0.5) and pose
    K, E = sample.intrinsics.double().numpy(), sample.extrinsics.double().numpy()
    poses = extrinsics_to_poses(torch.from_numpy(E)).numpy()
    for v in range(3):
        u, r = np.meshgrid(np.arange(28) + 0.5, np.arange(28) + 0.5)
        d = sample.depth[v].double().numpy()
        cam = np.stack([(u - K[v, 0, 2]) / K[v, 0, 0] * d, (r - K[v, 1, 2]) / K[v, 1, 1] * d, d], -1)
        world = cam @ poses[v, :3, :3].T + poses[v, :3, 3]
        truth = s.world_points(v)[:, left:left + 28]
        ok = np.isfinite(truth).all(-1)
        assert np.max(np.linalg.norm(world[ok] - truth[ok], axis=-1)) < 1e-3
    small = ds.at_size(0, 14, 14)
    torch.testing.assert_close(small.intrinsics[:, :2], sample.intrinsics[:, :2] * 0.5)


def _cli(argv) -> tuple[int, str, str]:
    """``eps3d ARGV`` in this process (no interpreter start-up and imports per call)."""
    from eps3d_ros.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _train(tmp_path, cfg: dict) -> tuple[int, str, str]:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return _cli(["train", "--config", path, "--steps", "5", "--no-progress"])


def _config(out, text_weights: str, data: dict) -> dict:
    return {
        "model": {"preset": "tiny", "overrides": {"gaussians": {"scale_max": 0.02}}},
        "text": {"model": "eps3d-tiny-clip", "pretrained": text_weights},
        "data": {"height": 28, "width": 28, "context_views": 2, "target_views": 1, **data},
        "render": {"backend": "torch"},
        "loss": {"depth": 1.0, "camera": 0.5},
        "optim": {"steps": 5, "warmup_steps": 0},
        "run": {"out_dir": str(out), "device": "cpu", "log_every": 1, "checkpoint_every": 0, "tensorboard": False},
    }


def _log(out) -> list[dict]:
    with (out / "train_log.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_train_5_steps_on_a_scannet_tree_with_ground_truth_teachers(tmp_path) -> None:
    scenes = [generate_scene(seed, num_views=4, height=28, width=42) for seed in (11, 12)]
    synthetic_scannet(tmp_path / "scannet", scenes)
    (tmp_path / "scannet" / "scannetv2_train.txt").write_text("scene0000_00\nscene0001_00\n")
    weights = str(create_random_text_encoder(tmp_path / "clip.safetensors", seed=0))
    out = tmp_path / "run"
    code, _, err = _train(tmp_path, _config(out, weights, {"kind": "scannet", "root": str(tmp_path / "scannet"),
                                                           "split": "train", "label_set": "nyu40"}))
    assert code == 0, err[-3000:]
    rows = _log(out)
    assert [int(float(x["step"])) for x in rows] == [0, 1, 2, 3, 4]
    for x in rows:
        for k in ("total", "rgb", "semantic", "instance", "depth", "camera"):
            assert np.isfinite(float(x[k])), (k, x)
    assert (out / "model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_train_5_steps_on_a_transforms_capture_with_eps3d_teachers_outputs(tmp_path) -> None:
    seq = generate_sequence(4, num_frames=6, height=28, width=42)
    depth_mm = np.round(seq.depth * 1000).astype(np.uint16)

    K = intrinsics_for_pixel_indices(torch.from_numpy(seq.intrinsics[0]).double()).numpy()
    poses = extrinsics_to_poses(torch.from_numpy(seq.extrinsics).double()).numpy()
    cap = write_transforms(tmp_path / "capture", seq.rgb, poses, K, depth_mm)
    weights = str(create_random_text_encoder(tmp_path / "clip.safetensors", seed=0))
    code, _, err = _cli(["teachers", cap, "--features", "clip-dense", "--masks", "none", "--out",
                         tmp_path / "teachers" / "capture", "--clip-model", "eps3d-tiny-clip", "--clip-weights", weights,
                         "--clip-size", "64", "--device", "cpu"])
    assert code == 0, err[-3000:]
    out = tmp_path / "run"
    code, _, err = _train(tmp_path, _config(out, weights, {"kind": "transforms", "root": str(cap),
                                                           "teachers": str(tmp_path / "teachers"), "stride": 2}))
    assert code == 0, err[-3000:]
    rows = _log(out)
    assert len(rows) == 5
    assert all(np.isfinite(float(x["total"])) and np.isfinite(float(x["grad_norm"])) for x in rows)  # no skipped step
    assert all(np.isfinite(float(x["semantic"])) and float(x["semantic"]) > 0 for x in rows)
    assert all(np.isfinite(float(x["depth"])) for x in rows)


def test_dataset_without_labels_or_teachers_is_a_clear_error(tmp_path) -> None:
    seq = generate_sequence(4, num_frames=4, height=28, width=42)
    poses = extrinsics_to_poses(torch.from_numpy(seq.extrinsics).double()).numpy()
    write_transforms(tmp_path / "capture", seq.rgb, poses)
    with pytest.raises(ValueError, match="no labels"):
        SceneDataset("transforms", tmp_path / "capture", windows=WindowConfig(num_views=3))


def _train_process(config: dict, path: Path, nproc: int) -> subprocess.CompletedProcess:
    """``eps3d train`` in a fresh process (``--nproc-per-node``: the command starts the ranks), one thread each."""
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "eps3d_ros.cli", "train", "--config", str(path), "--nproc-per-node", str(nproc),
               "--no-progress"]
    out = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}, cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    return out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dataset_windows_on_two_ranks_equal_one_rank_with_their_batch(tmp_path) -> None:
    """A ScanNet-layout tree through the sample stream: 2 ranks x batch 1 == 1 rank x batch 2 (one window per
    forward: the same parameters bit for bit, up to 1e-5), and a joint batch of 2 windows trains."""
    scenes = [generate_scene(seed, num_views=4, height=28, width=42) for seed in (11, 12)]
    synthetic_scannet(tmp_path / "scannet", scenes)
    weights = str(create_random_text_encoder(tmp_path / "clip.safetensors", seed=0))
    data = {"kind": "scannet", "root": str(tmp_path / "scannet"), "batch_forward": "per_window"}

    def config(name: str, **data_options) -> dict:
        cfg = _config(tmp_path / name, weights, {**data, **data_options})
        cfg["optim"]["steps"] = 3
        cfg["run"]["num_threads"] = 1
        return cfg

    two = _train_process(config("two", batch_size=1), tmp_path / "two.yaml", 2)
    assert "global batch 2 = batch_size 1 x 2 rank(s) x accumulate 1" in two.stderr
    _train_process(config("one", batch_size=2), tmp_path / "one.yaml", 1)
    _train_process(config("joint", batch_size=2, batch_forward="joint"), tmp_path / "joint.yaml", 1)

    def model(name: str) -> dict[str, torch.Tensor]:
        return torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["model"]

    a, b = model("two"), model("one")
    diffs = [float((a[k] - b[k]).norm() / b[k].norm().clamp_min(1e-30)) for k in a if a[k].is_floating_point()]
    assert max(diffs) <= 1e-5
    rows = {name: _log(tmp_path / name) for name in ("two", "one", "joint")}
    assert [int(float(r["step"])) for r in rows["two"]] == [0, 1, 2]
    for r2, r1 in zip(rows["two"], rows["one"]):
        assert float(r2["total"]) == pytest.approx(float(r1["total"]), rel=1e-6)
    # the joint batch sees the same two windows at step 0 (up to the batch's rounding)
    assert float(rows["joint"][0]["total"]) == pytest.approx(float(rows["one"][0]["total"]), rel=1e-4)
    assert all(np.isfinite(float(r["total"])) for r in rows["joint"])
