"""Class-agnostic masks from a Segment Anything model (the ``segment-anything`` package: ``pip install
segment-anything``; weights by local path, e.g. ``sam_vit_b_01ec64.pth``).

SAM's automatic mask generator prompts a grid of points and keeps the confident, stable masks. They overlap;
one label image is made by painting them largest first, so each pixel ends with the smallest mask that
covers it (object parts over the surfaces they lie on). Ids are 1..M in painting order, 0 = no mask; they
need not agree across frames (the instance loss is invariant to them). Frames are downscaled to ``size``
pixels on the longer side first (SAM works at 1024 internally; the masks come back at the input size).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = ["SamConfig", "SamMasks", "paint_masks", "batched_nms_reference", "SAM_MODELS"]

SAM_MODELS = ("vit_b", "vit_l", "vit_h")


@dataclass
class SamConfig:
    model: str = "vit_b"  # segment_anything registry name: vit_b | vit_l | vit_h
    checkpoint: str = ""  # local .pth ("" = random weights: tests only)
    size: int = 640  # longer side of the frames given to SAM (and of the stored masks)
    points_per_side: int = 32
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    min_mask_region_area: int = 0
    device: str = "cpu"  # auto, cpu, cuda, cuda:N (eps3d_ros.devices)


def batched_nms_reference(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                          iou_threshold: float) -> torch.Tensor:
    """torchvision's ``batched_nms`` (boxes of different ``idxs`` never suppress each other) in pure torch."""
    from eps3d_ros.torchvision_compat import nms_reference

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms_reference(boxes + offsets[:, None], scores, iou_threshold)


def paint_masks(masks: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Boolean masks → one ``[H, W] int32`` label image, largest painted first (ids 1..M, 0 = none)."""
    out = np.zeros(shape, np.int32)
    order = sorted(range(len(masks)), key=lambda i: -int(masks[i].sum()))
    for k, i in enumerate(order, 1):
        out[masks[i]] = k
    return out


class SamMasks:
    """``SamMasks(cfg)(rgb [H, W, 3] uint8) -> [h, w] int32`` label image at the downscaled size."""

    def __init__(self, config: SamConfig | None = None) -> None:
        cfg = self.config = config or SamConfig()
        if cfg.model not in SAM_MODELS:
            raise ValueError(f"SAM model must be one of {SAM_MODELS}, got {cfg.model!r}")
        from eps3d_ros.torchvision_compat import import_torchvision

        torchvision = import_torchvision()  # segment_anything imports torchvision
        try:
            import segment_anything.automatic_mask_generator as amg
            from segment_anything import SamAutomaticMaskGenerator, sam_model_registry
        except ImportError:
            raise ValueError("--masks sam needs the segment-anything package: pip install segment-anything "
                             "(with -c .venv/constraints.txt)") from None
        if not torchvision.extension._has_ops():
            # torchvision's compiled NMS is missing (PyPI's CUDA build beside a CPU torch, see
            # eps3d_ros.torchvision_compat): the mask generator gets the pure-torch one
            amg.batched_nms = batched_nms_reference
        if cfg.checkpoint:
            from pathlib import Path

            if not Path(cfg.checkpoint).is_file():
                raise FileNotFoundError(f"SAM checkpoint not found: {cfg.checkpoint}")
        else:
            log.warning("SAM %s has RANDOM weights: for tests only", cfg.model)
        sam = sam_model_registry[cfg.model](checkpoint=cfg.checkpoint or None)
        from eps3d_ros.devices import resolve_device

        sam.to(resolve_device(cfg.device, "SAM device")).eval()
        self.generator = SamAutomaticMaskGenerator(
            sam, points_per_side=cfg.points_per_side, pred_iou_thresh=cfg.pred_iou_thresh,
            stability_score_thresh=cfg.stability_score_thresh, min_mask_region_area=cfg.min_mask_region_area)

    def size(self, height: int, width: int) -> tuple[int, int]:
        """The ``(h, w)`` frames of ``height x width`` are segmented at."""
        s = min(1.0, self.config.size / max(height, width))
        return max(1, round(height * s)), max(1, round(width * s))

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        from PIL import Image

        h, w = self.size(*rgb.shape[:2])
        small = rgb if (h, w) == rgb.shape[:2] else np.asarray(Image.fromarray(rgb).resize((w, h), Image.BICUBIC))
        masks = [m["segmentation"] for m in self.generator.generate(np.ascontiguousarray(small))]
        return paint_masks(masks, (h, w))
