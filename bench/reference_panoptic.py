"""The panoptic stage of another commit (by default where this branch left main), importable next to the
current one, so that benchmarks can compare objects with what the code built before.

    ref = load_reference_panoptic()        # a module: ref.build_scene, ref.PanopticConfig, ...
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
_PACKAGE = "eps3d_reference"


def base_commit() -> str:
    """The merge base of HEAD and main (HEAD's parent chain when there is no main branch)."""
    try:
        return _git("merge-base", "HEAD", "main").strip()
    except subprocess.CalledProcessError:
        return _git("rev-parse", "HEAD").strip()


def load_reference_panoptic(commit: str | None = None) -> ModuleType:
    """``eps3d_ros.panoptic`` as of ``commit``, imported as ``eps3d_reference.panoptic``. Its relative
    imports of sibling packages (``..render``) resolve to today's ``eps3d_ros`` ones."""
    commit = commit or base_commit()
    tmp = Path(tempfile.mkdtemp(prefix="eps3d_reference_"))
    pkg = tmp / _PACKAGE
    (pkg / "panoptic").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "render.py").write_text("from eps3d_ros.render import *  # noqa: F401,F403\n"
                                   "from eps3d_ros.render import render_gaussians  # noqa: F401\n")
    for name in _git("ls-tree", "--name-only", f"{commit}:eps3d_ros/panoptic").split():
        if name.endswith(".py"):
            (pkg / "panoptic" / name).write_text(_git("show", f"{commit}:eps3d_ros/panoptic/{name}"))
    sys.path.insert(0, str(tmp))
    module = importlib.import_module(f"{_PACKAGE}.panoptic")
    module.COMMIT = commit
    return module


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout
