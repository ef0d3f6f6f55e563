"""Import torchvision (needed by open_clip and torchmetrics) where its compiled ops cannot load.

PyPI's torchvision 0.28 for Linux is a CUDA build; beside the CPU torch its ``_C`` extension does not
load, and its import then fails with ``RuntimeError: operator torchvision::nms does not exist``
(it registers a fake kernel for an op that was never defined). On a machine whose torch and
torchvision match (any GPU robot, or a CPU pair) the import simply works and nothing here runs.
Only on that exact failure do we define the two missing op schemas with a pure-torch CPU NMS, warn,
and import again. Nothing we use needs the other compiled ops.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType

import torch

_MISSING_OP = "operator torchvision::nms does not exist"
_library: torch.library.Library | None = None  # kept alive: dropping it unregisters the ops


def import_torchvision() -> ModuleType:
    """``import torchvision``, falling back to pure-torch NMS op definitions on the known failure."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as e:
        if _MISSING_OP not in str(e):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _define_nms_ops()
        warnings.warn(
            "torchvision's compiled ops do not match this torch build (PyPI's CUDA torchvision beside a CPU "
            "torch); defined torchvision::nms/qnms in pure PyTorch so that torchvision imports. Install a "
            "matching torch/torchvision pair to use its other compiled ops.",
            RuntimeWarning,
            stacklevel=2,
        )
        return importlib.import_module("torchvision")


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression on ``[N, 4]`` xyxy boxes; kept indices by decreasing score."""
    order = torch.argsort(scores, descending=True)
    boxes = boxes[order].float()
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    iou = inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-12)
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    for i in range(len(order)):
        if keep[i]:
            keep[i + 1:] &= iou[i, i + 1:] <= iou_threshold
    return order[keep]


def _define_nms_ops() -> None:
    global _library
    if _library is not None:
        return
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", nms_reference, "CPU")
    lib.impl("qnms", nms_reference, "CPU")
    _library = lib
