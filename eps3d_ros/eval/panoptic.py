"""Panoptic Quality (Kirillov et al., "Panoptic Segmentation", CVPR 2019), as COCO's panopticapi computes it.

Inputs: four integer arrays of one shape -- ``pred_sem``, ``pred_ins``, ``gt_sem``, ``gt_ins`` -- for a
label map ``[H, W]``, a stack of views ``[S, H, W]`` (or ``[..., H, W]``) or 1-D point labels ``[N]``.
numpy arrays or torch tensors, converted once at the entry.

Segments
    * thing class ``c``: one segment per ``(c, instance id)``; instance id 0 means "no instance": in
      the gt those pixels are void (like ``ignore_index``), in the prediction they belong to no segment.
    * stuff class ``c``: ONE segment per image, whatever the instance ids say (they are ignored).
    * ``gt_sem == ignore_index``: void. ``pred_sem == ignore_index``: the prediction abstains (no segment).
    * Every semantic label must be in ``things``, ``stuff`` or be ``ignore_index`` (else ``ValueError``).

Matching and counting (per image; exactly panopticapi's rules, no crowd regions)
    * Void pixels are removed from predicted segments before the IoU:
      ``IoU = |p & g| / (|p| - |p & void| + |g| - |p & g|)``. Pixels where the prediction abstains stay
      in ``|g|`` (they are missed gt pixels).
    * A pred and a gt segment of the same class match iff IoU > 0.5 (strict), which makes matches
      unique without any assignment step (two disjoint segments cannot both overlap one by > half).
    * Unmatched gt segment: FN. Unmatched pred segment: FP, unless more than half of it lies on void
      (``|p & void| / |p| > 0.5``): then it is not counted at all.
    * Per class: ``SQ = sum IoU(TP) / TP`` (0 if no TP), ``RQ = TP / (TP + FP/2 + FN/2)``, ``PQ = SQ * RQ``.
    * Averages (``pq``, ``sq``, ``rq`` and the ``_things`` / ``_stuff`` ones) are unweighted means over
      the classes that appear, i.e. have ``TP + FP + FN > 0`` (in gt, or in pred with a counted FP);
      ``nan`` when no class appears. So averaged PQ is generally not ``SQ * RQ``.
    * Stacks of views: with ``per_view=True`` (default) every view ``[H, W]`` is an image; TP/FP/FN and the
      IoU sums are accumulated over images before the per-class ratios (as COCO does over its images).
      ``per_view=False`` treats the whole array as one image, so a thing segment may span views
      (multi-view-consistent 3D instance ids) and a stuff class is one segment over all views.

Difference from torchmetrics' ``PanopticQuality`` (same numbers otherwise): where the prediction
abstains (``ignore_index`` / thing id 0) torchmetrics makes a "void" prediction and also removes those
pixels from the gt segment's area, and drops an unmatched gt segment that is mostly predicted void;
panopticapi (and this module) count those pixels as missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from eps3d_ros.eval.semantic import label_arrays

__all__ = ["panoptic_quality", "panoptic_counts", "summarize_panoptic"]

_METRICS = ("pq", "sq", "rq")


def _classes(things: Iterable[int], stuff: Iterable[int], ignore_index: int) -> tuple[set[int], set[int]]:
    t, s = {int(c) for c in things}, {int(c) for c in stuff}
    if t & s:
        raise ValueError(f"things and stuff share classes {sorted(t & s)}")
    if ignore_index in t | s:
        raise ValueError(f"ignore_index={ignore_index} must not be a thing or stuff class")
    if not t | s:
        raise ValueError("things and stuff are both empty")
    if min(t | s) < 0:
        raise ValueError(f"class ids must be non-negative, got things {sorted(t)}, stuff {sorted(s)}")
    return t, s


def _segment_codes(sem: np.ndarray, ins: np.ndarray, is_thing: np.ndarray, void: np.ndarray, span: int) -> np.ndarray:
    """One int64 code per pixel: ``class * span + id`` (stuff id forced to 0), ``-1`` on ``void``."""
    return np.where(void, -1, sem * span + np.where(is_thing, ins, 0))


def _image_counts(
    ps: np.ndarray, pi: np.ndarray, gs: np.ndarray, gi: np.ndarray, things: np.ndarray, ignore_index: int, out: dict
) -> None:
    """Add one image's per-class TP/FP/FN/IoU-sum to ``out`` (flat arrays of one image)."""
    span = int(max(pi.max(initial=0), gi.max(initial=0))) + 1
    is_thing_p, is_thing_g = np.isin(ps, things), np.isin(gs, things)
    gt_void = (gs == ignore_index) | (is_thing_g & (gi == 0))
    pred_none = (ps == ignore_index) | (is_thing_p & (pi == 0))
    pred_code = _segment_codes(ps, pi, is_thing_p, pred_none, span)
    gt_code = _segment_codes(gs, gi, is_thing_g, gt_void, span)

    # Dense segment indices, 0 = void / no segment, then one bincount over pair codes.
    p_keys, p_idx = np.unique(pred_code, return_inverse=True)
    g_keys, g_idx = np.unique(gt_code, return_inverse=True)
    p_idx, g_idx = p_idx.ravel(), g_idx.ravel()
    if p_keys.size == 0 or p_keys[0] != -1:  # make index 0 the "none" slot even when absent
        p_keys, p_idx = np.concatenate([[-1], p_keys]), p_idx + 1
    if g_keys.size == 0 or g_keys[0] != -1:
        g_keys, g_idx = np.concatenate([[-1], g_keys]), g_idx + 1
    n_p, n_g = p_keys.size, g_keys.size
    inter = np.bincount(p_idx * n_g + g_idx, minlength=n_p * n_g).reshape(n_p, n_g)[1:]  # [P, G+1]
    on_void = inter[:, 0]  # |p & void|
    area_p = inter.sum(1)  # |p|
    inter = inter[:, 1:]  # [P, G]
    area_g = np.bincount(g_idx, minlength=n_g)[1:]  # |g|, including pixels where pred abstains
    p_cls, g_cls = p_keys[1:] // span, g_keys[1:] // span

    same = p_cls[:, None] == g_cls[None, :]
    union = (area_p - on_void)[:, None] + area_g[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros(inter.shape), where=(union > 0) & same)
    match = same & (iou > 0.5)  # at most one True per row and per column
    pm, gm = np.nonzero(match)

    cls_tp = g_cls[gm]
    fn_cls = g_cls[~match.any(0)]
    fp_mask = ~match.any(1) & (on_void / np.maximum(area_p, 1) <= 0.5)
    fp_cls = p_cls[fp_mask]
    for c, v in zip(cls_tp.tolist(), iou[pm, gm].tolist()):
        out.setdefault(c, [0, 0, 0, 0.0])
        out[c][0] += 1
        out[c][3] += v
    for c in fp_cls.tolist():
        out.setdefault(c, [0, 0, 0, 0.0])[1] += 1
    for c in fn_cls.tolist():
        out.setdefault(c, [0, 0, 0, 0.0])[2] += 1


def panoptic_counts(
    pred_sem: Any,
    pred_ins: Any,
    gt_sem: Any,
    gt_ins: Any,
    things: Iterable[int],
    stuff: Iterable[int],
    ignore_index: int = 0,
    per_view: bool = True,
) -> dict[int, tuple[int, int, int, float]]:
    """Per-class ``(TP, FP, FN, sum of TP IoUs)`` accumulated over images; only classes with a count.

    Use this to accumulate over several scenes (add the tuples) before ``summarize_panoptic``.
    """
    t, s = _classes(things, stuff, ignore_index)
    arrays = label_arrays(pred_sem=pred_sem, pred_ins=pred_ins, gt_sem=gt_sem, gt_ins=gt_ins)
    known = np.array(sorted(t | s | {ignore_index}))
    for name in ("pred_sem", "gt_sem"):
        bad = np.setdiff1d(np.unique(arrays[name]), known)
        if bad.size:
            raise ValueError(
                f"{name} holds labels {bad[:10].tolist()} that are neither things {sorted(t)}, "
                f"stuff {sorted(s)} nor ignore_index={ignore_index}"
            )
    ps, pi, gs, gi = arrays.values()
    shape = ps.shape
    if per_view and len(shape) >= 3:  # [..., H, W]: every trailing [H, W] is one image
        n_img = int(np.prod(shape[:-2]))
        ps, pi, gs, gi = (a.reshape(n_img, -1) for a in (ps, pi, gs, gi))
    else:
        ps, pi, gs, gi = (a.reshape(1, -1) for a in (ps, pi, gs, gi))
    thing_arr = np.array(sorted(t), dtype=np.int64)
    out: dict[int, list] = {}
    for k in range(ps.shape[0]):
        _image_counts(ps[k], pi[k], gs[k], gi[k], thing_arr, ignore_index, out)
    return {c: tuple(v) for c, v in sorted(out.items())}


def summarize_panoptic(
    counts: dict[int, tuple[int, int, int, float]], things: Iterable[int], stuff: Iterable[int]
) -> dict[str, Any]:
    """PQ/SQ/RQ overall, over things and over stuff, and ``per_class``, from ``panoptic_counts``."""
    t, s = {int(c) for c in things}, {int(c) for c in stuff}
    per_class: dict[int, dict[str, float | int]] = {}
    for c, (tp, fp, fn, iou_sum) in counts.items():
        if tp + fp + fn == 0:
            continue
        sq = iou_sum / tp if tp else 0.0
        rq = tp / (tp + 0.5 * fp + 0.5 * fn)
        per_class[c] = {"pq": sq * rq, "sq": sq, "rq": rq, "tp": tp, "fp": fp, "fn": fn}
    out: dict[str, Any] = {}
    for suffix, group in (("", t | s), ("_things", t), ("_stuff", s)):
        members = [per_class[c] for c in per_class if c in group]
        for m in _METRICS:
            out[m + suffix] = float(np.mean([r[m] for r in members])) if members else float("nan")
        out["num_averaged" + suffix] = len(members)
    out["per_class"] = per_class
    return out


def panoptic_quality(
    pred_sem: Any,
    pred_ins: Any,
    gt_sem: Any,
    gt_ins: Any,
    things: Iterable[int],
    stuff: Iterable[int],
    ignore_index: int = 0,
    per_view: bool = True,
) -> dict[str, Any]:
    """Panoptic, segmentation and recognition quality (see the module docstring for every rule).

    Returns ``pq, sq, rq``, ``pq_things, sq_things, rq_things``, ``pq_stuff, sq_stuff, rq_stuff``,
    ``num_averaged[_things|_stuff]`` (how many classes were averaged) and ``per_class``:
    ``{class: {pq, sq, rq, tp, fp, fn}}`` for the classes that appear. ``per_view`` only matters for
    inputs with 3+ dimensions.
    """
    things, stuff = list(things), list(stuff)  # used twice: do not exhaust an iterator
    counts = panoptic_counts(pred_sem, pred_ins, gt_sem, gt_ins, things, stuff, ignore_index, per_view)
    return summarize_panoptic(counts, things, stuff)
