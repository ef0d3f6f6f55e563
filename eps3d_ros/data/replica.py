"""Replica as the open-vocabulary and panoptic papers evaluate it: the sequences Semantic-NeRF rendered with
Habitat (``Replica_Dataset``: office_0..4, room_0..2; the variant DM-NeRF, Panoptic Lifting, Contrastive Lift
and Unified-Lift use), with Replica's own class names.

Layout::

    ROOT/<scene>/Sequence_1/rgb/rgb_<i>.png                       640x480 colour
                            depth/depth_<i>.png                   uint16 millimetres
                            semantic_class/semantic_class_<i>.png Replica class ids (0 = void)
                            semantic_instance/semantic_instance_<i>.png  object ids (0 = none)
                            traj_w_c.txt                          one camera-to-world 4x4 per line (16 numbers,
                                                                  row-major), OpenCV axes, metres
    ROOT/semantic_info/<scene>/info_semantic.json                 {"classes": [{"id", "name"}, ...]} (Replica's
                                                                  own file; also accepted in the scene folder)

Intrinsics are those the sequences were rendered with: 90 degree horizontal field of view, square pixels,
principal point at the image centre (fx = fy = 320, cx = 319.5, cy = 239.5 at 640x480). Frames are numbered
from 0 (``rgb_0.png``) and sorted numerically. Stuff classes: wall, floor, ceiling.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .dataset_scene import (
    DatasetError,
    LabelSet,
    OneCameraScene,
    check_pose,
    fov_intrinsics,
    image_size,
    natural_key,
    read_depth_png,
    read_label_png,
)

__all__ = ["ReplicaScene", "ReplicaDataset", "REPLICA_SCENES", "REPLICA_HFOV_DEG"]

REPLICA_SCENES = ("office_0", "office_1", "office_2", "office_3", "office_4", "room_0", "room_1", "room_2")
REPLICA_HFOV_DEG = 90.0
STUFF_NAMES = ("wall", "floor", "ceiling")


def read_replica_classes(path: Path) -> tuple[list[str], dict[int, int]]:
    """``(names, id → row)`` from Replica's ``info_semantic.json``; row 0 is "unlabelled"."""
    try:
        info = json.loads(path.read_text())
        classes = sorted(((int(c["id"]), str(c["name"])) for c in info["classes"]), key=lambda c: c[0])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DatasetError(path, f"not Replica's info_semantic.json with classes [{{id, name}}] ({e})") from None
    names = ["unlabelled"] + [n for i, n in classes if i > 0]
    rows = {i: k + 1 for k, (i, _) in enumerate(c for c in classes if c[0] > 0)}
    return names, rows


class ReplicaScene(OneCameraScene):
    """One Replica sequence (see the module docstring)."""

    dataset = "replica"

    def __init__(self, scene_dir: str | Path, info_semantic: str | Path | None = None,
                 sequence: str = "Sequence_1") -> None:
        scene_dir = Path(scene_dir)
        super().__init__(scene_dir.parent, scene_dir.name)
        self.dir = scene_dir / sequence if (scene_dir / sequence).is_dir() else scene_dir
        rgb_dir = self.dir / "rgb"
        if not rgb_dir.is_dir():
            raise DatasetError(rgb_dir, "missing colour folder (Semantic-NeRF's Replica sequences: rgb/rgb_<i>.png)")
        names = sorted((p.stem[len("rgb_"):] for p in rgb_dir.glob("rgb_*.png")), key=natural_key)
        if not names:
            raise DatasetError(rgb_dir, "no rgb_<i>.png images")
        self.frame_ids = names
        self.traj_path = self.dir / "traj_w_c.txt"
        self._traj = self._read_traj()
        self._size = image_size(rgb_dir / f"rgb_{names[0]}.png")
        self._K = fov_intrinsics(self._size[1], self._size[0], REPLICA_HFOV_DEG)
        self.notes.append(f"intrinsics: the rendering's {REPLICA_HFOV_DEG:g} degree horizontal field of view")
        if (self.dir / "semantic_class").is_dir():
            if info_semantic is None or not Path(info_semantic).is_file():
                where = Path(info_semantic or self.root / "semantic_info" / self.scene_id / "info_semantic.json")
                raise DatasetError(where, "missing class list: the sequence has semantic_class/ images but they cannot be "
                                   "named without Replica's info_semantic.json")
            class_names, self._rows = read_replica_classes(Path(info_semantic))
            stuff = tuple(i for i, n in enumerate(class_names) if n in STUFF_NAMES)
            self.label_set = LabelSet("replica", tuple(class_names), stuff)
            self._lut = np.zeros(max(self._rows, default=0) + 1, np.int64)
            for i, r in self._rows.items():
                self._lut[i] = r

    def _read_traj(self) -> list[list[str]] | None:
        if not self.traj_path.is_file():
            return None
        return [line.split() for line in self.traj_path.read_text().splitlines() if line.strip()]

    @property
    def has_depth(self) -> bool:
        return (self.dir / "depth").is_dir()

    def files(self, index: int) -> dict[str, Path]:
        n = self.frame_ids[index]
        out = {"rgb": self.dir / "rgb" / f"rgb_{n}.png", "pose": self.traj_path,
               "depth": self.dir / "depth" / f"depth_{n}.png"}
        if self.label_set is not None:
            out["semantic"] = self.dir / "semantic_class" / f"semantic_class_{n}.png"
        if (self.dir / "semantic_instance").is_dir():
            out["instance"] = self.dir / "semantic_instance" / f"semantic_instance_{n}.png"
        return out

    def rgb_path(self, index: int) -> Path:
        return self.files(index)["rgb"]

    def read_pose(self, index: int) -> np.ndarray:
        if self._traj is None:
            raise DatasetError(self.traj_path, "missing trajectory file")
        k = int(self.frame_ids[index])
        where = f"{self.traj_path}:{k + 1}"
        if k >= len(self._traj):
            raise DatasetError(where, f"missing pose: {len(self._traj)} lines for frame {k}")
        row = self._traj[k]
        if len(row) != 16:
            raise DatasetError(where, f"a pose line holds 16 numbers (row-major 4x4), got {len(row)}")
        try:
            m = np.array([float(v) for v in row]).reshape(4, 4)
        except ValueError:
            raise DatasetError(where, "not numbers") from None
        return check_pose(m, where)

    def read_depth(self, index: int) -> np.ndarray | None:
        if not self.has_depth:
            return None
        return read_depth_png(self.files(index)["depth"], 0.001, self._size)

    def _label(self, path: Path, what: str) -> np.ndarray:
        a = read_label_png(path, what)
        if a.shape != self._size:
            raise DatasetError(path, f"wrong image size {a.shape[1]}x{a.shape[0]}: the sequence is "
                                     f"{self._size[1]}x{self._size[0]}")
        return a

    def read_semantic(self, index: int) -> np.ndarray | None:
        if self.label_set is None:
            return None
        path = self.files(index)["semantic"]
        a = self._label(path, "semantic class")
        ids = np.unique(a)
        bad = ids[(ids != 0) & ~np.isin(ids, list(self._rows))]
        if bad.size:
            raise DatasetError(path, f"unknown label id(s) {bad[:8].tolist()} (not in info_semantic.json)")
        return self._lut[a]

    def read_instance(self, index: int) -> np.ndarray | None:
        path = self.files(index).get("instance")
        return None if path is None else self._label(path, "instance")


class ReplicaDataset:
    """A folder of Semantic-NeRF Replica sequences (see the module docstring)."""

    name = "replica"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(self.root, "dataset root not found")

    def scene_ids(self) -> list[str]:
        ids = sorted(p.name for p in self.root.iterdir()
                     if p.is_dir() and ((p / "Sequence_1" / "rgb").is_dir() or (p / "rgb").is_dir()))
        if not ids:
            raise DatasetError(self.root, "no Replica sequences (<scene>/Sequence_1/rgb/)")
        return ids

    def split(self, name: str) -> list[str]:
        """Replica has no official split: every split is the 8 evaluation scenes present."""
        return [s for s in REPLICA_SCENES if (self.root / s).is_dir()]

    def scene(self, scene_id: str) -> ReplicaScene:
        d = self.root / scene_id
        if not d.is_dir():
            raise DatasetError(d, f"scene {scene_id!r} not found")
        candidates = [self.root / "semantic_info" / scene_id / "info_semantic.json", d / "info_semantic.json",
                      d / "habitat" / "info_semantic.json"]
        info = next((p for p in candidates if p.is_file()), None)
        return ReplicaScene(d, info)
