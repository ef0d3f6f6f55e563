"""A slim, committable resume state: a training checkpoint without the weights a model folder already holds.

A run's ``checkpoint.pt`` holds the model weights, the AdamW moments, the schedule, the step, the
RNG state and the training config. When the run is exported, ``model/model.safetensors`` holds the
very same weights, so shipping both would store them twice. :func:`write_resume_state` writes
everything **but** the weights, plus the name and SHA-256 of the weights file it belongs to;
:func:`read_resume_state` puts the weights back (refusing any other weights file), giving the
checkpoint dict :meth:`eps3d_ros.train.Trainer.load_checkpoint` reads, so a resumed run continues
exactly as an uninterrupted one would (the moments stay float32).

    write_resume_state("runs/demo_small/checkpoint.pt", "models/demo_small", "checkpoints/demo_small/resume.pt")
    eps3d train --config config/train_demo_small.yaml --resume checkpoints/demo_small/resume.pt
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["RESUME_FORMAT", "TRAINING_STATE_GLOBALS", "load_training_state", "write_resume_state",
           "read_resume_state"]

RESUME_FORMAT = "eps3d_train_resume"
CHECKPOINT_FORMAT = "eps3d_train_checkpoint"
# What a training state holds besides tensors and plain containers (str, int, float, bool, None, list, tuple,
# dict), which torch.load(weights_only=True) builds anyway: the model, optimizer and scheduler state dicts, the
# RNG state and the configs as dicts. Nothing else is needed today; a type a future state needs goes here.
TRAINING_STATE_GLOBALS: tuple = ()


def load_training_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training checkpoint or resume state as a dict, read with ``torch.load(weights_only=True)``: a file whose
    pickle would build or call anything but tensors, plain containers and :data:`TRAINING_STATE_GLOBALS` is
    refused (:class:`~eps3d_ros.model.checkpoint.CheckpointError`) before any of its code runs."""
    import pickle

    from ..model.checkpoint import CheckpointError, refused_pickle_message

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(list(TRAINING_STATE_GLOBALS)):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(refused_pickle_message(path, e)) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable training checkpoint ({e})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not an eps3d training checkpoint (a {type(state).__name__}, not a dict)")
    return state


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_resume_state(checkpoint: str | Path, model_dir: str | Path, out: str | Path) -> Path:
    """``checkpoint.pt`` minus its weights → ``out``; the weights must equal ``model_dir/model.safetensors``."""
    from safetensors.torch import load_file

    checkpoint, model_dir, out = Path(checkpoint), Path(model_dir), Path(out)
    state = load_training_state(checkpoint)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{checkpoint} is not an eps3d training checkpoint")
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"no model.safetensors in {model_dir}: export the model first")
    stored = load_file(str(weights))
    model = state.pop("model")
    if set(stored) != set(model) or any(not torch.equal(stored[k], model[k].cpu()) for k in model):
        raise ValueError(f"{weights} does not hold the weights of {checkpoint} (step {state['step']}): export the "
                         "model from this checkpoint first")
    state.update(format=RESUME_FORMAT, version=1, model_file=os.path.relpath(weights.resolve(), out.parent.resolve()),
                 model_sha256=_sha256(weights))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out)
    return out


def read_resume_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A slim resume state with its weights put back: the dict of a full training checkpoint."""
    from safetensors.torch import load_file

    path = Path(path)
    state = load_training_state(path, map_location)
    if state.get("format") != RESUME_FORMAT:
        raise ValueError(f"{path} is not an eps3d resume state")
    weights = (path.parent / state["model_file"]).resolve()
    if not weights.is_file():
        raise FileNotFoundError(f"{path} needs its weights file {weights}, which is missing")
    if _sha256(weights) != state["model_sha256"]:
        raise ValueError(f"{weights} is not the weights file {path} was written with (SHA-256 differs): resuming "
                         "would mix an optimizer state with other weights")
    state["model"] = {k: v.to(map_location) for k, v in load_file(str(weights)).items()}
    state["format"] = CHECKPOINT_FORMAT
    return state
