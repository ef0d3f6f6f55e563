"""Dataset kinds by name: ``open_dataset("scannet", ROOT, label_set="nyu40")`` and friends.

A dataset object has ``name``, ``root``, ``scene_ids()``, ``split(name)`` and ``scene(scene_id)`` (a
:class:`~eps3d_ros.data.dataset_scene.SceneReader`). :func:`select_scenes` resolves a training or
evaluation request (explicit scene ids, or an official split) against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .dataset_scene import DatasetError

__all__ = ["DATASET_KINDS", "open_dataset", "select_scenes"]

DATASET_KINDS = ("scannet", "scannetpp", "replica", "transforms")


def open_dataset(kind: str, root: str | Path, **options: Any) -> Any:
    """The dataset ``kind`` at ``root``. Options: ``label_set`` (ScanNet: nyu40 | scannet200),
    ``invalid_poses`` (ScanNet: error | skip), ``semantics_dir`` / ``classes_file`` (ScanNet++)."""
    options = {k: v for k, v in options.items() if v not in (None, "")}
    if kind == "scannet":
        from .scannet import ScanNetDataset

        return ScanNetDataset(root, **_only(options, ("label_set", "invalid_poses"), kind))
    if kind == "scannetpp":
        from .scannetpp import ScanNetPPDataset

        return ScanNetPPDataset(root, **_only(options, ("semantics_dir", "classes_file"), kind))
    if kind == "replica":
        from .replica import ReplicaDataset

        return ReplicaDataset(root, **_only(options, (), kind))
    if kind == "transforms":
        from .captures import CaptureDataset

        return CaptureDataset(root, **_only(options, (), kind))
    raise ValueError(f"unknown dataset {kind!r}; one of {', '.join(DATASET_KINDS)}")


def _only(options: dict[str, Any], allowed: tuple[str, ...], kind: str) -> dict[str, Any]:
    extra = sorted(set(options) - set(allowed))
    if extra:
        raise ValueError(f"options {extra} do not apply to the {kind} dataset" +
                         (f" (it takes {list(allowed)})" if allowed else ""))
    return options


def select_scenes(dataset: Any, scenes: Sequence[str] | None = None, split: str | None = None,
                  exclude: Sequence[str] = ()) -> list[str]:
    """Scene ids: ``scenes`` when given (each must exist), else the official ``split``, else every scene;
    ``exclude`` left out. Scenes of a split that are not on disk are an error naming them."""
    available = dataset.scene_ids()
    if scenes:
        chosen = list(scenes)
    elif split:
        chosen = dataset.split(split)
    else:
        chosen = available
    missing = [s for s in chosen if s not in available]
    if missing:
        raise DatasetError(getattr(dataset, "root", ""), f"scene(s) not found: {', '.join(missing[:10])}"
                           + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
                           + (f" of split {split!r}" if split and not scenes else ""))
    out = [s for s in chosen if s not in set(exclude)]
    if not out:
        raise DatasetError(getattr(dataset, "root", ""), "no scenes selected")
    return out
