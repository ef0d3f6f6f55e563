"""What a checkpoint holds against the network its configuration describes, without loading it:
:func:`inspect_checkpoint` (``eps3d inspect-checkpoint``) and :func:`expected_shapes`."""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import LoadReport, compare, detect_format, read_state_dict, resolve_config, resolve_weights, to_eps3d_keys
from .config import EPS3DConfig
from .eps3d import EPS3D

__all__ = ["expected_shapes", "inspect_checkpoint"]


def expected_shapes(config: EPS3DConfig) -> dict[str, tuple[int, ...]]:
    """State-dict shapes of the model a config builds (on the meta device: no memory, no time)."""
    with torch.device("meta"):
        model = EPS3D(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}



def inspect_checkpoint(
    path: str | Path, config: EPS3DConfig | str | Path | None = None
) -> tuple[LoadReport, EPS3DConfig]:
    """Check a checkpoint against the model its configuration describes, without building that model."""
    weights, config_file = resolve_weights(path)
    sd, metadata = read_state_dict(weights)
    fmt = detect_format(list(sd), weights)
    sd, ignored = to_eps3d_keys(sd, fmt)
    cfg, source, assumptions = resolve_config(config, metadata, config_file, sd)
    expected = expected_shapes(cfg)
    report = LoadReport(str(weights), fmt, source, ignored=ignored, assumptions=assumptions)
    report.num_parameters = sum(_numel(s) for s in expected.values())
    compare(expected, {k: tuple(v.shape) for k, v in sd.items()}, report, fmt)
    return report, cfg


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
