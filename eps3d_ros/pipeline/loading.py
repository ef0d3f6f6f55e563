"""Build a ready Reconstructor from the config: model and text encoder from local paths, warmed up."""

from __future__ import annotations

import logging
import time

import torch

from ..model import EPS3D, EPS3DConfig
from ..panoptic.text import TextEncoder
from .config import Eps3dConfig
from .reconstruct import Reconstructor
from .threads import prepare_process

log = logging.getLogger(__name__)


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"model.device is {name!r} but CUDA is not available (torch {torch.__version__})")
    return name


def load_reconstructor(config: Eps3dConfig) -> Reconstructor:
    """Load, warm up (first kernels, vocabulary embeddings) and wrap; errors name the missing piece."""
    m = config.model
    device = resolve_device(m.device)
    prepare_process(config)  # threads (model.threads) and the panoptic stage's one-off costs, once
    if m.weights:
        model = EPS3D.from_pretrained(m.weights, device=device, config=m.config or None)
    else:
        log.warning("model.weights is empty: RANDOM weights of preset %r (tests only)", m.preset)
        model = EPS3D(EPS3DConfig.from_preset(m.preset)).to(device).eval()
    text = TextEncoder(config.text)
    p = config.pipeline
    t0 = time.perf_counter()
    with torch.inference_mode():
        model(torch.zeros(1, min(2, p.window_size), 3, p.image_height, p.image_width, device=device))
    text.prototypes(config.panoptic.vocabulary)
    log.info("model on %s, warm-up %.2f s", device, time.perf_counter() - t0)
    return Reconstructor(model, text, config)


def release_cuda_cache() -> None:
    """Give cached CUDA memory back (deactivate / cleanup); nothing without CUDA."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def gpu_memory() -> dict:
    """Allocated / reserved CUDA memory in MiB, for diagnostics."""
    if not torch.cuda.is_available():
        return {"gpu_memory": "no CUDA"}
    return {"gpu_memory_allocated_mb": round(torch.cuda.memory_allocated() / 2**20, 1),
            "gpu_memory_reserved_mb": round(torch.cuda.memory_reserved() / 2**20, 1)}
