"""How much memory a window needs, estimated before anything is allocated, and the refusal when it cannot fit.

A window of ``S`` views of ``h x w`` network pixels makes ``S h w`` Gaussians; what it holds at its peak (the
network's heads, the Gaussians' parameters, the panoptic stage's copies) grows with that pixel count. Measured
on this project's CPU machine with the demo model (``bench``-style probes of a fresh process: forward +
panoptic stage, peak RSS): 851 MiB for 2 x 224², 1601 MiB for 2 x 448², 2601 MiB for 4 x 448², i.e. about
:data:`BYTES_PER_PIXEL_VIEW` per pixel of every view on top of :data:`FIXED_BYTES` (Python, torch, the text
encoder) and the weights (the estimate: 851 / 1598 / 2593 MiB); widening the DPT features from 16 to 64
changed it by 1 %. A reported run of 2 frames at 2240x1680 with that model used 19.5 GB; the estimate is
18.8 GiB (20.2 GB). Larger networks (the EPS3D
release: ViT-L, 256-wide DPT) need more per pixel than this: the estimate is a floor for them, not measured
here.

The limit is ``pipeline.max_memory_mb``, or (0) :data:`AVAILABLE_FRACTION` of what the device has: on CPU the
memory the kernel reports available plus what this process already holds, on CUDA the device's free memory plus
what torch already caches. The fifth kept back is for what the estimate does not see (other processes that grow,
the estimate's own error): the reported 2-frame run at 2240x1680 (18.8 GiB estimated) on a machine with 21 GiB
available would have pushed it into swap, and is refused. A refusal says the estimate, the limit and the fixes (a smaller size, fewer views).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AVAILABLE_FRACTION", "BYTES_PER_PIXEL_VIEW", "FIXED_BYTES", "memory_limit", "MemoryEstimate", "MemoryLimitError", "estimate_window_memory",
           "available_memory", "check_window_memory"]

BYTES_PER_PIXEL_VIEW = 2600  # peak bytes per network pixel of every view of a window (demo model, CPU; above)
FIXED_BYTES = 600 * 2**20  # the process without a window: Python, torch, the text encoder, caches
AVAILABLE_FRACTION = 0.8  # of the memory available, the default limit (see the module docstring)


class MemoryLimitError(ValueError):
    """A window that would not fit in the memory there is; the message has the estimate and the fixes."""


@dataclass(frozen=True)
class MemoryEstimate:
    views: int
    height: int
    width: int
    weights_bytes: int
    total_bytes: int  # the estimated peak of the process while the window runs


def estimate_window_memory(views: int, height: int, width: int, weights_bytes: int = 0) -> MemoryEstimate:
    """The peak memory of a process running a window of ``views`` frames of ``height x width`` network pixels."""
    pixels = int(views) * int(height) * int(width)
    total = FIXED_BYTES + int(weights_bytes) + BYTES_PER_PIXEL_VIEW * pixels
    return MemoryEstimate(int(views), int(height), int(width), int(weights_bytes), total)


def available_memory(device: str = "cpu") -> int | None:
    """Bytes this process may use on ``device`` (see the module docstring); None when unknown."""
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return None
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free + torch.cuda.memory_reserved(torch.device(device)))
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        available = int(fields["MemAvailable"].split()[0]) * 1024
        status = dict(line.split(":", 1) for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines()
                      if ":" in line)
        return available + int(status.get("VmRSS", "0 kB").split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None  # not Linux: no check


def memory_limit(limit_mb: float = 0.0, device: str = "cpu") -> int | None:
    """The limit in bytes: ``limit_mb`` when > 0, else :data:`AVAILABLE_FRACTION` of :func:`available_memory`
    (None when that is unknown: no check)."""
    if limit_mb > 0:
        return int(limit_mb * 2**20)
    available = available_memory(device)
    return None if available is None else int(AVAILABLE_FRACTION * available)


def check_window_memory(views: int, height: int, width: int, weights_bytes: int = 0, limit_mb: float = 0.0,
                        device: str = "cpu", native: tuple[int, int] | None = None) -> MemoryEstimate:
    """The estimate of :func:`estimate_window_memory`; :class:`MemoryLimitError` when it exceeds ``limit_mb``
    (0: :func:`memory_limit` of ``device``). ``native``: the model's own input size, offered as the fix."""
    est = estimate_window_memory(views, height, width, weights_bytes)
    limit = memory_limit(limit_mb, device)
    if limit is None or est.total_bytes <= limit:
        return est
    where = ("pipeline.max_memory_mb" if limit_mb > 0 else
             f"{AVAILABLE_FRACTION:.0%} of the memory available on "
             f"{'the GPU' if str(device).startswith('cuda') else 'this machine'}")
    fits = max(1, int((limit - FIXED_BYTES - weights_bytes) // (BYTES_PER_PIXEL_VIEW * max(1, height * width))))
    size = f" (the model's native size is {native[0]}x{native[1]})" if native else ""
    raise MemoryLimitError(
        f"a window of {views} view(s) of {height}x{width} (HxW) needs about {_gb(est.total_bytes)} but "
        f"{_gb(limit)} is the limit ({where}): use a smaller size (--size / pipeline.image_height and image_width"
        f"{size}) or fewer views per window (at most {fits} at this size: --window, --max-views / "
        f"pipeline.window_size); pipeline.max_memory_mb sets the limit")


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"
