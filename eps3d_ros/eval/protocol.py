"""EPS3D's evaluation protocol and one-call evaluation of 2D label maps and 3D point labels.

EPS3D scores its 2D predictions after bringing both prediction and ground truth to a common frame:
resize to 256 x 256 with NEAREST interpolation (labels must never be blended), then crop a 25-pixel
border from every side (the border is where rendered views are least reliable), leaving 206 x 206.
``reference_protocol`` does exactly that; ``evaluate_panoptic_2d`` applies it to all four maps and
returns every metric; ``evaluate_panoptic_3d`` is the same on per-point labels, without the protocol.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

from eps3d_ros.eval.instance import instance_prf
from eps3d_ros.eval.panoptic import panoptic_quality
from eps3d_ros.eval.semantic import as_label_array, label_arrays, semantic_accuracy, semantic_miou

__all__ = [
    "REFERENCE_SIZE",
    "REFERENCE_BORDER",
    "resize_nearest",
    "reference_protocol",
    "evaluate_panoptic_2d",
    "evaluate_panoptic_3d",
]

REFERENCE_SIZE = 256
REFERENCE_BORDER = 25


def _nearest_index(n_in: int, n_out: int, mode: str) -> np.ndarray:
    dst = np.arange(n_out, dtype=np.int64)
    if mode == "nearest":  # src = floor(dst * in / out): torch's "nearest" (and OpenCV INTER_NEAREST)
        src = dst * n_in // n_out
    elif mode == "nearest-exact":  # src = floor((dst + 0.5) * in / out): pixel centres, as PIL / torch "nearest-exact"
        src = (2 * dst + 1) * n_in // (2 * n_out)
    else:
        raise ValueError(f"mode must be 'nearest' or 'nearest-exact', got {mode!r}")
    return np.minimum(src, n_in - 1)  # exact integer arithmetic: no float rounding at the edges


def resize_nearest(
    label_map: Any, size: int | tuple[int, int], mode: Literal["nearest", "nearest-exact"] = "nearest"
) -> np.ndarray:
    """Resize the last two axes of ``[..., H, W]`` integer labels to ``size`` (int or ``(h, w)``)."""
    a = as_label_array(label_map, "label_map")
    if a.ndim < 2:
        raise ValueError(f"label_map must be [..., H, W], got shape {a.shape}")
    h, w = (size, size) if isinstance(size, int) else size
    rows = _nearest_index(a.shape[-2], h, mode)
    cols = _nearest_index(a.shape[-1], w, mode)
    return a[..., rows[:, None], cols[None, :]]


def reference_protocol(
    label_map: Any,
    size: int = REFERENCE_SIZE,
    border: int = REFERENCE_BORDER,
    mode: Literal["nearest", "nearest-exact"] = "nearest",
) -> np.ndarray:
    """EPS3D's protocol: nearest resize of ``[H, W]`` / ``[S, H, W]`` labels to ``size``², crop ``border``.

    Returns ``int64`` ``[..., size - 2*border, size - 2*border]`` (206 x 206 by default). The resize
    keeps label values (each output pixel copies one input pixel; ``mode`` picks which, see
    ``resize_nearest``).
    """
    if not 0 <= 2 * border < size:
        raise ValueError(f"border={border} leaves nothing of size={size}")
    out = resize_nearest(label_map, size, mode)
    return out[..., border : size - border, border : size - border]


def _default_num_classes(things: Iterable[int], stuff: Iterable[int], ignore_index: int) -> int:
    return max([ignore_index, *things, *stuff]) + 1


def _evaluate(
    ps: np.ndarray,
    pi: np.ndarray,
    gs: np.ndarray,
    gi: np.ndarray,
    things: list[int],
    stuff: list[int],
    num_classes: int | None,
    ignore_index: int,
    iou_threshold: float,
    per_view: bool,
) -> dict[str, Any]:
    n_cls = num_classes if num_classes is not None else _default_num_classes(things, stuff, ignore_index)
    ins = instance_prf(pi, gi, iou_threshold=iou_threshold, per_view=per_view and ps.ndim >= 3)
    pq = panoptic_quality(ps, pi, gs, gi, things, stuff, ignore_index=ignore_index, per_view=per_view)
    out: dict[str, Any] = {
        "miou": semantic_miou(ps, gs, n_cls, ignore_index=ignore_index),
        "accuracy": semantic_accuracy(ps, gs, ignore_index=ignore_index),
        "precision": ins["precision"],
        "recall": ins["recall"],
        "f_score": ins["f_score"],
    }
    out.update({k: v for k, v in pq.items() if k != "per_class"})
    out["panoptic_per_class"] = pq["per_class"]
    out["instance"] = ins
    return out


def evaluate_panoptic_2d(
    pred_sem: Any,
    pred_ins: Any,
    gt_sem: Any,
    gt_ins: Any,
    things: Iterable[int],
    stuff: Iterable[int],
    num_classes: int | None = None,
    ignore_index: int = 0,
    protocol: bool = True,
    size: int = REFERENCE_SIZE,
    border: int = REFERENCE_BORDER,
    iou_threshold: float = 0.5,
    per_view: bool = True,
) -> dict[str, Any]:
    """All 2D metrics of label maps ``[H, W]`` or stacks of views ``[S, H, W]`` (four arrays, one shape).

    With ``protocol=True`` every map first goes through ``reference_protocol(size, border)``.
    ``num_classes`` defaults to ``max(things, stuff, ignore_index) + 1``. ``per_view`` (stacks only):
    match instances / panoptic segments within each view and sum the counts (default) instead of
    across the whole stack. Instance P/R/F is class-agnostic on the instance maps as given (id 0 = none).

    Returns ``miou, accuracy`` (semantic), ``precision, recall, f_score`` (instances at
    ``iou_threshold``), ``pq, sq, rq`` and their ``_things`` / ``_stuff`` variants, ``num_averaged*``,
    ``panoptic_per_class`` and ``instance`` (the full ``instance_prf`` result).
    """
    arrays = label_arrays(pred_sem=pred_sem, pred_ins=pred_ins, gt_sem=gt_sem, gt_ins=gt_ins)
    if arrays["gt_sem"].ndim not in (2, 3):
        raise ValueError(f"2D evaluation expects [H, W] or [S, H, W] maps, got shape {arrays['gt_sem'].shape}")
    if protocol:
        arrays = {k: reference_protocol(v, size, border) for k, v in arrays.items()}
    return _evaluate(*arrays.values(), list(things), list(stuff), num_classes, ignore_index, iou_threshold, per_view)


def evaluate_panoptic_3d(
    pred_sem: Any,
    pred_ins: Any,
    gt_sem: Any,
    gt_ins: Any,
    things: Iterable[int],
    stuff: Iterable[int],
    num_classes: int | None = None,
    ignore_index: int = 0,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """The same metrics on per-point labels of one scene: four 1-D arrays ``[N]`` (point i in all four).

    The metric functions are shape-agnostic, so this only validates the input and treats the point
    set as one sample: a stuff class is one segment over the scene, a thing instance one segment.
    Points with ``gt_sem == ignore_index`` are void exactly as pixels are. Same keys as
    ``evaluate_panoptic_2d``.
    """
    arrays = label_arrays(pred_sem=pred_sem, pred_ins=pred_ins, gt_sem=gt_sem, gt_ins=gt_ins)
    for k, v in arrays.items():
        if v.ndim != 1:
            raise ValueError(f"3D evaluation expects 1-D per-point labels, got {k} of shape {v.shape}")
    return _evaluate(*arrays.values(), list(things), list(stuff), num_classes, ignore_index, iou_threshold, False)
