"""Shared test fixtures: the reference fixture folder and small models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def reference_fixture_dir() -> Path:
    """``../shared/fixtures/eps3d_reference_tiny`` beside the repo, or ``$EPS3D_REFERENCE_FIXTURES``."""
    d = Path(os.environ.get("EPS3D_REFERENCE_FIXTURES", REPO.parent / "shared" / "fixtures" / "eps3d_reference_tiny"))
    if not (d / "weights_conv.safetensors").is_file():
        raise FileNotFoundError(
            f"reference fixture not found in {d}: check out the project with shared/ beside it "
            "or set EPS3D_REFERENCE_FIXTURES"
        )
    return d


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    return reference_fixture_dir()


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
