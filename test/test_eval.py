"""Tests for eps3d_ros.eval: hand-computed cases, perfect predictions, torchmetrics cross-checks, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from eps3d_ros.torchvision_compat import import_torchvision

with warnings.catch_warnings():  # torchmetrics imports torchvision; the compat shim may warn once
    warnings.simplefilter("ignore", RuntimeWarning)
    import_torchvision()
    import torchmetrics  # noqa: E402
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
    from torchmetrics.detection import PanopticQuality
    from torchmetrics.segmentation import MeanIoU

from eps3d_ros.eval import (  # noqa: E402
    confusion_matrix,
    evaluate_panoptic_2d,
    evaluate_panoptic_3d,
    instance_iou_matrix,
    instance_prf,
    match_segments,
    panoptic_quality,
    per_class_iou,
    reference_protocol,
    resize_nearest,
    semantic_accuracy,
    semantic_miou,
)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

THINGS = (1, 2, 3)
STUFF = (4, 5, 6)
NUM_CLASSES = 7


# ---- random blob-like scenes ---------------------------------------------------------------------


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _render(
    h: int, w: int, stuff_cells: np.ndarray, shift: tuple[int, int], blobs: list
) -> tuple[np.ndarray, np.ndarray]:
    """Stuff from a coarse grid (nearest-upsampled, shifted), then thing blobs painted in order."""
    gy, gx = stuff_cells.shape
    rows = np.clip((np.arange(h) + shift[0]) * gy // h, 0, gy - 1)
    cols = np.clip((np.arange(w) + shift[1]) * gx // w, 0, gx - 1)
    sem = stuff_cells[rows[:, None], cols[None, :]].copy()
    ins = np.zeros((h, w), dtype=np.int64)
    for cls, iid, cy, cx, ry, rx in blobs:
        m = _ellipse(h, w, cy, cx, ry, rx)
        sem[m], ins[m] = cls, iid
    return sem.astype(np.int64), ins


def random_pair(rng: np.random.Generator, h: int = 40, w: int = 48, void: bool = True):
    """(pred_sem, pred_ins, gt_sem, gt_ins) with overlapping, perturbed segments; pred never abstains."""
    cells = rng.choice(np.array((0, *STUFF) if void else STUFF), size=(3, 4))
    n = int(rng.integers(3, 9))
    blobs = [
        (int(rng.choice(THINGS)), k + 1, rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, 10), rng.uniform(3, 10))
        for k in range(n)
    ]
    gt_sem, gt_ins = _render(h, w, cells, (0, 0), blobs)
    # Prediction: jittered blobs (some IoU > 0.5, some not), dropped / relabelled / extra blobs,
    # permuted instance ids, stuff boundaries shifted and a stuff cell relabelled.
    pcells = np.where(cells == 0, rng.choice(np.array(STUFF)), cells)
    if rng.random() < 0.5:
        pcells[rng.integers(3), rng.integers(4)] = rng.choice(np.array(STUFF))
    ids = rng.permutation(np.arange(1, 3 * n + 1))
    pblobs = []
    for cls, k, cy, cx, ry, rx in blobs:
        if rng.random() < 0.15:
            continue
        if rng.random() < 0.15:
            cls = int(rng.choice(THINGS))
        cy, cx = cy + rng.normal(0, 2), cx + rng.normal(0, 2)
        pblobs.append((cls, int(ids[k]), cy, cx, ry * rng.uniform(0.7, 1.3), rx * rng.uniform(0.7, 1.3)))
    for j in range(int(rng.integers(0, 3))):
        pblobs.append((int(rng.choice(THINGS)), int(ids[n + j]), rng.uniform(0, h), rng.uniform(0, w), 4.0, 5.0))
    pred_sem, pred_ins = _render(h, w, pcells, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), pblobs)
    stuff_px = np.isin(pred_sem, STUFF)
    pred_ins[stuff_px] = rng.integers(0, 50, size=int(stuff_px.sum()))  # stuff ids must not matter
    return pred_sem, pred_ins, gt_sem, gt_ins


def random_stack(seed: int, views: int = 3, void: bool = True):
    rng = np.random.default_rng(seed)
    maps = [random_pair(rng, void=void) for _ in range(views)]
    return tuple(np.stack([m[i] for m in maps]) for i in range(4))


# ---- torchmetrics references ---------------------------------------------------------------------


def tm_panoptic(pred_sem, pred_ins, gt_sem, gt_ins, per_view: bool = True) -> torch.Tensor:
    """torchmetrics PQ/SQ/RQ. Our gt void (ignore_index 0, or a thing with id 0) becomes category 0,
    which is neither thing nor stuff, hence void for torchmetrics too."""
    gt_cat = np.where(np.isin(gt_sem, THINGS) & (gt_ins == 0), 0, gt_sem)
    preds = torch.from_numpy(np.stack([pred_sem, pred_ins], -1))
    target = torch.from_numpy(np.stack([gt_cat, gt_ins], -1))
    if not per_view:  # one "image" made of the whole stack
        preds, target = preds[None], target[None]
    elif preds.dim() == 3:
        preds, target = preds[None], target[None]
    metric = PanopticQuality(
        things=set(THINGS), stuffs=set(STUFF), allow_unknown_preds_category=True, return_sq_and_rq=True
    )
    return metric(preds, target)


# ---- semantic ------------------------------------------------------------------------------------

GT4 = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 3, 3], [0, 0, 3, 3]])
PRED4 = np.array([[1, 1, 1, 2], [1, 1, 2, 2], [3, 3, 3, 3], [0, 2, 3, 3]])


def test_semantic_crafted_by_hand():
    # gt 0 = ignored (rows 2-3, cols 0-1): what pred says there does not count.
    # class 1: inter 4, pred 5 -> 4/5; class 2: inter 3, gt 4 -> 3/4; class 3: 4/4.
    iou = per_class_iou(PRED4, GT4, num_classes=5)
    np.testing.assert_allclose(iou[1:4], [0.8, 0.75, 1.0])
    assert np.isnan(iou[0]) and np.isnan(iou[4])  # ignore_index, absent class 4
    assert semantic_miou(PRED4, GT4, 5) == pytest.approx((0.8 + 0.75 + 1.0) / 3, abs=1e-12)
    assert semantic_miou(PRED4, GT4, 5, present_only=False) == semantic_miou(PRED4, GT4, 5)
    assert semantic_accuracy(PRED4, GT4) == pytest.approx(11 / 12)
    cm = confusion_matrix(PRED4, GT4, 5, ignore_index=0)
    assert cm.sum() == 12 and cm[1, 1] == 4 and cm[2, 1] == 1 and cm[1, 2] == 0 and cm[2, 2] == 3  # rows gt
    assert confusion_matrix(PRED4, GT4, 5).sum() == 16


def test_semantic_pred_background_on_labelled_pixel_is_a_miss():
    gt = np.array([1, 1, 2, 2])
    pred = np.array([1, 0, 2, 2])  # predicting the ignore label on a labelled pixel
    assert semantic_miou(pred, gt, 3) == pytest.approx((0.5 + 1.0) / 2)
    assert semantic_accuracy(pred, gt) == pytest.approx(0.75)


def test_semantic_only_predicted_class_counts_with_zero_iou():
    gt = np.array([1, 1, 1, 1])
    pred = np.array([1, 1, 1, 2])
    assert semantic_miou(pred, gt, 3) == pytest.approx((0.75 + 0.0) / 2)


def test_semantic_all_ignored_is_nan():
    assert np.isnan(semantic_miou(np.array([1, 2]), np.array([0, 0]), 3))
    assert np.isnan(semantic_accuracy(np.array([1, 2]), np.array([0, 0])))


@pytest.mark.parametrize("seed", range(4))
def test_semantic_perfect_random(seed):
    _, _, gt_sem, _ = random_stack(seed)
    assert semantic_miou(gt_sem, gt_sem, NUM_CLASSES) == 1.0
    assert semantic_accuracy(gt_sem, gt_sem) == 1.0
    assert semantic_miou(torch.from_numpy(gt_sem), torch.from_numpy(gt_sem), NUM_CLASSES) == 1.0  # torch input


@pytest.mark.parametrize("seed", range(5))
def test_semantic_matches_torchmetrics(seed):
    pred, _, gt, _ = random_stack(seed)
    rng = np.random.default_rng(100 + seed)
    pred = np.where(rng.random(pred.shape) < 0.05, 0, pred)  # some predicted background, too
    p, g = torch.from_numpy(pred), torch.from_numpy(gt)
    # Same definition: pixels with gt == 0 dropped, class 0 out of the mean, empty-union classes skipped.
    jac = MulticlassJaccardIndex(num_classes=NUM_CLASSES, ignore_index=0, average="macro")(p, g)
    assert semantic_miou(pred, gt, NUM_CLASSES) == pytest.approx(float(jac), abs=1e-6)
    acc = MulticlassAccuracy(num_classes=NUM_CLASSES, ignore_index=0, average="micro")(p, g)
    assert semantic_accuracy(pred, gt) == pytest.approx(float(acc), abs=1e-6)
    # MeanIoU has no ignore_index; it equals ours when pred is set to background where gt is ignored
    # (then those pixels only touch the dropped background channel). It averages per image, so one image.
    p0 = torch.from_numpy(np.where(gt == 0, 0, pred)).reshape(1, -1)
    miou = MeanIoU(num_classes=NUM_CLASSES, include_background=False, input_format="index")(p0, g.reshape(1, -1))
    assert semantic_miou(pred, gt, NUM_CLASSES) == pytest.approx(float(miou), abs=1e-6)


def test_semantic_3d_points_match_torchmetrics():
    rng = np.random.default_rng(7)
    gt = rng.integers(0, NUM_CLASSES, 5000)
    pred = np.where(rng.random(5000) < 0.7, gt, rng.integers(0, NUM_CLASSES, 5000))
    jac = MulticlassJaccardIndex(num_classes=NUM_CLASSES, ignore_index=0, average="macro")(
        torch.from_numpy(pred), torch.from_numpy(gt)
    )
    assert semantic_miou(pred, gt, NUM_CLASSES) == pytest.approx(float(jac), abs=1e-6)


# ---- instances -----------------------------------------------------------------------------------

# gt: 1 found exactly, 2 split in two halves by the prediction (IoU exactly 0.5 each), 3 missed.
# pred 5 lies where gt has no instance (a false positive).
GT_INS = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 0, 0], [3, 3, 0, 0]])
PRED_INS = np.array([[1, 1, 2, 4], [1, 1, 2, 4], [0, 0, 5, 5], [0, 0, 5, 5]])


def test_instance_prf_crafted_by_hand():
    r = instance_prf(PRED_INS, GT_INS)  # threshold 0.5 inclusive: one half of the split matches
    assert (r["tp"], r["fp"], r["fn"], r["num_pred"], r["num_gt"]) == (2, 2, 1, 4, 3)
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(2 / 3)
    assert r["f_score"] == pytest.approx(4 / 7)
    assert [m[1] for m in r["matched"]] == [1, 2] and r["matched"][0] == (1, 1, 1.0)
    assert r["matched"][1][0] in (2, 4) and r["matched"][1][2] == 0.5
    r = instance_prf(PRED_INS, GT_INS, iou_threshold=0.5 + 1e-9)  # just above: the split does not count
    assert (r["tp"], r["fp"], r["fn"]) == (1, 3, 2)


def test_instance_iou_matrix_by_hand():
    pred_ids, gt_ids, iou = instance_iou_matrix(PRED_INS, GT_INS)
    assert pred_ids.tolist() == [1, 2, 4, 5] and gt_ids.tolist() == [1, 2, 3]
    np.testing.assert_allclose(iou, [[1, 0, 0], [0, 0.5, 0], [0, 0.5, 0], [0, 0, 0]])


def test_hungarian_beats_greedy():
    # 1-D "points": X = [0, 10), Y = [10, 16); A = [3, 14) overlaps both, B = [0, 3) the rest of X.
    # IoU(A, X) = 7/14 = 0.5 (largest), IoU(A, Y) = 4/13, IoU(B, X) = 3/10; threshold 0.3.
    # Greedy takes A-X first and leaves B without a partner (1 TP); the best assignment A-Y, B-X has 2.
    gt = np.array([1] * 10 + [2] * 6)
    pred = np.array([20] * 3 + [10] * 11 + [0] * 2)
    r = instance_prf(pred, gt, iou_threshold=0.3)
    assert r["tp"] == 2
    assert [(p, g) for p, g, _ in r["matched"]] == [(10, 2), (20, 1)]
    assert r["matched"][0][2] == pytest.approx(4 / 13) and r["matched"][1][2] == pytest.approx(0.3)


def test_matching_thresholds_before_assignment():
    # IoU(p, g) = 7/13 > 0.5, IoU(p, g') = IoU(p', g) = 0.3: the raw-IoU optimum (p-g', p'-g, sum 0.6)
    # has no pair above 0.5; matching only eligible pairs keeps the true positive p-g.
    iou = np.array([[7 / 13, 0.3], [0.3, 0.0]])
    assert match_segments(iou, 0.5) == [(0, 0)]
    gt = np.array([1] * 10 + [2] * 3)
    pred = np.array([8] * 3 + [9] * 10)
    r = instance_prf(pred, gt)
    assert r["tp"] == 1 and r["matched"] == [(9, 1, pytest.approx(7 / 13))]


def test_instance_empty_cases():
    z = np.zeros((3, 3), dtype=np.int64)
    one = z.copy()
    one[0, 0] = 4
    assert instance_prf(z, z)["f_score"] == 1.0 and instance_prf(z, z)["precision"] == 1.0
    for r in (instance_prf(z, one), instance_prf(one, z)):
        assert (r["precision"], r["recall"], r["f_score"]) == (0.0, 0.0, 0.0)


def test_instance_per_view_sums_views():
    pred = np.stack([PRED_INS, GT_INS])
    gt = np.stack([GT_INS, GT_INS])
    r = instance_prf(pred, gt, per_view=True)
    assert (r["tp"], r["num_pred"], r["num_gt"]) == (2 + 3, 4 + 3, 3 + 3)
    assert r["matched"][0][0] == 0 and r["matched"][-1][0] == 1


@pytest.mark.parametrize("seed", range(3))
def test_instance_perfect_random(seed):
    _, _, _, gt_ins = random_stack(seed)
    r = instance_prf(gt_ins, gt_ins)
    assert (r["precision"], r["recall"], r["f_score"]) == (1.0, 1.0, 1.0)
    relabel = np.where(gt_ins == 0, 0, gt_ins + 1000)  # other ids: still perfect
    assert instance_prf(relabel, gt_ins)["f_score"] == 1.0


# ---- panoptic ------------------------------------------------------------------------------------


def test_panoptic_crafted_by_hand():
    # All segments are thing class 1 (ids as in the instance test); gt id 0 is void, pred id 0 abstains.
    # pred1-gt1 IoU 1 (TP); the halves of gt2 have IoU exactly 0.5: NOT a match (strict > 0.5), so both
    # halves are FP and gt2 is FN; gt3 is FN (missed); pred5 lies entirely on void: not counted.
    gt_sem, pred_sem = (GT_INS > 0).astype(np.int64), (PRED_INS > 0).astype(np.int64)
    r = panoptic_quality(pred_sem, PRED_INS, gt_sem, GT_INS, things=[1], stuff=[4])
    third = pytest.approx(1 / 3)
    assert r["per_class"][1] == {"pq": third, "sq": 1.0, "rq": third, "tp": 1, "fp": 2, "fn": 2}
    assert r["pq"] == pytest.approx(1 / 3) and r["pq_things"] == pytest.approx(1 / 3)
    assert np.isnan(r["pq_stuff"]) and r["num_averaged_stuff"] == 0
    # torchmetrics differs here, and only here: it treats the abstaining pred pixels over gt3 as
    # "void prediction" and drops gt3 as a false negative (FN 1 instead of 2): RQ = 1 / 2.5.
    tm = tm_panoptic(pred_sem, PRED_INS, gt_sem, GT_INS)
    assert float(tm[2]) == pytest.approx(1 / 2.5)


def test_panoptic_void_removed_from_prediction():
    # gt: thing 1 on 4 points, then 4 void points. pred: one segment over all 8.
    # IoU = 4 / (8 - 4 + 4 - 4) = 1 with void removed (it would be 0.5, no match, without).
    gt_sem, gt_ins = np.array([1] * 4 + [0] * 4), np.array([1] * 4 + [0] * 4)
    pred_sem, pred_ins = np.array([1] * 8), np.array([3] * 8)
    r = panoptic_quality(pred_sem, pred_ins, gt_sem, gt_ins, things=[1], stuff=[4])
    assert (r["pq"], r["per_class"][1]["tp"]) == (1.0, 1)
    # An unmatched prediction exactly half on void is still a false positive (only > 0.5 is forgiven).
    gt_sem, gt_ins = np.array([4, 4, 0, 0, 4, 4, 4, 4]), np.zeros(8, dtype=np.int64)
    pred_sem, pred_ins = np.array([1, 1, 1, 1, 4, 4, 4, 4]), np.array([2, 2, 2, 2, 0, 0, 0, 0])
    r = panoptic_quality(pred_sem, pred_ins, gt_sem, gt_ins, things=[1], stuff=[4])
    assert r["per_class"][1] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "tp": 0, "fp": 1, "fn": 0}
    assert r["per_class"][4]["tp"] == 1 and r["per_class"][4]["sq"] == pytest.approx(4 / 6)
    # Move one thing pixel to stuff: 2 of its 3 pixels lie on void, so it is not counted at all.
    r = panoptic_quality(np.array([4, 1, 1, 1, 4, 4, 4, 4]), pred_ins, gt_sem, gt_ins, things=[1], stuff=[4])
    assert 1 not in r["per_class"]


def test_panoptic_stuff_merges_instance_ids():
    # Stuff 4 labelled with ids 1 and 2 in gt and 7/9 in pred: one segment per image on both sides.
    gt_sem = np.array([[4, 4, 4, 4], [4, 4, 4, 4]])
    gt_ins = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    pred_ins = np.array([[7, 9, 9, 9], [7, 9, 9, 9]])
    r = panoptic_quality(gt_sem, pred_ins, gt_sem, gt_ins, things=[1], stuff=[4])
    assert r["per_class"][4] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "tp": 1, "fp": 0, "fn": 0}
    # The same ids on a thing class: gt1-pred7 IoU 2/4 (no match), gt2-pred9 IoU 4/6 (TP).
    gt_t = np.ones_like(gt_sem)
    r = panoptic_quality(gt_t, pred_ins, gt_t, gt_ins, things=[1], stuff=[4])
    assert (r["per_class"][1]["tp"], r["per_class"][1]["fp"], r["per_class"][1]["fn"]) == (1, 1, 1)


def test_panoptic_gt_thing_without_instance_is_void():
    gt_sem, gt_ins = np.array([1, 1, 1, 1]), np.array([5, 5, 0, 0])
    pred_sem, pred_ins = np.array([1, 1, 1, 1]), np.array([2, 2, 2, 2])
    r = panoptic_quality(pred_sem, pred_ins, gt_sem, gt_ins, things=[1], stuff=[4])
    assert r["pq"] == 1.0  # IoU 2 / (4 - 2 + 2 - 2)


def test_panoptic_per_view_counts_each_view():
    gt_sem = np.full((2, 3, 3), 4)
    pred_sem = gt_sem.copy()
    pred_sem[1] = 5  # second view: all wrong
    z = np.zeros_like(gt_sem)
    r = panoptic_quality(pred_sem, z, gt_sem, z, things=[1], stuff=[4, 5])
    two_thirds = pytest.approx(2 / 3)
    assert r["per_class"][4] == {"pq": two_thirds, "sq": 1.0, "rq": two_thirds, "tp": 1, "fp": 0, "fn": 1}
    r = panoptic_quality(pred_sem, z, gt_sem, z, things=[1], stuff=[4, 5], per_view=False)
    # One image: stuff 4 is one segment over both views, IoU 9/18 = 0.5 -> no match.
    assert (r["per_class"][4]["tp"], r["per_class"][4]["fn"]) == (0, 1)


@pytest.mark.parametrize("seed", range(4))
def test_panoptic_perfect_random(seed):
    _, _, gt_sem, gt_ins = random_stack(seed)
    r = panoptic_quality(gt_sem, gt_ins, gt_sem, gt_ins, THINGS, STUFF)
    assert (r["pq"], r["sq"], r["rq"]) == (1.0, 1.0, 1.0)
    r3 = evaluate_panoptic_3d(gt_sem.ravel(), gt_ins.ravel(), gt_sem.ravel(), gt_ins.ravel(), THINGS, STUFF)
    assert all(r3[k] == 1.0 for k in ("miou", "accuracy", "precision", "recall", "f_score", "pq", "sq", "rq"))


@pytest.mark.parametrize("seed", range(8))
def test_panoptic_matches_torchmetrics(seed):
    ps, pi, gs, gi = random_stack(seed, void=seed % 2 == 0)
    ours = panoptic_quality(ps, pi, gs, gi, THINGS, STUFF)
    pq, sq, rq = (float(v) for v in tm_panoptic(ps, pi, gs, gi))
    assert ours["pq"] == pytest.approx(pq, abs=1e-6)
    assert ours["sq"] == pytest.approx(sq, abs=1e-6)
    assert ours["rq"] == pytest.approx(rq, abs=1e-6)
    tps = [c["tp"] for c in ours["per_class"].values()]
    fps = [c["fp"] for c in ours["per_class"].values()]
    assert sum(tps) > 0 and sum(fps) > 0 and 0.0 < ours["pq"] < 1.0  # a non-trivial case
    flat = panoptic_quality(ps, pi, gs, gi, THINGS, STUFF, per_view=False)
    assert flat["pq"] == pytest.approx(float(tm_panoptic(ps, pi, gs, gi, per_view=False)[0]), abs=1e-6)


def test_panoptic_torchmetrics_per_class_order():
    ps, pi, gs, gi = random_stack(11)
    ours = panoptic_quality(ps, pi, gs, gi, THINGS, STUFF)
    preds = torch.from_numpy(np.stack([ps, pi], -1))
    target = torch.from_numpy(np.stack([gs, gi], -1))
    metric = PanopticQuality(things=set(THINGS), stuffs=set(STUFF), return_per_class=True, return_sq_and_rq=True)
    tm = metric(preds, target)
    for k, c in enumerate(sorted(THINGS) + sorted(STUFF)):  # torchmetrics orders things, then stuff
        if c in ours["per_class"]:
            assert ours["per_class"][c]["pq"] == pytest.approx(float(tm[k, 0]), abs=1e-6)
    things_mean = np.mean([ours["per_class"][c]["pq"] for c in THINGS if c in ours["per_class"]])
    assert ours["pq_things"] == pytest.approx(things_mean)


# ---- protocol and one-call evaluation ------------------------------------------------------------


def test_reference_protocol_shape_and_values():
    rng = np.random.default_rng(0)
    m = rng.integers(0, 1000, (512, 512))
    out = reference_protocol(m)
    assert out.shape == (206, 206)
    idx = 2 * (np.arange(206) + 25)  # 512 -> 256 nearest keeps every other pixel
    np.testing.assert_array_equal(out, m[idx[:, None], idx[None, :]])
    stack = reference_protocol(torch.from_numpy(np.stack([m, m + 1])))
    assert stack.shape == (2, 206, 206)
    np.testing.assert_array_equal(stack[1], out + 1)
    assert set(np.unique(reference_protocol(m % 7)).tolist()) <= set(range(7))


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("hw", [(512, 512), (480, 640), (100, 37), (97, 300)])
def test_resize_nearest_matches_torch(mode, hw):
    m = torch.randint(0, 100, (2, *hw))
    ref = torch.nn.functional.interpolate(m[:, None].float(), size=(256, 256), mode=mode)[:, 0].long()
    np.testing.assert_array_equal(resize_nearest(m, 256, mode=mode), ref.numpy())


def test_evaluate_panoptic_2d_keys_and_protocol():
    ps, pi, gs, gi = random_stack(3)
    r = evaluate_panoptic_2d(ps, pi, gs, gi, THINGS, STUFF)  # 40x48 -> 256 -> 206
    for k in ("miou", "accuracy", "precision", "recall", "f_score", "pq", "sq", "rq", "pq_things", "pq_stuff"):
        assert 0.0 <= r[k] <= 1.0, k
    crop = [reference_protocol(a) for a in (ps, pi, gs, gi)]
    assert r["miou"] == semantic_miou(crop[0], crop[2], NUM_CLASSES)
    assert r["pq"] == panoptic_quality(*crop, THINGS, STUFF)["pq"]
    raw = evaluate_panoptic_2d(ps, pi, gs, gi, THINGS, STUFF, protocol=False)
    assert raw["miou"] == semantic_miou(ps, gs, NUM_CLASSES)
    perfect = evaluate_panoptic_2d(gs, gi, gs, gi, THINGS, STUFF)
    assert all(perfect[k] == 1.0 for k in ("miou", "accuracy", "precision", "recall", "f_score", "pq", "sq", "rq"))


# ---- bad input -----------------------------------------------------------------------------------


def test_bad_input():
    a = np.ones((4, 4), dtype=np.int64)
    with pytest.raises(ValueError, match=r"pred \(4, 4\), gt \(4, 5\)"):
        semantic_miou(a, np.ones((4, 5), dtype=np.int64), 3)
    with pytest.raises(ValueError, match="pred must hold integer labels, got dtype float32"):
        semantic_miou(a.astype(np.float32), a, 3)
    with pytest.raises(ValueError, match="gt must hold non-negative labels, got minimum -1"):
        semantic_miou(a, -a, 3)
    with pytest.raises(ValueError, match=r"gt holds labels >= num_classes=3: \[5\]"):
        semantic_miou(a, 5 * a, 3)
    with pytest.raises(ValueError, match="ignore_index"):
        semantic_miou(a, a, 3, ignore_index=3)
    with pytest.raises(ValueError, match="pred_ins .* gt_ins"):
        instance_prf(a, a[:2])
    with pytest.raises(ValueError, match="pred_sem holds labels \\[9\\]"):
        panoptic_quality(9 * a, a, a, a, things=[1], stuff=[4])
    with pytest.raises(ValueError, match="share classes"):
        panoptic_quality(a, a, a, a, things=[1], stuff=[1])
    with pytest.raises(ValueError, match="ignore_index=0 must not be"):
        panoptic_quality(a, a, a, a, things=[0], stuff=[1])
    with pytest.raises(ValueError, match=r"gt_ins \(3,\)"):
        four = np.ones(4, dtype=int)
        evaluate_panoptic_3d(four, four, four, np.ones(3, dtype=int), [1], [4])
    with pytest.raises(ValueError, match="1-D per-point labels"):
        evaluate_panoptic_3d(a, a, a, a, [1], [4])
    with pytest.raises(ValueError, match="border"):
        reference_protocol(a, size=50, border=25)
