"""``eps3d run --dataset NAME --root ROOT --scene ID`` builds a metric map in the dataset's world frame (a ScanNet
export tree, and transforms.json captures with nerfstudio or instant-ngp keys and depth files)."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from helpers.dataset_trees import write_scannet_scene, write_transforms
from eps3d_ros.cli import main
from eps3d_ros.conventions import intrinsics_for_pixel_indices

FAST = ["--set", "panoptic.clustering.hdbscan.min_cluster_size=30", "--max-samples", "1500", "--device", "cpu", "--no-progress", "--json"]


def call(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
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
def sequence():
    from eps3d_ros.data.synthetic import generate_sequence

    seq = generate_sequence(1, num_frames=8, height=42, width=56)
    truth = np.concatenate([seq.world_points(t).reshape(-1, 3) for t in range(seq.num_frames)])
    return seq, cKDTree(truth[np.isfinite(truth).all(1)])


def _assert_metric_map_in_world_frame(out, r: dict, truth: cKDTree) -> None:
    from eps3d_ros.io.map_file import load_map

    assert (r["kind"], r["windows"]["fused"], r["frames"], r["frame_id"], r["fused"], r["scale_known"]) == \
        ("map", 2, 8, "map", True, True)
    m = load_map(out)
    pts = np.concatenate([o.points for o in m.objects])
    assert len(m.objects) > 0 and len(pts) > 100
    d, _ = truth.query(pts.astype(np.float64))
    # on the true surfaces, in world coordinates (up to the map's voxels); a wrong frame or scale is off by metres
    assert np.median(d) < 0.02 and np.quantile(d, 0.95) < 0.05


@pytest.mark.slow
def test_run_dataset_scannet_builds_a_metric_map_in_the_world_frame(model_dir, sequence, tmp_path) -> None:
    seq, truth = sequence
    K = intrinsics_for_pixel_indices(torch.from_numpy(seq.intrinsics[0]).double()).numpy()
    write_scannet_scene(tmp_path / "scannet", "scene0000_00", seq.rgb, np.round(seq.depth * 1000).astype(np.uint16),
                        seq.poses.astype(np.float64), K)
    out = tmp_path / "map.eps3d"
    code, stdout, stderr = call(["run", "--dataset", "scannet", "--root", tmp_path / "scannet", "--scene",
                                 "scene0000_00", "--window", "4", "--measured-depth", "--model", model_dir, "--out",
                                 out, *FAST])
    assert code == 0, stderr
    assert "scannet scene scene0000_00" in stderr and "depth: yes, poses: yes" in stderr
    _assert_metric_map_in_world_frame(out, json.loads(stdout), truth)


@pytest.mark.slow
def test_run_dataset_transforms_capture(model_dir, sequence, tmp_path) -> None:
    """instant-ngp keys (camera_angle_x, depth_path, integer_depth_scale); nerfstudio's are read by the same reader
    (test_data_readers)."""
    seq, truth = sequence
    K = intrinsics_for_pixel_indices(torch.from_numpy(seq.intrinsics[0]).double()).numpy()
    cap = write_transforms(tmp_path / "capture", seq.rgb, seq.poses.astype(np.float64), K,
                           np.round(seq.depth * 1000).astype(np.uint16), flavour="instant-ngp")
    out = tmp_path / "map.eps3d"
    code, stdout, stderr = call(["run", "--dataset", "transforms", "--root", cap, "--window", "4", "--measured-depth",
                                 "--model", model_dir, "--out", out, *FAST])
    assert code == 0, stderr
    _assert_metric_map_in_world_frame(out, json.loads(stdout), truth)


def test_run_dataset_argument_errors(model_dir, tmp_path) -> None:
    code, _, err = call(["run", "--dataset", "scannet", "--model", model_dir, "--out", tmp_path / "x.eps3d"])
    assert code == 2 and "--root" in err
    code, _, err = call(["run", "--dataset", "scannet", "--root", tmp_path, "--scene", "scene0000_00", "--model",
                         model_dir, "--out", tmp_path / "x.eps3d"])
    assert code == 2 and "eps3d: error:" in err and "no ScanNet scene folders" not in err or "not found" in err
