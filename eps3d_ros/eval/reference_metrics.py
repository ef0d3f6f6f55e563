"""The metrics of the EPS3D release's ScanNet evaluation, computed as its scripts compute them.

What the released ``scripts/test_eps3d_panoptic.py`` and ``scripts/evaluate_pq.py`` do (read for these facts;
no code taken), and this module reproduces:

* **semantic mIoU** (:class:`SemanticAccumulator`): torchmetrics ``MeanIoU(include_background=False,
  per_class=True)`` fed one view at a time (206x206 after the protocol's resize and crop): for each class, the
  IoU of each view where the class occurs in the prediction or the ground truth, averaged over those views;
  a class that never occurs scores 0 (torchmetrics' -1, clamped); mIoU is the mean over the classes.
  **Accuracy**: torchmetrics ``Accuracy(ignore_index=0)``, micro: correct / labelled pixels over all views;
* **instance P/R/F** (:func:`instance_scene_scores`), per scene: every ground-truth instance id > 0 (stuff
  included) against every predicted cluster, IoU per view where the ground truth occurs (predictions only
  count on labelled pixels), averaged over those views; Hungarian matching maximising IoU; hits at
  IoU > 0.5; P = hits / predicted clusters, R = hits / ground-truth instances, F = 2PR / (P + R + 1e-6);
  scenes without a ground-truth instance or a prediction are not counted; means over scenes;
* **PQ / SQ / RQ** (:func:`reference_panoptic_quality`), per scene: all labelled pixels of its views pooled
  into one image (so an instance id spans views); classes present in neither prediction nor truth, and
  classes covering under ``robust`` (0.5 %) of the pooled pixels in either, are dropped (their pixels become
  void); segments are ``(class, instance id)`` with stuff ids set to 0; a prediction and a truth segment of
  one class match at IoU > 0.5, where the IoU leaves out prediction pixels on void truth and truth pixels on
  void prediction (torchmetrics' rule); unmatched truth segments mostly covered by void prediction and
  unmatched predictions mostly on void truth are not counted; PQ / SQ / RQ are the means over the remaining
  classes (0 for a class without a match). The evaluation reports the mean over scenes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SemanticAccumulator", "instance_scene_scores", "reference_panoptic_quality"]


class SemanticAccumulator:
    """Per-view, per-class IoU averaged over the views where the class occurs (see the module docstring)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)  # foreground classes 1..K (0 = unlabelled, ignored)
        self.score = np.zeros(self.num_classes + 1)
        self.count = np.zeros(self.num_classes + 1, np.int64)
        self.correct = 0
        self.labelled = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """One view: ``pred`` and ``gt`` ``[H, W]`` class ids (0 = unlabelled / abstained)."""
        pred, gt = np.asarray(pred).ravel(), np.asarray(gt).ravel()
        k = self.num_classes + 1
        cm = np.bincount(gt * k + pred, minlength=k * k).reshape(k, k)
        inter = np.diag(cm).astype(np.float64)
        union = cm.sum(0) + cm.sum(1) - np.diag(cm)
        present = union > 0
        self.score[present] += inter[present] / union[present]
        self.count[present] += 1
        lab = gt != 0
        self.labelled += int(lab.sum())
        self.correct += int((pred[lab] == gt[lab]).sum())

    def per_class(self) -> np.ndarray:
        """IoU of classes 1..K (0 for a class that never occurred)."""
        c = self.count[1:]
        return np.where(c > 0, self.score[1:] / np.maximum(c, 1), 0.0)

    @property
    def miou(self) -> float:
        return float(self.per_class().mean()) if self.num_classes else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.labelled if self.labelled else float("nan")


def instance_scene_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float] | None:
    """The release's instance scores of one scene: ``pred`` cluster ids and ``gt`` instance ids ``[V, H, W]``
    (gt 0 = none). ``None`` when the scene has no ground-truth instance or no prediction."""
    pred, gt = np.asarray(pred, np.int64), np.asarray(gt, np.int64)
    gt_ids = np.unique(gt[gt > 0])
    pred_ids = np.unique(pred)
    if not len(gt_ids) or not len(pred_ids):
        return None
    g_index = np.searchsorted(gt_ids, gt)
    p_index = np.searchsorted(pred_ids, pred)
    G, P, V = len(gt_ids), len(pred_ids), gt.shape[0]
    iou_sum = np.zeros((G, P))
    views = np.zeros(G)
    for v in range(V):
        lab = gt[v] > 0
        gi, pi = g_index[v][lab], p_index[v][lab]
        inter = np.bincount(gi * P + pi, minlength=G * P).reshape(G, P).astype(np.float64)
        g_area = np.bincount(gi, minlength=G).astype(np.float64)
        p_area = np.bincount(pi, minlength=P).astype(np.float64)  # predictions count on labelled pixels only
        seen = g_area > 0
        union = g_area[:, None] + p_area[None, :] - inter
        iou_sum[seen] += inter[seen] / np.maximum(union[seen], 1)
        views += seen
    iou = np.zeros((G, max(G, P)))
    iou[:, :P] = iou_sum / np.maximum(views, 1)[:, None]
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(iou, maximize=True)
    paired = iou[rows, cols]
    hits = int((paired > 0.5).sum())
    precision, recall = hits / P, hits / G
    f = 2 * precision * recall / (precision + recall + 1e-6)
    return {"mean_iou": float(paired.mean()), "precision": precision, "recall": recall, "f_score": f,
            "num_gt": G, "num_pred": P, "hits": hits}


def reference_panoptic_quality(pred_sem: np.ndarray, pred_ins: np.ndarray, gt_sem: np.ndarray, gt_ins: np.ndarray,
                               things: set[int], stuff: set[int], robust: float = 0.005) -> dict[str, Any]:
    """PQ / SQ / RQ of one pooled image (1-D arrays of its pixels; see the module docstring)."""
    ps, pi = np.asarray(pred_sem, np.int64).ravel(), np.asarray(pred_ins, np.int64).ravel()
    gs, gi = np.asarray(gt_sem, np.int64).ravel(), np.asarray(gt_ins, np.int64).ravel()
    present = set(np.unique(ps).tolist()) | set(np.unique(gs).tolist())
    weak = set()
    for a in (ps, gs):
        ids, counts = np.unique(a, return_counts=True)
        weak |= set(ids[counts / max(len(a), 1) < robust].tolist())
    things = {c for c in things if c in present and c not in weak}
    stuff = {c for c in stuff if c in present and c not in weak}
    cats = sorted(things) + sorted(stuff)
    if not cats:
        return {"pq": 0.0, "sq": 0.0, "rq": 0.0, "classes": []}
    void = max(cats) + 1

    def segments(sem: np.ndarray, ins: np.ndarray) -> np.ndarray:
        known = np.isin(sem, cats)
        seg_ins = np.where(np.isin(sem, list(stuff)), 0, ins)
        cls = np.where(known, sem, void)
        seg_ins = np.where(known, seg_ins, 0)
        return np.stack([cls, seg_ins], 1)

    p, g = segments(ps, pi), segments(gs, gi)
    pu, p_id, p_area = np.unique(p, axis=0, return_inverse=True, return_counts=True)
    gu, g_id, g_area = np.unique(g, axis=0, return_inverse=True, return_counts=True)
    p_id, g_id = p_id.ravel(), g_id.ravel()
    pair, inter = np.unique(np.stack([p_id, g_id], 1), axis=0, return_counts=True)
    inter_of = {(int(a), int(b)): int(n) for (a, b), n in zip(pair, inter)}
    p_void = np.where(pu[:, 0] == void)[0]
    g_void = np.where(gu[:, 0] == void)[0]
    pv = int(p_void[0]) if len(p_void) else -1
    gv = int(g_void[0]) if len(g_void) else -1
    k = {c: i for i, c in enumerate(cats)}
    iou_sum, tp, fp, fn = np.zeros(len(cats)), np.zeros(len(cats)), np.zeros(len(cats)), np.zeros(len(cats))
    p_matched, g_matched = set(), set()
    for (a, b), n in inter_of.items():
        if b == gv or pu[a, 0] != gu[b, 0]:
            continue
        union = p_area[a] - inter_of.get((a, gv), 0) + g_area[b] - inter_of.get((pv, b), 0) - n
        iou = n / union
        if iou > 0.5:
            p_matched.add(a)
            g_matched.add(b)
            iou_sum[k[int(pu[a, 0])]] += iou
            tp[k[int(pu[a, 0])]] += 1
    for b in range(len(gu)):
        if b == gv or b in g_matched or inter_of.get((pv, b), 0) / g_area[b] > 0.5:
            continue
        fn[k[int(gu[b, 0])]] += 1
    for a in range(len(pu)):
        if a == pv or a in p_matched or inter_of.get((a, gv), 0) / p_area[a] > 0.5:
            continue
        fp[k[int(pu[a, 0])]] += 1
    den = tp + 0.5 * fp + 0.5 * fn
    pq = np.where(den > 0, iou_sum / np.maximum(den, 1e-12), 0.0)
    sq = np.where(tp > 0, iou_sum / np.maximum(tp, 1), 0.0)
    rq = np.where(den > 0, tp / np.maximum(den, 1e-12), 0.0)
    nt = len(things)
    out = {"pq": float(pq.mean()), "sq": float(sq.mean()), "rq": float(rq.mean()), "classes": cats}
    out["pq_things"] = float(pq[:nt].mean()) if nt else float("nan")
    out["pq_stuff"] = float(pq[nt:].mean()) if len(cats) > nt else float("nan")
    return out
