"""Dataset evaluation with the EPS3D release's protocol: its metrics (cross-checked with torchmetrics), its view
plan and input, and `eps3d evaluate --dataset scannet` on a tree made from synthetic scenes giving the mIoU and
PQ of the same scenes through the synthetic path (same protocol)."""

from __future__ import annotations

import contextlib
import io
import json
import warnings

import numpy as np
import pytest
import torch

from helpers import REPO
from helpers.dataset_trees import synthetic_scannet
from eps3d_ros.eval.dataset_protocol import EvalProtocol, class_lut, reference_input, reference_labels, view_plan
from eps3d_ros.eval.reference_metrics import SemanticAccumulator, instance_scene_scores, reference_panoptic_quality
from eps3d_ros.torchvision_compat import import_torchvision

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import_torchvision()
    from torchmetrics.classification import MulticlassAccuracy
    from torchmetrics.functional.detection import panoptic_quality
    from torchmetrics.segmentation import MeanIoU

DEMO = REPO / "models" / "demo_tiny"


def test_semantic_accumulator_is_torchmetrics_meaniou_per_view() -> None:
    rng = np.random.default_rng(0)
    acc = SemanticAccumulator(5)
    miou = MeanIoU(num_classes=6, include_background=False, per_class=True, input_format="index")
    accuracy = MulticlassAccuracy(num_classes=6, ignore_index=0, average="micro")
    for _ in range(7):
        gt = rng.integers(0, 4, (20, 20))  # classes 4 and 5 never in the truth
        pred = np.where(gt != 0, rng.integers(1, 5, (20, 20)), 0)
        acc.update(pred, gt)
        miou.update(torch.from_numpy(pred)[None], torch.from_numpy(gt)[None])
        accuracy.update(torch.from_numpy(pred).reshape(-1), torch.from_numpy(gt).reshape(-1))
    ref = miou.compute().clamp(0, 1)  # the release clamps torchmetrics' -1 (never seen) to 0
    np.testing.assert_allclose(acc.per_class(), ref.numpy(), atol=1e-6)
    assert acc.miou == pytest.approx(float(ref.mean()), abs=1e-6)
    assert acc.accuracy == pytest.approx(float(accuracy.compute()), abs=1e-6)


def test_reference_pq_equals_torchmetrics_when_nothing_is_dropped() -> None:
    rng = np.random.default_rng(1)
    for trial in range(5):
        gs = rng.integers(1, 5, 400)
        gi = np.where(np.isin(gs, [1, 2]), rng.integers(1, 4, 400), 0)
        ps = np.where(rng.random(400) < 0.8, gs, rng.integers(1, 5, 400))
        pi = np.where(rng.random(400) < 0.85, gi, rng.integers(0, 4, 400))
        ours = reference_panoptic_quality(ps, pi, gs, gi, {1, 2}, {3, 4}, robust=0.0)
        tm = panoptic_quality(torch.from_numpy(np.stack([ps, pi], -1))[None], torch.from_numpy(np.stack([gs, gi], -1))[None],
                              things={1, 2}, stuffs={3, 4}, allow_unknown_preds_category=True, return_sq_and_rq=True)
        np.testing.assert_allclose([ours["pq"], ours["sq"], ours["rq"]], tm.reshape(-1)[:3].numpy(), atol=1e-6)


def test_reference_pq_drops_absent_and_tiny_classes() -> None:
    gs = np.array([1] * 990 + [2] * 10)  # class 2 covers 1 %; with robust 0.02 it is dropped (void)
    ps = gs.copy()
    gi = np.where(gs == 1, 1, 0)
    out = reference_panoptic_quality(ps, gi, gs, gi, {1}, {2, 3}, robust=0.02)
    assert out["classes"] == [1] and out["pq"] == 1.0
    assert reference_panoptic_quality(ps, gi, gs, gi, {1}, {2, 3}, robust=0.005)["classes"] == [1, 2]


def test_instance_scene_scores_hand_case() -> None:
    gt = np.zeros((2, 4, 4), np.int64)
    gt[:, :2] = 5
    gt[:, 2:, :2] = 7
    pred = np.zeros((2, 4, 4), np.int64)  # cluster 0 covers gt 5 exactly in both views
    pred[:, 2:] = 1  # cluster 1 covers gt 7 and the unlabelled corner (which does not count)
    s = instance_scene_scores(pred, gt)
    assert s["num_gt"] == 2 and s["num_pred"] == 2 and s["hits"] == 2
    assert s["precision"] == s["recall"] == 1.0 and s["mean_iou"] == 1.0
    pred[0, :2] = 1  # view 0: cluster 1 now also covers gt 5
    s = instance_scene_scores(pred, gt)
    # gt 5 vs cluster 0: view 0 IoU 0, view 1 IoU 1 → 0.5; gt 7 vs cluster 1: view 0 4/12, view 1 1 → 2/3;
    # Hungarian keeps (5, 0) and (7, 1): one hit (2/3 > 0.5), mean IoU (0.5 + 2/3) / 2
    assert s["hits"] == 1 and s["mean_iou"] == pytest.approx((0.5 + 2 / 3) / 2, abs=1e-9)
    assert instance_scene_scores(pred, np.zeros_like(gt)) is None


def test_view_plans_input_and_classes() -> None:
    w = view_plan(40, EvalProtocol(context_views=8))
    assert len(w) == 1 and w[0].context == (0, 2, 4, 6, 8, 10, 12, 14) and w[0].target == (1, 3, 5, 7, 9, 11, 13)
    w = view_plan(18, EvalProtocol(context_views=2))  # targets t % 8 in {1, 4}; the last one has no later frame
    assert [(x.context, x.target) for x in w] == [((0, 2), (1,)), ((3, 5), (4,)), ((8, 10), (9,)), ((11, 13), (12,)),
                                                  ((16, 17), (17,))]
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, 74:] = 200
    out = reference_input(rgb, 448)
    assert out.shape == (448, 448, 3)
    lab = np.tile(np.arange(640), (480, 1))
    cropped = reference_labels(lab, 448)
    assert cropped.shape == (448, 448) and cropped[0, 0] == (74 * 640) // 597  # floor(dst * in / out) after the crop
    lut = class_lut(("unlabelled", "wall", "chair", "lamp", "floor"), EvalProtocol())
    assert lut.tolist() == [0, 1, 4, 8, 2]  # lamp → other
    assert class_lut(("unlabelled", "lamp"), EvalProtocol(classes=("wall",), things=(), other=None)).tolist() == [0, 0]


@pytest.fixture(scope="module")
def synthetic_tree(tmp_path_factory):
    from eps3d_ros.data.synthetic import generate_scene

    root = tmp_path_factory.mktemp("scannet")
    scenes = [generate_scene(seed, num_views=3, height=112, width=112) for seed in (100_000, 100_001)]
    decoded = synthetic_scannet(root, scenes)
    return root, scenes, decoded


def _protocol(scenes, mode: str) -> EvalProtocol:
    names = scenes[0].class_names
    return EvalProtocol(classes=tuple(names[1:]), things=tuple(names[i] for i in scenes[0].things), other=None,
                        context_views=2, mode=mode, input_size=112, min_cluster_size=100, max_samples=3000)


@pytest.mark.slow
def test_evaluate_dataset_scannet_equals_the_synthetic_path(synthetic_tree, tmp_path) -> None:
    from eps3d_ros.eval.dataset_eval import evaluate_windows, synthetic_windows
    from eps3d_ros.eval.model_eval import load_model_dir

    root, scenes, decoded = synthetic_tree
    names = scenes[0].class_names
    from eps3d_ros.cli import main

    argv = ["evaluate", "--dataset", "scannet", "--root", str(root), "--model", str(DEMO), "--views", "2", "--size",
            "112x112", "--classes", ",".join(names[1:]), "--things", ",".join(names[i] for i in scenes[0].things),
            "--other", "none", "--set", "panoptic.clustering.hdbscan.min_cluster_size=100", "--max-samples", "3000",
            "--device", "cpu", "--json", str(tmp_path / "eval.json"), "--out", str(tmp_path / "report"), "--no-progress"]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(argv) == 0, err.getvalue()[-3000:]
    written = json.loads((tmp_path / "eval.json").read_text())
    assert written["protocol"]["min_cluster_size"] == 100 and written["protocol"]["min_samples"] == 1  # from --set
    ours = written["summary"]
    assert ours["scenes"] == 2 and ours["windows"] == 2 and ours["mode"] == "novel"
    assert "| Semantic mIoU (2D" in (tmp_path / "report" / "evaluation.md").read_text()
    model, text = load_model_dir(DEMO)
    protocol = _protocol(scenes, "novel")
    truth = evaluate_windows(model, text, synthetic_windows(scenes, protocol, rgb=decoded), protocol)["summary"]
    for key in ("miou_2d", "accuracy_2d", "pq_2d", "sq_2d", "rq_2d", "instance_f_score_2d", "miou_3d", "pq_3d"):
        assert ours[key] == pytest.approx(truth[key], abs=1e-6), key
    assert 0 < truth["miou_2d"] < 1 and np.isfinite(truth["pq_2d"])


def test_evaluate_windows_context_mode_paths_agree(synthetic_tree) -> None:
    from eps3d_ros.data.datasets import open_dataset
    from eps3d_ros.eval.dataset_eval import dataset_windows, evaluate_windows, synthetic_windows
    from eps3d_ros.eval.model_eval import load_model_dir

    root, scenes, decoded = synthetic_tree
    protocol = _protocol(scenes[:1], "context")
    model, text = load_model_dir(DEMO)
    ds = open_dataset("scannet", root)
    protocol.max_samples = 1500
    a = evaluate_windows(model, text, dataset_windows(ds, ["scene0000_00"], protocol), protocol, path_3d=False)
    b = evaluate_windows(model, text, synthetic_windows(scenes[:1], protocol, rgb=decoded[:1]), protocol, path_3d=False)
    assert a["summary"]["miou_2d"] == b["summary"]["miou_2d"] and a["summary"]["pq_2d"] == b["summary"]["pq_2d"]
    assert a["per_window"][0]["window"] == "scene0000_00[0,2,1]"


def _evaluate_cli(*argv: str) -> tuple[int, str]:
    from eps3d_ros.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["evaluate", *map(str, argv)])
    return code, err.getvalue()


def test_evaluate_dataset_settings_are_checked_before_anything_is_read(tmp_path) -> None:
    """--set names the protocol's clustering by its dotted name; a wrong or non-panoptic name fails at once (the
    dataset root does not even exist), naming the setting."""
    base = ("--dataset", "scannet", "--root", tmp_path / "absent", "--model", DEMO, "--device", "cpu")
    code, err = _evaluate_cli(*base, "--set", "panoptic.clustering.min_cluster_size=100")
    assert code == 2 and "panoptic.clustering.hdbscan.min_cluster_size" in err, err  # the former name: its new one
    code, err = _evaluate_cli(*base, "--set", "pipeline.window_size=4")
    assert code == 2 and "panoptic settings only" in err, err
    code, err = _evaluate_cli(*base, "--set", "panoptic.clustering.hdbscan.min_cluster_size=1")
    assert code == 2 and "min_cluster_size must be >= 2" in err, err
    code, err = _evaluate_cli(*base, "--set", "panoptic.clustering.hdbscan.min_samples=many")
    assert code == 2 and "panoptic.clustering.hdbscan.min_samples" in err, err
    code, err = _evaluate_cli(DEMO, "--scenes", "scene0000_00")
    assert code == 2 and "scene ids need --dataset" in err, err
