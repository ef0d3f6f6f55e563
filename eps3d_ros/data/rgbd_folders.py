"""Posed RGB-D folders in the TUM RGB-D and the Redwood / Open3D forms.

**TUM RGB-D** (``rgbd_dataset_freiburgN_*``)::

    rgb.txt, depth.txt        "timestamp file" lines (# comments)
    groundtruth.txt           "timestamp tx ty tz qx qy qz qw": the colour camera's optical frame in the world
    rgb/*.png, depth/*.png    depth uint16, 5000 units per metre

Each colour image takes the depth image and the pose nearest in time (within ``max_dt``, 0.02 s, as TUM's
``associate.py``); colour images with no pose that close are left out (with a note: the motion capture starts
after the camera). Intrinsics: ``intrinsics.json`` in the folder (``K`` or ``fx fy cx cy``), else the
published values of the freiburg camera named in the folder (distortion of fr1/fr2 ignored).

**Redwood / Open3D**::

    color/*.jpg|png, depth/*.png (uint16 mm), trajectory.log (Open3D .log: per frame "i j n" + 4x4
    camera-to-world), camera_intrinsic.json or camera_primesense.json (Open3D: intrinsic_matrix column-major,
    width, height; default the PrimeSense 525/525/319.5/239.5), rgbd.match optional ("depth colour" pairs)

Quaternions are converted by :func:`eps3d_ros.conventions.quat_xyzw_to_matrix`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from eps3d_ros.conventions import quat_xyzw_to_matrix

from .dataset_scene import (
    DatasetError,
    OneCameraScene,
    check_intrinsics,
    check_pose,
    image_size,
    natural_key,
    read_depth_png,
)

__all__ = ["TumScene", "RedwoodScene", "TUM_INTRINSICS"]

# fx, fy, cx, cy of the TUM RGB-D cameras (the dataset's published ROS default calibration)
TUM_INTRINSICS = {"freiburg1": (517.3, 516.5, 318.6, 255.3), "freiburg2": (520.9, 521.0, 325.1, 249.7),
                  "freiburg3": (535.4, 539.2, 320.1, 247.6)}
PRIMESENSE = (525.0, 525.0, 319.5, 239.5)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _k(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _intrinsics_json(path: Path) -> np.ndarray:
    try:
        d = json.loads(path.read_text())
        if "K" in d:
            return np.asarray(d["K"], np.float64).reshape(3, 3)
        if "intrinsic_matrix" in d:
            return np.asarray(d["intrinsic_matrix"], np.float64).reshape(3, 3).T  # Open3D: column-major
        return _k(float(d["fx"]), float(d.get("fy", d["fx"])), float(d["cx"]), float(d["cy"]))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DatasetError(path, f"expected 'K' (3x3), fx/fy/cx/cy or Open3D's intrinsic_matrix ({e})") from None


def _stamped(path: Path) -> list[tuple[float, list[str]]]:
    if not path.is_file():
        raise DatasetError(path, "missing file")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            out.append((float(parts[0]), parts[1:]))
        except (ValueError, IndexError):
            raise DatasetError(f"{path}:{n}", f"expected 'timestamp ...', got {line!r}") from None
    return out


def _nearest(stamps: np.ndarray, t: float) -> tuple[int, float]:
    i = int(np.clip(np.searchsorted(stamps, t), 1, len(stamps) - 1)) if len(stamps) > 1 else 0
    j = i - 1 if i > 0 and abs(stamps[i - 1] - t) <= abs(stamps[i] - t) else i
    return j, abs(float(stamps[j]) - t)


class TumScene(OneCameraScene):
    """A TUM RGB-D sequence folder (see the module docstring)."""

    dataset = "transforms"

    def __init__(self, folder: str | Path, max_dt: float = 0.02) -> None:
        folder = Path(folder)
        super().__init__(folder.parent, folder.name)
        self.dir = folder
        rgb = _stamped(folder / "rgb.txt")
        depth = _stamped(folder / "depth.txt") if (folder / "depth.txt").is_file() else []
        self.gt_path = folder / "groundtruth.txt"
        gt = _stamped(self.gt_path)
        gt_t = np.array([t for t, _ in gt])
        d_t = np.array([t for t, _ in depth])
        self._rows, self._rgb, self._depth = [], [], []
        missing = 0
        for t, parts in rgb:
            j, dt = _nearest(gt_t, t) if len(gt_t) else (0, np.inf)
            if dt > max_dt:
                missing += 1
                continue
            self._rows.append((j, gt[j][1]))
            self._rgb.append(folder / parts[0])
            if len(d_t):
                k, ddt = _nearest(d_t, t)
                self._depth.append(folder / depth[k][1][0] if ddt <= max_dt else None)
        if missing:
            self.notes.append(f"{missing} colour image(s) without a ground-truth pose within {max_dt} s left out")
        if not self._rgb:
            raise DatasetError(self.gt_path, "no colour image has a pose within max_dt")
        self.frame_ids = [p.stem for p in self._rgb]
        self._size = image_size(self._rgb[0])
        if (folder / "intrinsics.json").is_file():
            K = _intrinsics_json(folder / "intrinsics.json")
        else:
            cam = next((c for c in TUM_INTRINSICS if c in folder.name), None)
            if cam is None:
                raise DatasetError(folder / "intrinsics.json", "missing intrinsics: the folder name names no freiburg "
                                                               "camera; write intrinsics.json (fx, fy, cx, cy)")
            K = _k(*TUM_INTRINSICS[cam])
            self.notes.append(f"intrinsics: TUM's published {cam} calibration")
        self._K = check_intrinsics(K, folder, self._size)

    @property
    def has_depth(self) -> bool:
        return bool(self._depth)

    def files(self, index: int) -> dict[str, Path]:
        out = {"rgb": self._rgb[index], "pose": self.gt_path}
        if self._depth and self._depth[index] is not None:
            out["depth"] = self._depth[index]
        return out

    def rgb_path(self, index: int) -> Path:
        return self._rgb[index]

    def read_pose(self, index: int) -> np.ndarray:
        line, parts = self._rows[index]
        where = f"{self.gt_path} (pose of {self.frame_ids[index]})"
        try:
            tx, ty, tz, qx, qy, qz, qw = (float(v) for v in parts)
        except ValueError:
            raise DatasetError(where, "expected 'timestamp tx ty tz qx qy qz qw'") from None
        q = torch.tensor([qx, qy, qz, qw], dtype=torch.float64)
        if not bool(torch.isfinite(q).all()) or float(q.norm()) < 1e-9:
            raise DatasetError(where, "quaternion is zero, NaN or infinite")
        m = np.eye(4)
        m[:3, :3] = quat_xyzw_to_matrix(q / q.norm()).numpy()
        m[:3, 3] = (tx, ty, tz)
        return check_pose(m, where)

    def read_depth(self, index: int) -> np.ndarray | None:
        if not self._depth:
            return None
        path = self._depth[index]
        if path is None:
            return np.zeros(self._size, np.float32)  # no depth image close in time: no measurement
        return read_depth_png(path, 1.0 / 5000.0, self._size)


class RedwoodScene(OneCameraScene):
    """A Redwood / Open3D RGB-D folder (see the module docstring)."""

    dataset = "transforms"

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        super().__init__(folder.parent, folder.name)
        self.dir = folder
        if (folder / "rgbd.match").is_file():
            pairs = [line.split() for line in (folder / "rgbd.match").read_text().splitlines() if line.strip()]
            self._rgb = [folder / c for _, c in pairs]
            self._depth = [folder / d for d, _ in pairs]
        else:
            self._rgb = sorted((p for p in (folder / "color").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                               key=lambda p: natural_key(p.name)) if (folder / "color").is_dir() else []
            dd = folder / "depth"
            self._depth = sorted((p for p in dd.iterdir() if p.suffix.lower() == ".png"),
                                 key=lambda p: natural_key(p.name)) if dd.is_dir() else []
            if self._depth and len(self._depth) != len(self._rgb):
                raise DatasetError(dd, f"{len(self._depth)} depth images for {len(self._rgb)} colour images (they are "
                                       "paired by sorted order; write rgbd.match to pair them)")
        if not self._rgb:
            raise DatasetError(folder / "color", "no colour images")
        self.frame_ids = [p.stem for p in self._rgb]
        self.log_path = folder / "trajectory.log"
        self._poses = self._read_log()
        self._size = image_size(self._rgb[0])
        intr = next((folder / n for n in ("camera_intrinsic.json", "camera_primesense.json", "intrinsics.json")
                     if (folder / n).is_file()), None)
        if intr is not None:
            K = _intrinsics_json(intr)
        else:
            K = _k(*PRIMESENSE)
            self.notes.append("intrinsics: the PrimeSense default (525, 525, 319.5, 239.5)")
        self._K = check_intrinsics(K, intr or folder, self._size)

    def _read_log(self) -> list[np.ndarray] | None:
        if not self.log_path.is_file():
            return None
        rows = [line.split() for line in self.log_path.read_text().splitlines() if line.strip()]
        if len(rows) % 5:
            raise DatasetError(self.log_path, f"an Open3D .log holds blocks of 5 lines (header + 4x4), got {len(rows)}")
        out = []
        for b in range(0, len(rows), 5):
            try:
                out.append(np.array([[float(x) for x in r] for r in rows[b + 1:b + 5]]))
            except ValueError:
                raise DatasetError(f"{self.log_path}:{b + 2}", "not numbers in a 4x4 block") from None
        return out

    @property
    def has_depth(self) -> bool:
        return bool(self._depth)

    def files(self, index: int) -> dict[str, Path]:
        out = {"rgb": self._rgb[index], "pose": self.log_path}
        if self._depth:
            out["depth"] = self._depth[index]
        return out

    def rgb_path(self, index: int) -> Path:
        return self._rgb[index]

    def read_pose(self, index: int) -> np.ndarray:
        where = f"{self.log_path} (pose {index})"
        if self._poses is None:
            raise DatasetError(self.log_path, "missing trajectory file")
        if index >= len(self._poses):
            raise DatasetError(where, f"missing pose: the log holds {len(self._poses)} poses for {len(self)} frames")
        return check_pose(self._poses[index], where)

    def read_depth(self, index: int) -> np.ndarray | None:
        if not self._depth:
            return None
        return read_depth_png(self._depth[index], 0.001, self._size)
