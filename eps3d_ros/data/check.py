"""Validate a dataset tree (``eps3d data check``): count scenes and frames, list every broken file.

Every scene is opened and each file of each frame is read on its own (:meth:`SceneReader.check`), so the
report lists all the problems, not only the first. Besides unreadable or missing files, invalid poses,
wrong image sizes and unknown label ids, it flags depth that looks like the wrong unit (a median beyond
``max_median_depth`` metres, e.g. millimetres read as metres), checked on a few frames per scene.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .dataset_scene import DatasetError, Issue
from .datasets import open_dataset

__all__ = ["CheckReport", "check_dataset"]


@dataclass
class SceneCount:
    scene: str
    frames: int = 0
    labelled: bool = False
    depth: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    dataset: str
    root: str
    scenes: list[SceneCount] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.scenes)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.fatal]

    @property
    def usable(self) -> bool:
        return not self.errors and bool(self.scenes) and self.frames > 0

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "root": self.root, "usable": self.usable, "scenes": len(self.scenes),
                "frames": self.frames, "labelled_scenes": sum(s.labelled for s in self.scenes),
                "scenes_with_depth": sum(s.depth for s in self.scenes),
                "per_scene": [{"scene": s.scene, "frames": s.frames, "labels": s.labelled, "depth": s.depth,
                               "notes": s.notes} for s in self.scenes],
                "errors": [{"file": i.path, "problem": i.problem} for i in self.errors],
                "warnings": [{"file": i.path, "problem": i.problem} for i in self.issues if not i.fatal]}


def _depth_units(scene: Any, max_median_depth: float, samples: int = 3) -> list[Issue]:
    out = []
    n = len(scene)
    for i in sorted({int(round(x)) for x in np.linspace(0, n - 1, min(samples, n))}):
        try:
            d = scene.read_depth(i)
        except DatasetError:
            continue  # reported by the scene's own check
        if d is None or not (d > 0).any():
            continue
        med = float(np.median(d[d > 0]))
        if med > max_median_depth:
            path = scene.files(i).get("depth", scene.scene_id)
            out.append(Issue(str(path), f"median depth {med:.1f} m: wrong depth units? (expected metres after the "
                                        f"dataset's scale; indoor scenes are under {max_median_depth:g} m)"))
    return out


def check_dataset(kind: str, root: str | Path, scenes: Sequence[str] | None = None, decode: bool = True,
                  max_median_depth: float = 20.0, progress: Callable[[int], None] | None = None,
                  on_scene: Callable[[str, int], None] | None = None, **options: Any) -> CheckReport:
    """Check ``scenes`` (default all) of dataset ``kind`` at ``root``; never raises for a broken file."""
    report = CheckReport(kind, str(root))
    try:
        ds = open_dataset(kind, root, **options)
        ids = list(scenes) if scenes else ds.scene_ids()
    except DatasetError as e:
        report.issues.append(Issue(e.path, e.problem))
        return report
    for sid in ids:
        try:
            scene = ds.scene(sid)
        except DatasetError as e:
            report.issues.append(Issue(e.path, e.problem))
            continue
        if on_scene is not None:
            on_scene(sid, len(scene))
        count = SceneCount(sid, len(scene), scene.has_labels, scene.has_depth, list(scene.notes))
        report.scenes.append(count)
        report.issues += scene.check(decode=decode, progress=progress)
        if decode and scene.has_depth:
            report.issues += _depth_units(scene, max_median_depth)
    return report
