"""ScanNet++ (v2) DSLR scenes: undistorted images with their nerfstudio ``transforms`` file, and 2D semantics
where the user rendered them with the ScanNet++ toolkit.

Layout (``ROOT`` is the download's ``data/`` folder or its parent)::

    ROOT/splits/nvs_sem_{train,val}.txt                      official splits
    ROOT/metadata/semantic_benchmark/top100.txt              class names, one a line (index = class id)
    ROOT/<scene>/dslr/nerfstudio/transforms_undistorted.json pinhole fl_x fl_y cx cy w h, frames[]:
                                                             file_path, transform_matrix (camera-to-world,
                                                             OpenGL axes), is_bad; test_frames[] likewise
    ROOT/<scene>/dslr/resized_undistorted_images/<name>.JPG  (the v2 download) or undistorted_images/ (the
                                                             toolkit's ``python -m dslr.undistort``)
    ROOT/<scene>/dslr/render_depth/<name>.png                uint16 mm, optional (``python -m common.render``)
    SEMANTICS/semantics/<scene>/<name>.png                   class ids, 255 = none (``semantic.prep.semantics_2d``
    SEMANTICS/obj_ids/<scene>/<name>.pth                     with undistort_dslr; SEMANTICS defaults to
                                                             ROOT/semantics_2d); object ids, <= 0 = none

The fisheye ``transforms.json`` is refused (run the toolkit's undistortion first). Frames flagged ``is_bad``
are left out. Poses are turned into OpenCV axes by :func:`eps3d_ros.conventions.opengl_to_opencv_poses`.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eps3d_ros.conventions import opengl_to_opencv_poses

from .dataset_scene import (
    DatasetError,
    LabelSet,
    OneCameraScene,
    check_intrinsics,
    check_pose,
    read_depth_png,
    read_label_png,
    resample_nearest,
)

__all__ = ["ScanNetPPScene", "ScanNetPPDataset"]

IMAGE_DIRS = ("resized_undistorted_images", "undistorted_images")
TRANSFORMS = "nerfstudio/transforms_undistorted.json"
STUFF_NAMES = ("wall", "floor", "ceiling")
IGNORE = 255


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(path, "missing file")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"not valid JSON ({e})") from None


class ScanNetPPScene(OneCameraScene):
    """One ScanNet++ DSLR scene (see the module docstring)."""

    dataset = "scannetpp"

    def __init__(self, scene_dir: str | Path, class_names: list[str] | None = None,
                 semantics_dir: str | Path | None = None) -> None:
        scene_dir = Path(scene_dir)
        super().__init__(scene_dir.parent, scene_dir.name)
        self.dslr = scene_dir / "dslr"
        tpath = self.dslr / TRANSFORMS
        if not tpath.is_file() and (self.dslr / "nerfstudio" / "transforms.json").is_file():
            raise DatasetError(tpath, "missing: only the fisheye nerfstudio/transforms.json is there; run the "
                                      "ScanNet++ toolkit's undistortion (python -m dslr.undistort) first")
        t = _load_json(tpath)
        model = str(t.get("camera_model", "PINHOLE")).upper()
        if model != "PINHOLE" or any(abs(float(t.get(k, 0.0))) > 1e-9 for k in ("k1", "k2", "k3", "k4", "p1", "p2")):
            raise DatasetError(tpath, f"camera model {model} with distortion: undistorted (PINHOLE) images expected")
        try:
            self._size = (int(t["h"]), int(t["w"]))
            K = np.array([[t["fl_x"], 0.0, t["cx"]], [0.0, t["fl_y"], t["cy"]], [0.0, 0.0, 1.0]], np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(tpath, f"needs fl_x, fl_y, cx, cy, w, h ({e})") from None
        # nerfstudio's cx/cy are in pixel-centre coordinates of OpenCV (the toolkit writes OpenCV's new K)
        self._K = check_intrinsics(K, tpath, self._size)
        self.transforms_path = tpath
        image_dir = next((self.dslr / d for d in IMAGE_DIRS if (self.dslr / d).is_dir()), None)
        if image_dir is None:
            raise DatasetError(self.dslr / IMAGE_DIRS[0], f"no undistorted image folder ({' or '.join(IMAGE_DIRS)})")
        self.image_dir = image_dir
        frames = [f for f in list(t.get("frames", [])) + list(t.get("test_frames", []))]
        bad = [f for f in frames if f.get("is_bad")]
        frames = sorted((f for f in frames if not f.get("is_bad")), key=lambda f: str(f.get("file_path")))
        if bad:
            self.notes.append(f"{len(bad)} frame(s) flagged is_bad left out")
        if not frames:
            raise DatasetError(tpath, "no frames")
        self.frame_ids = [Path(str(f["file_path"])).name for f in frames]
        self._matrices = [f.get("transform_matrix") for f in frames]
        sem = Path(semantics_dir) if semantics_dir else None
        self._sem_dir = sem / "semantics" / self.scene_id if sem else None
        self._obj_dir = sem / "obj_ids" / self.scene_id if sem else None
        if class_names is not None and self._sem_dir is not None and self._sem_dir.is_dir():
            names = ["unlabelled", *class_names]
            self.label_set = LabelSet("scannetpp", tuple(names), tuple(i for i, n in enumerate(names) if n in STUFF_NAMES))
            self._num_classes = len(class_names)

    @property
    def has_depth(self) -> bool:
        return (self.dslr / "render_depth").is_dir()

    def files(self, index: int) -> dict[str, Path]:
        n = self.frame_ids[index]
        out = {"rgb": self.image_dir / n, "pose": self.transforms_path,
               "depth": self.dslr / "render_depth" / f"{Path(n).stem}.png"}
        if self.label_set is not None:
            out["semantic"] = self._sem_dir / f"{n}.png"
        if self._obj_dir is not None and self._obj_dir.is_dir():
            out["instance"] = self._obj_dir / f"{n}.pth"
        return out

    def rgb_path(self, index: int) -> Path:
        return self.files(index)["rgb"]

    def read_pose(self, index: int) -> np.ndarray:
        what = f"transform_matrix of frame {self.frame_ids[index]}"
        if self._matrices[index] is None:
            raise DatasetError(self.transforms_path, f"missing pose: frame {self.frame_ids[index]} has no transform_matrix")
        gl = check_pose(self._matrices[index], self.transforms_path, what)
        return opengl_to_opencv_poses(torch.from_numpy(gl)).numpy()

    def read_depth(self, index: int) -> np.ndarray | None:
        if not self.has_depth:
            return None
        return read_depth_png(self.files(index)["depth"], 0.001, self._size)

    def read_semantic(self, index: int) -> np.ndarray | None:
        if self.label_set is None:
            return None
        path = self.files(index)["semantic"]
        a = read_label_png(path, "semantic")
        if a.shape != self._size:
            a = resample_nearest(a, self._size)
        bad = np.unique(a[(a != IGNORE) & (a >= self._num_classes)])
        if bad.size:
            raise DatasetError(path, f"unknown label id(s) {bad[:8].tolist()} (the class list has {self._num_classes})")
        return np.where(a == IGNORE, 0, a + 1).astype(np.int64)

    def read_instance(self, index: int) -> np.ndarray | None:
        path = self.files(index).get("instance")
        if path is None:
            return None
        if not path.is_file():
            raise DatasetError(path, "missing object-id file")
        try:
            a = np.asarray(load_numpy_pth(path))
        except pickle.UnpicklingError as e:
            raise DatasetError(path, "refused: not a plain numpy array (the file's pickle would build or call "
                                     f"something else, and object-id files are read without running code): {e}") from None
        except Exception as e:  # noqa: BLE001 - any other unpickling failure is a broken file
            raise DatasetError(path, f"not an object-id array saved by the ScanNet++ toolkit ({e})") from None
        if a.ndim != 2:
            raise DatasetError(path, f"object ids must be [H, W], got shape {a.shape}")
        a = np.where(a > 0, a, 0).astype(np.int64)
        return a if a.shape == self._size else resample_nearest(a, self._size)


def load_numpy_pth(path: str | Path) -> Any:
    """A numpy array saved with ``torch.save`` (the ScanNet++ toolkit's ``obj_ids/*.pth``), read with
    ``weights_only=True``: only numpy's array reconstructors and dtypes are allowed besides tensors, under their
    numpy 2 and numpy 1 names, so a crafted file cannot run code."""
    try:
        from numpy._core.multiarray import _reconstruct  # numpy 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct  # numpy 1 (a system ROS's)

    dtypes = [type(np.dtype(t)) for t in (np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
                                          np.uint64, np.int64, np.float16, np.float32, np.float64)]
    allowed = [(_reconstruct, "numpy._core.multiarray._reconstruct"), (_reconstruct, "numpy.core.multiarray._reconstruct"),
               np.ndarray, np.dtype, *dtypes]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


class ScanNetPPDataset:
    """A ScanNet++ root (see the module docstring)."""

    name = "scannetpp"

    def __init__(self, root: str | Path, semantics_dir: str | Path | None = None,
                 classes_file: str | Path | None = None) -> None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetError(root, "dataset root not found")
        self.root = root
        self.scenes_dir = root / "data" if (root / "data").is_dir() else root
        self.semantics_dir = Path(semantics_dir) if semantics_dir else self.root / "semantics_2d"
        cf = Path(classes_file) if classes_file else self.root / "metadata" / "semantic_benchmark" / "top100.txt"
        self.class_names = [s.strip() for s in cf.read_text().splitlines() if s.strip()] if cf.is_file() else None

    def scene_ids(self) -> list[str]:
        ids = sorted(p.name for p in self.scenes_dir.iterdir() if (p / "dslr").is_dir())
        if not ids:
            raise DatasetError(self.scenes_dir, "no ScanNet++ scenes (<scene>/dslr/)")
        return ids

    def split(self, name: str) -> list[str]:
        p = self.root / "splits" / f"nvs_sem_{name}.txt"
        if not p.is_file():
            raise DatasetError(p, "missing split file (ScanNet++ ships splits/nvs_sem_train.txt and nvs_sem_val.txt)")
        return [s.strip() for s in p.read_text().split() if s.strip()]

    def scene(self, scene_id: str) -> ScanNetPPScene:
        d = self.scenes_dir / scene_id
        if not (d / "dslr").is_dir():
            raise DatasetError(d, f"scene {scene_id!r} not found (no dslr/ folder)")
        if self.class_names is None and (self.semantics_dir / "semantics" / scene_id).is_dir():
            raise DatasetError(self.root / "metadata" / "semantic_benchmark" / "top100.txt",
                               "missing class list: the scene has 2D semantics but they cannot be named without it "
                               "(--classes-file)")
        return ScanNetPPScene(d, self.class_names, self.semantics_dir)
