"""Data for training, evaluation, tests and demos: seeded synthetic tabletop scenes and room sequences with exact
ground truth, and readers of real datasets behind one scene interface.

    from eps3d_ros.data import generate_scene, open_dataset

* :mod:`.synthetic`, :mod:`.scene_layout`: the synthetic scenes and sequences;
* :mod:`.datasets` (``open_dataset("scannet", ROOT)``), :mod:`.dataset_scene` (the scene interface), the readers
  :mod:`.scannet`, :mod:`.scannetpp`, :mod:`.replica`, :mod:`.captures` (transforms.json, TUM, Redwood), the
  window sampler :mod:`.windows` and :mod:`.check` (``eps3d data check``).

Names are imported on first use, so ``import eps3d_ros.data`` (and the dataset names of the CLI) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "scene_layout": ["CLASS_NAMES", "COLOURS", "STUFF_CLASSES", "THING_CLASSES", "Box", "Frustum", "SceneObject",
                     "Sphere", "Surface"],
    "synthetic": ["SyntheticScene", "SyntheticSequence", "generate_scene", "generate_sequence", "look_at_pose"],
    "dataset_scene": ["DatasetError", "SceneReader"],
    "datasets": ["DATASET_KINDS", "open_dataset", "select_scenes"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
