"""The sample stream: which window sample ``k`` of optimizer step ``t`` is, however the batch is split.

Sample ``k`` of step ``t`` — its scene, its held-out target views, and every random subsample the
losses draw for it — is a pure function of ``(run.seed, t, k)``. A rank takes the samples
``k = (micro_step × ranks + rank) × batch_size + i`` (``i < batch_size``), so runs with the same global
batch see the same data whether it is spread over ranks, micro-steps or one batch, and a run resumed
on another number of ranks goes on with the same stream.

Sample ``0`` of step ``t`` draws from ``default_rng([seed, t])`` — the stream of the trainer before
batches existed, so an older run's checkpoint resumes on exactly the windows it would have seen —
and sample ``k > 0`` from ``default_rng([seed, t, k])``. The image size (multi-resolution) is one per
step, drawn by sample 0: every batch of a step has one size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .datasets import Sample

__all__ = ["Draw", "SampleStream", "sample_ids"]


@dataclass
class Draw:
    """One sample of a step with its random state: what the losses of that sample may draw from."""

    sample: Sample
    context: list[int]  # view indices through the network
    target: list[int]  # held-out view indices (rendered into)
    rng: np.random.Generator  # numpy draws of the losses (e.g. which context views are rendered)
    gen: torch.Generator  # torch draws of the losses (pixel and anchor subsets)
    step: int
    k: int  # position in the step's global batch


def sample_ids(micro_step: int, rank: int, world_size: int, batch_size: int) -> list[int]:
    """Global-batch positions ``k`` a rank computes in one micro-step."""
    first = (micro_step * world_size + rank) * batch_size
    return list(range(first, first + batch_size))


class SampleStream:
    """Draws :class:`Draw` ``(step, k)`` from a dataset (anything with ``len`` and ``at_size(i, h, w)``)."""

    def __init__(self, dataset: Any, data, seed: int) -> None:
        self.dataset, self.data, self.seed = dataset, data, int(seed)
        self.sizes = data.sizes()

    def _rng(self, step: int, k: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, step] if k == 0 else [self.seed, step, k])

    def size(self, step: int) -> tuple[int, int]:
        """The image size ``(height, width)`` of every sample of ``step``."""
        if len(self.sizes) == 1:  # no draw for a fixed size: older runs' streams stay unchanged
            return self.sizes[0]
        rng = self._rng(step, 0)
        rng.integers(len(self.dataset))  # sample 0's scene comes first in its stream
        return self.sizes[int(rng.integers(len(self.sizes)))]

    def draw(self, step: int, k: int = 0) -> Draw:
        """Sample ``k`` of ``step`` with its context / target views and generators."""
        rng = self._rng(step, k)
        index = int(rng.integers(len(self.dataset)))
        if len(self.sizes) > 1:
            rng.integers(len(self.sizes))  # every sample's stream has the same shape; sample 0's size counts
        height, width = self.size(step)
        sample = self.dataset.at_size(index, height, width)
        n_target = self.data.target_views if sample.has_cameras else 0
        if sample.num_views > self.data.num_views:
            sample = sample.select(list(range(self.data.num_views)))
        context, target = sample.split(n_target, rng)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return Draw(sample, context, target, rng, gen, step, k)
