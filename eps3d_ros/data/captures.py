"""The ``transforms`` dataset: users' own captures in common forms, one capture = one scene.

A capture folder holds a ``transforms.json`` (instant-ngp / nerfstudio, :mod:`.nerf_transforms`), or is a
TUM RGB-D sequence (``rgb.txt`` + ``groundtruth.txt``) or a Redwood / Open3D RGB-D folder
(``trajectory.log`` + ``color/``) (:mod:`.rgbd_folders`). ``ROOT`` is one capture (its scene id is the folder
name) or a folder of captures.
"""

from __future__ import annotations

from pathlib import Path

from .dataset_scene import DatasetError, SceneReader
from .nerf_transforms import TRANSFORMS_NAME, TransformsScene
from .rgbd_folders import RedwoodScene, TumScene

__all__ = ["capture_form", "open_capture", "CaptureDataset", "FORMS"]

FORMS = ("transforms.json", "tum", "redwood")


def capture_form(folder: Path) -> str | None:
    """Which form a folder is in, or ``None``."""
    if folder.is_file() and folder.suffix == ".json":
        return "transforms.json"
    if (folder / TRANSFORMS_NAME).is_file():
        return "transforms.json"
    if (folder / "rgb.txt").is_file() and (folder / "groundtruth.txt").is_file():
        return "tum"
    if (folder / "trajectory.log").is_file() or ((folder / "color").is_dir() and (folder / "rgbd.match").is_file()):
        return "redwood"
    return None


def open_capture(path: str | Path) -> SceneReader:
    """The scene reader of one capture (a folder, or a ``transforms.json`` file)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(p, "capture not found")
    form = capture_form(p)
    if form == "transforms.json":
        return TransformsScene(p)
    if form == "tum":
        return TumScene(p)
    if form == "redwood":
        return RedwoodScene(p)
    raise DatasetError(p, "not a capture: expected transforms.json (instant-ngp / nerfstudio), a TUM RGB-D folder "
                          "(rgb.txt + groundtruth.txt) or a Redwood / Open3D folder (color/ + trajectory.log)")


class CaptureDataset:
    """One capture, or a folder of captures (see the module docstring)."""

    name = "transforms"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DatasetError(self.root, "dataset root not found")
        self.single = capture_form(self.root) is not None

    def scene_ids(self) -> list[str]:
        if self.single:
            return [self.root.parent.name if self.root.is_file() else self.root.name]
        ids = sorted(p.name for p in self.root.iterdir() if p.is_dir() and capture_form(p) is not None)
        if not ids:
            raise DatasetError(self.root, "no captures (folders with transforms.json, TUM or Redwood files)")
        return ids

    def split(self, name: str) -> list[str]:
        """Captures have no official split: every split is every capture."""
        return self.scene_ids()

    def scene(self, scene_id: str | None = None) -> SceneReader:
        if self.single:
            if scene_id not in (None, "", *self.scene_ids()):
                raise DatasetError(self.root, f"scene {scene_id!r}: this root is the single capture "
                                              f"{self.scene_ids()[0]!r}")
            return open_capture(self.root)
        if not scene_id:
            raise DatasetError(self.root, f"several captures here: name one of {self.scene_ids()[:10]}")
        return open_capture(self.root / scene_id)
