"""Which model folder a command uses (``--model``, ``$EPS3D_DEMO_MODEL``, the shipped demo model) and the checks
made before anything heavy loads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .guard import UserError

__all__ = ["DEMO_MODEL_ENV", "repo_root", "demo_model_dir", "load_bundle", "check_device"]

DEMO_MODEL_ENV = "EPS3D_DEMO_MODEL"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def demo_model_dir(given: str | None) -> Path:
    """The model folder: ``--model`` as given, else ``$EPS3D_DEMO_MODEL``, else ``<repo>/models/demo_tiny``,
    else ``./models/demo_tiny``; a clear error when no demo model is found."""
    if given:
        return Path(given).expanduser()  # the user's folder: load_bundle names what is wrong with it
    if os.environ.get(DEMO_MODEL_ENV):
        candidates = [Path(os.environ[DEMO_MODEL_ENV]).expanduser()]
    else:
        candidates = [repo_root() / "models" / "demo_tiny", Path.cwd() / "models" / "demo_tiny"]
    for c in candidates:
        if (c / "model.safetensors").is_file() or (c.is_file() and c.suffix in (".safetensors", ".pt", ".pth")):
            return c
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise UserError(f"demo model not found (looked for model.safetensors in {looked}). Train it with "
                    "`eps3d train --config config/train_demo.yaml` and copy runs/demo_tiny/model/* to models/demo_tiny/, "
                    f"set ${DEMO_MODEL_ENV}, or pass --model DIR (a folder with model.safetensors + config.json)")


def load_bundle(model: Path) -> Any:
    """The model folder's :class:`~eps3d_ros.model.bundle.ModelBundle` (files only: cheap, before any frame is read)."""
    from ..model.bundle import BundleError, ModelBundle

    try:
        return ModelBundle.load(model)
    except BundleError as e:
        raise UserError(str(e)) from None


def check_device(name: str) -> str:
    """``--device`` checked before anything heavy runs; the device it stands for (``auto`` resolved)."""
    from ..devices import resolve_device

    try:
        return str(resolve_device(name, "--device"))
    except ValueError as e:
        raise UserError(str(e)) from None
