"""Code the tests share (not tests themselves): the repository's paths, hand-made scenes and text stand-ins, the
ray-cast mapping world, synthetic bags, the node harness and clients.

Test files import from here (``from helpers.scenes import make_scene``), never from one another.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the repository root
SHARED = REPO.parent / "shared"  # fixtures and data beside the repository
