"""Class-agnostic instance segmentation metrics: IoU matrix, one-to-one matching, precision/recall/F.

A segment is the set of pixels (or points) carrying one instance id; id ``ignore`` (default 0) is
"no instance" and forms no segment. Ids are global over the whole input, so for a stack of views
``[S, H, W]`` with multi-view-consistent ids (EPS3D's 3D instances) a segment spans views; pass
``per_view=True`` to evaluate each view on its own and sum the counts (as COCO does per image).

Choices (documented once here):
    * IoU is the plain mask IoU ``|p & g| / |p | g|``; pixels with gt id ``ignore`` still count in
      the predicted segment's area (a prediction there is wrong, not void).
    * Matching is one-to-one, by ``scipy.optimize.linear_sum_assignment`` over the *eligible* pairs
      (IoU >= ``iou_threshold``, inclusive). Its objective maximises first the number of matches
      and then their summed IoU, so it is the globally best assignment: unlike a greedy
      highest-IoU-first pass it never gives up two matches for one better one. (Running the
      Hungarian on raw IoU and thresholding afterwards is also wrong: it can trade a pair above the
      threshold for two pairs below it.) For ``iou_threshold > 0.5`` every segment has at most one
      eligible partner, so any matching rule agrees; at exactly 0.5 two partners are possible
      (a 2-pixel prediction over two 1-pixel gts) and the assignment picks one.
    * ``precision = TP / #pred``, ``recall = TP / #gt``, ``F = 2PR / (P + R)`` (0 if ``P + R = 0``).
      Empty cases: with no gt and no prediction all three are 1.0 (nothing to find, nothing wrongly
      found); with only one side empty the undefined ratio is 0.0, so P = R = F = 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from eps3d_ros.eval.semantic import label_arrays

__all__ = ["instance_iou_matrix", "match_segments", "instance_prf", "prf_from_counts"]


def _dense(ids: np.ndarray, ignore: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Segment ids (sorted, without ``ignore``) and each pixel's 1-based index into them (0 = none)."""
    uniq, inv = np.unique(ids.ravel(), return_inverse=True)
    if ignore is not None and uniq.size and np.any(uniq == ignore):
        k = int(np.searchsorted(uniq, ignore))
        idx = inv + 1
        idx[inv == k] = 0
        idx[inv > k] -= 1
        return np.delete(uniq, k), idx
    return uniq, inv + 1


def _intersections(pred_idx: np.ndarray, gt_idx: np.ndarray, n_pred: int, n_gt: int) -> np.ndarray:
    """Pixel counts ``[n_pred + 1, n_gt + 1]`` of every (pred, gt) index pair; row/column 0 = none."""
    # One bincount over the pair code pred * (G + 1) + gt: vectorised over pixels.
    return np.bincount(pred_idx * (n_gt + 1) + gt_idx, minlength=(n_pred + 1) * (n_gt + 1)).reshape(
        n_pred + 1, n_gt + 1
    )


def _iou_counts(pred: np.ndarray, gt: np.ndarray, ignore: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred_ids, pi = _dense(pred, ignore)
    gt_ids, gi = _dense(gt, ignore)
    inter_full = _intersections(pi, gi, pred_ids.size, gt_ids.size)
    area_p = inter_full[1:].sum(1)  # full segment areas (include pixels over gt id `ignore`)
    area_g = inter_full[:, 1:].sum(0)
    inter = inter_full[1:, 1:].astype(np.float64)
    union = area_p[:, None] + area_g[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return pred_ids, gt_ids, iou


def instance_iou_matrix(
    pred_ins: Any, gt_ins: Any, ignore: int | None = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pred_ids [P], gt_ids [G], iou [P, G])`` for two instance-id arrays of one (any) shape."""
    p, g = label_arrays(pred_ins=pred_ins, gt_ins=gt_ins).values()
    return _iou_counts(p, g, ignore)


def match_segments(iou: np.ndarray, iou_threshold: float = 0.5) -> list[tuple[int, int]]:
    """Best one-to-one matching of rows to columns of ``iou [P, G]``; pairs ``(row, col)`` sorted by row.

    Only pairs with ``iou >= iou_threshold`` may match. Maximises the number of matches, then their
    summed IoU (weight ``K + iou`` with ``K`` above any achievable IoU sum makes the count dominate).
    """
    eligible = iou >= iou_threshold
    rows = np.flatnonzero(eligible.any(1))
    cols = np.flatnonzero(eligible.any(0))
    if rows.size == 0:
        return []
    sub_ok = eligible[np.ix_(rows, cols)]
    big = float(min(rows.size, cols.size) + 1)
    weight = np.where(sub_ok, big + iou[np.ix_(rows, cols)], 0.0)
    r, c = linear_sum_assignment(weight, maximize=True)
    keep = sub_ok[r, c]  # the solver also pairs up leftovers at weight 0: drop them
    return sorted(zip(rows[r[keep]].tolist(), cols[c[keep]].tolist()))


def prf_from_counts(tp: int, n_pred: int, n_gt: int) -> tuple[float, float, float]:
    """``(precision, recall, f_score)`` from counts, with the empty-case rules of this module."""
    if n_pred == 0 and n_gt == 0:
        return 1.0, 1.0, 1.0
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gt if n_gt else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return float(precision), float(recall), float(f)


def instance_prf(
    pred_ins: Any,
    gt_ins: Any,
    iou_threshold: float = 0.5,
    ignore: int | None = 0,
    per_view: bool = False,
) -> dict[str, Any]:
    """Instance precision / recall / F-score at an IoU threshold (TP iff matched with IoU >= threshold).

    ``pred_ins``, ``gt_ins``: integer instance ids of one shape (``[H, W]``, ``[S, H, W]``, ``[N]``);
    ``ignore`` is the "no instance" id. With ``per_view=True`` the leading axis indexes views, each
    view is matched on its own and TP/#pred/#gt are summed over views.

    Returns ``dict(precision, recall, f_score, tp, fp, fn, num_pred, num_gt, matched)`` where
    ``matched`` lists ``(pred_id, gt_id, iou)`` (``per_view=True``: ``(view, pred_id, gt_id, iou)``).
    """
    p, g = label_arrays(pred_ins=pred_ins, gt_ins=gt_ins).values()
    if per_view and p.ndim < 2:
        raise ValueError(f"per_view=True needs a leading view axis, got pred_ins of shape {p.shape}")
    views = [(v, p[v], g[v]) for v in range(p.shape[0])] if per_view else [(None, p, g)]
    tp = n_pred = n_gt = 0
    matched: list[tuple] = []
    for v, pv, gv in views:
        pred_ids, gt_ids, iou = _iou_counts(pv, gv, ignore)
        pairs = match_segments(iou, iou_threshold)
        tp += len(pairs)
        n_pred += pred_ids.size
        n_gt += gt_ids.size
        for i, j in pairs:
            m = (int(pred_ids[i]), int(gt_ids[j]), float(iou[i, j]))
            matched.append(m if v is None else (v, *m))
    precision, recall, f = prf_from_counts(tp, n_pred, n_gt)
    return {
        "precision": precision,
        "recall": recall,
        "f_score": f,
        "tp": tp,
        "fp": n_pred - tp,
        "fn": n_gt - tp,
        "num_pred": n_pred,
        "num_gt": n_gt,
        "matched": matched,
    }
