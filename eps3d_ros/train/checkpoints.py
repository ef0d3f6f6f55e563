"""Training checkpoints: what ``run.out_dir/checkpoint.pt`` holds, and how a run resumes from one.

A checkpoint is a dict of tensors and plain Python values (read with ``torch.load(...,
weights_only=True)``: nothing in it needs an allow-list): ``format``, ``version``, ``step``, ``model``
(the network's state dict, never DDP's ``module.`` names), ``model_config``, ``optimizer``,
``scheduler``, ``torch_rng`` and ``train_config``. Version 2 adds ``topology`` — the ranks, per-rank
batch and accumulation it was written with. The optimizer state is the same on every rank, so a
checkpoint of N ranks resumes on M: the step counter and the sample stream (a function of ``(seed,
step, k)``) go on, and :func:`describe_resume` says what changed. Version 1 (the trainer before
batches: one rank, one sample per step) reads as topology ``1 × 1 × 1``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .resume_state import CHECKPOINT_FORMAT, RESUME_FORMAT, load_training_state, read_resume_state

__all__ = ["CHECKPOINT_NAME", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "Topology", "write_checkpoint",
           "read_checkpoint", "describe_resume"]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 2

# {"world_size", "batch_size", "accumulate", "global_batch"}
Topology = dict[str, int]


def topology(world_size: int, batch_size: int, accumulate: int) -> Topology:
    return {"world_size": world_size, "batch_size": batch_size, "accumulate": accumulate,
            "global_batch": world_size * batch_size * accumulate}


def write_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus format and version) to ``path`` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint (version 1 or 2) or a slim resume state (:mod:`.resume_state`), as a checkpoint dict
    with ``topology`` filled in."""
    state = load_training_state(path, map_location=map_location)  # weights_only: a pickle that runs code is refused
    if isinstance(state, dict) and state.get("format") == RESUME_FORMAT:
        state = read_resume_state(path, map_location=map_location)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an eps3d training checkpoint")
    if int(state.get("version", 1)) > CHECKPOINT_VERSION:
        raise ValueError(f"{path} is a version {state['version']} checkpoint; this trainer reads up to "
                         f"{CHECKPOINT_VERSION}: update eps3d_ros")
    state.setdefault("topology", topology(1, 1, 1))  # version 1: one rank, one sample per step
    return state


def _shape(t: Topology) -> str:
    return (f"{t['world_size']} rank(s) x batch {t['batch_size']} x accumulate {t['accumulate']} "
            f"(global batch {t['global_batch']})")


def describe_resume(path: str | Path, step: int, saved: Topology, now: Topology, saved_lr: float,
                    new_lr: float) -> str:
    """One log line: where the run resumes and what differs from the run that wrote the checkpoint."""
    lines = [f"resumed from {path} at step {step}: written by {_shape(saved)}"]
    if saved == now:
        lines.append("same ranks and batches")
    else:
        lines.append(f"now {_shape(now)}")
        if saved["global_batch"] != now["global_batch"]:
            lines.append(f"the global batch changed {saved['global_batch']} -> {now['global_batch']}: steps from "
                         f"{step} on see samples k < {now['global_batch']} of the same (seed, step, k) stream")
        else:
            lines.append("the global batch is the same, so every step sees the same samples as before")
    if abs(saved_lr - new_lr) > 1e-12 * max(abs(saved_lr), 1.0):
        lines.append(f"peak learning rate {saved_lr:g} -> {new_lr:g} (optim.lr / optim.lr_scaling)")
    return "; ".join(lines)
