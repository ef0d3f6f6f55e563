"""The 2D foundation models that make teacher files for unlabelled recordings (``eps3d teachers``): dense
text-aligned CLIP features (:mod:`.dense_clip`, MaskCLIP's read-out of an open_clip ViT) and class-agnostic
masks (:mod:`.sam_masks`, Segment Anything). Weights come from local paths; nothing is downloaded."""

from .dense_clip import DenseClip, DenseClipConfig
from .sam_masks import SamConfig, SamMasks, paint_masks

__all__ = ["DenseClip", "DenseClipConfig", "SamConfig", "SamMasks", "paint_masks"]
