"""Semantic segmentation metrics: confusion matrix, per-class IoU, mIoU and pixel accuracy.

All functions are shape-agnostic: a label map ``[H, W]``, a stack of views ``[S, H, W]`` or a 1-D
array of point labels ``[N]`` (the 3D variant) are all just "samples" to be counted. Every pixel /
point counts once; there is no per-image averaging (one confusion matrix over all samples).

Inputs may be numpy arrays or torch tensors (any device); they are converted once, at the entry of
each public function, to ``int64`` numpy arrays (``as_label_array``). The shared input checks used by
the other ``eps3d_ros.eval`` modules live here too.

Conventions
    * ``gt == ignore_index`` marks void / unlabelled pixels: they are dropped before counting, whatever
      the prediction says there. ``ignore_index`` is never a class of the mean.
    * A *prediction* equal to ``ignore_index`` on a labelled pixel is an ordinary miss (it lowers the
      IoU of the gt class there) -- the model abstaining is not free.
    * ``ignore_index=None`` ignores nothing and keeps every class.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "as_label_array",
    "check_same_shape",
    "label_arrays",
    "check_label_range",
    "confusion_matrix",
    "per_class_iou",
    "semantic_miou",
    "semantic_accuracy",
]


# ---- input handling (shared by the eval modules) ------------------------------------------------


def as_label_array(x: Any, name: str) -> np.ndarray:
    """``x`` (numpy array, torch tensor, nested list) as an ``int64`` numpy array; same shape.

    Raises ``ValueError`` for a non-integer dtype (floats are refused rather than truncated, so a
    probability map passed by mistake fails loudly) and for negative labels.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {a.dtype} (shape {tuple(a.shape)})")
    a = a.astype(np.int64, copy=False)
    if a.size and a.min() < 0:
        raise ValueError(f"{name} must hold non-negative labels, got minimum {int(a.min())}")
    return a


def check_same_shape(**arrays: np.ndarray) -> None:
    """Raise ``ValueError`` naming every argument and its shape unless all shapes are equal."""
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError("shape mismatch: " + ", ".join(f"{k} {s}" for k, s in shapes.items()))


def label_arrays(**named: Any) -> dict[str, np.ndarray]:
    """Convert each named input with :func:`as_label_array` and check that all shapes agree."""
    arrays = {k: as_label_array(v, k) for k, v in named.items()}
    check_same_shape(**arrays)
    return arrays


def check_label_range(a: np.ndarray, name: str, num_classes: int) -> None:
    """Raise ``ValueError`` if ``a`` holds a label ``>= num_classes`` (negatives are refused earlier)."""
    if a.size and a.max() >= num_classes:
        bad = np.unique(a[a >= num_classes])[:10].tolist()
        raise ValueError(f"{name} holds labels >= num_classes={num_classes}: {bad}")


def _check_num_classes(num_classes: int, ignore_index: int | None) -> None:
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if ignore_index is not None and not 0 <= ignore_index < num_classes:
        raise ValueError(f"ignore_index={ignore_index} must lie in [0, num_classes={num_classes}) or be None")


def _prepare(pred: Any, gt: Any, num_classes: int, ignore_index: int | None) -> tuple[np.ndarray, np.ndarray]:
    _check_num_classes(num_classes, ignore_index)
    p, g = label_arrays(pred=pred, gt=gt).values()
    check_label_range(p, "pred", num_classes)
    check_label_range(g, "gt", num_classes)
    return p, g


def _confusion(p: np.ndarray, g: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    p, g = p.ravel(), g.ravel()
    if ignore_index is not None:
        keep = g != ignore_index
        p, g = p[keep], g[keep]
    # One bincount over pair codes gt * C + pred: O(pixels), no Python loop.
    return np.bincount(g * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _iou_from_confusion(cm: np.ndarray, ignore_index: int | None) -> np.ndarray:
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    iou = np.full(cm.shape[0], np.nan)
    np.divide(inter, union, out=iou, where=union > 0)
    if ignore_index is not None:
        iou[ignore_index] = np.nan
    return iou


# ---- metrics ------------------------------------------------------------------------------------


def confusion_matrix(pred: Any, gt: Any, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Confusion matrix ``[C, C]`` (``int64``; rows = gt class, columns = predicted class).

    ``pred`` and ``gt`` are integer label arrays of one (any) shape with values in ``[0, C)``.
    Pixels where ``gt == ignore_index`` are dropped (default ``None``: none are).
    """
    p, g = _prepare(pred, gt, num_classes, ignore_index)
    return _confusion(p, g, num_classes, ignore_index)


def per_class_iou(pred: Any, gt: Any, num_classes: int, ignore_index: int | None = 0) -> np.ndarray:
    """IoU per class ``[C]`` (``float64``): ``TP / (TP + FP + FN)`` over the non-ignored pixels.

    ``NaN`` for classes that cannot be scored: an empty union (absent from gt and pred on the
    non-ignored pixels) and ``ignore_index`` itself.
    """
    p, g = _prepare(pred, gt, num_classes, ignore_index)
    return _iou_from_confusion(_confusion(p, g, num_classes, ignore_index), ignore_index)


def semantic_miou(
    pred: Any,
    gt: Any,
    num_classes: int,
    ignore_index: int | None = 0,
    present_only: bool = True,
) -> float:
    """Mean IoU over classes (any input shape; ``pred``/``gt`` integer labels in ``[0, C)``).

    Which classes are averaged:
        * ``present_only=True`` (default): the classes PRESENT in gt or pred on the non-ignored
          pixels (non-empty union). This is the usual scene-level definition (a class that occurs in
          neither cannot be scored) and equals torchmetrics' ``MulticlassJaccardIndex(average="macro",
          ignore_index=...)``. A class only predicted (false positives) counts, with IoU 0.
        * ``present_only=False``: every class ``0..C-1`` except ``ignore_index``, skipping classes
          with an empty union. Since a non-empty union is exactly "present in gt or pred", this
          gives the same number as the default; the flag only states the fixed class list.

    Returns ``nan`` when no class can be scored (every pixel ignored and nothing else present).
    """
    p, g = _prepare(pred, gt, num_classes, ignore_index)
    cm = _confusion(p, g, num_classes, ignore_index)
    iou = _iou_from_confusion(cm, ignore_index)
    if present_only:
        union = cm.sum(0) + cm.sum(1) - np.diag(cm)
        candidates = union > 0
    else:
        candidates = np.ones(num_classes, dtype=bool)
    if ignore_index is not None:
        candidates[ignore_index] = False
    vals = iou[candidates]
    vals = vals[~np.isnan(vals)]  # empty-union classes are skipped in both modes
    return float(vals.mean()) if vals.size else float("nan")


def semantic_accuracy(pred: Any, gt: Any, ignore_index: int | None = 0) -> float:
    """Pixel accuracy: fraction of non-ignored pixels (``gt != ignore_index``) with ``pred == gt``.

    Any input shape; ``nan`` if every pixel is ignored.
    """
    p, g = label_arrays(pred=pred, gt=gt).values()
    keep = np.ones(g.shape, dtype=bool) if ignore_index is None else g != ignore_index
    n = int(keep.sum())
    return float((p[keep] == g[keep]).sum() / n) if n else float("nan")
