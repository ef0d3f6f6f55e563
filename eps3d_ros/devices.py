"""The one place a device name becomes a ``torch.device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.

Every setting that names a device (``model.device``, ``text.device``, ``run.device`` of training, the CLI's
``--device``) is read here, so they all accept the same names and fail the same way.
"""

from __future__ import annotations

import torch

__all__ = ["DEVICE_NAMES", "check_device_name", "resolve_device"]

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"


def check_device_name(name: str, setting: str = "device") -> str:
    """``name`` when it has the form of a device name (nothing is probed); else ``ValueError`` naming ``setting``."""
    text = str(name).strip()
    ok = text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit())
    if not ok:
        raise ValueError(f"{setting} must be {DEVICE_NAMES}, got {name!r}")
    return text


def resolve_device(name: str | torch.device = "auto", setting: str = "device") -> torch.device:
    """The device ``name`` stands for: ``auto`` is CUDA when available, else the CPU. Asking for CUDA where torch
    has none (or for a GPU index it does not have) is a ``ValueError`` naming ``setting``."""
    if isinstance(name, torch.device):
        name = str(name)
    text = check_device_name(name, setting)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{setting} is {text!r} but CUDA is not available (torch {torch.__version__})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{setting} is {text!r} but torch sees {torch.cuda.device_count()} CUDA device(s)")
    return device
