"""Image fidelity: PSNR of rendered views against the input images."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["psnr"]


def psnr(rendered: Tensor | np.ndarray, images: Tensor | np.ndarray, peak: float = 1.0) -> np.ndarray:
    """Per-image PSNR in dB ``[C]`` of ``rendered`` against ``images``, both ``[C, H, W, 3]`` (or ``[C, 3, H, W]``)
    on one scale with maximum ``peak`` (1 for [0, 1] floats). Identical images give ``inf``."""
    a = torch.as_tensor(rendered, dtype=torch.float64)
    b = torch.as_tensor(images, dtype=torch.float64)
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"psnr needs two [C, H, W, 3] stacks of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = (a - b).pow(2).flatten(1).mean(1)
    with np.errstate(divide="ignore"):
        return (10.0 * np.log10(peak * peak / mse.numpy()))
