"""Seconds per step of the panoptic stage, for profiles (``bench/``) and diagnostics."""

from __future__ import annotations

import time

import torch

__all__ = ["StageClock"]


class StageClock:
    """Adds the time since the previous :meth:`stop` (or creation) to ``timings[name]``; does nothing when
    ``timings`` is None. On a CUDA ``device`` it synchronises first, so that steps own their GPU work."""

    def __init__(self, timings: dict[str, float] | None, device: torch.device | None = None) -> None:
        self.timings = timings
        self.cuda = device is not None and torch.device(device).type == "cuda"
        self.device = device
        self.t = time.perf_counter()

    def stop(self, name: str) -> None:
        if self.timings is None:
            return
        if self.cuda:
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.t
        self.t = now
