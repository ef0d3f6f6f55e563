"""ScanNet v2 scenes in the 2D export layout, and in the layout of EPS3D's released ScanNet test data.

**Export layout** (what ScanNet's ``SensReader`` and the 2D label export write), one folder per scene under
``ROOT`` (or ``ROOT/scans``)::

    ROOT/scannetv2-labels.combined.tsv         raw label id → NYU40 / ScanNet200 (see scannet_labels)
    ROOT/scannetv2_{train,val,test}.txt         official splits (from ScanNet's Tasks/Benchmark), optional
    ROOT/sceneXXXX_YY/color/<n>.jpg             colour, 1296x968
                      depth/<n>.png             uint16 millimetres (0 = none), 640x480
                      pose/<n>.txt              4x4 camera-to-world, OpenCV axes, metres (-inf rows = invalid)
                      intrinsic/intrinsic_color.txt, intrinsic_depth.txt   4x4, K in the top-left 3x3
                      label-filt/<n>.png        uint16 raw ScanNet label ids (optional)
                      instance-filt/<n>.png     uint8 object ids, 0 = none (optional)

Depth is brought onto the colour image's pixels through the two intrinsics (the cameras are treated as
co-located, as ScanNet's registered depth is); label images of any resolution with the colour aspect are
resampled (nearest) to the colour size.

**EPS3D test layout** (``scannet_test`` of the EPS3D release, read by its ``scripts/data_utils/testdata.py``)::

    ROOT/sceneXXXX_YY/images/<name>.jpg, images/<name>.npz (camera_pose: 4x4 camera-to-world,
                      camera_intrinsics: 3x3), depths/<name>.png (mm), labels/<name>.png (raw ids),
                      instance/<name>.png

Frames are sorted by name with numbers compared numerically (``2`` before ``10``) in the export layout and as
plain strings in the EPS3D test layout (as the released scripts sort them, which their view choice depends on).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset_scene import (
    DatasetError,
    SceneReader,
    check_intrinsics,
    check_pose,
    image_size,
    natural_key,
    read_depth_png,
    read_label_png,
    read_matrix_txt,
    read_rgb,
    resample_nearest,
    resample_to_camera,
)
from .scannet_labels import TSV_NAME, ScanNetLabelMap

__all__ = ["ScanNetScene", "ScanNetDataset", "LAYOUTS", "EXCLUDED_TEST_SCENES"]

LAYOUTS = ("export", "eps3d-test")
# Scenes the EPS3D release's test loader leaves out.
EXCLUDED_TEST_SCENES = ("scene0696_02", "scene0692_00", "scene0693_00")
DEPTH_SCALE = 0.001


def detect_layout(scene_dir: Path) -> str:
    if (scene_dir / "color").is_dir():
        return "export"
    if (scene_dir / "images").is_dir():
        return "eps3d-test"
    raise DatasetError(scene_dir, "not a ScanNet scene folder (expected color/ + depth/ + pose/ + intrinsic/ of the "
                                  "2D export, or images/ of the EPS3D test data)")


class ScanNetScene(SceneReader):
    """One ScanNet scene (see the module docstring for the layouts)."""

    dataset = "scannet"

    def __init__(self, scene_dir: str | Path, label_map: ScanNetLabelMap | None = None,
                 invalid_poses: str = "error") -> None:
        scene_dir = Path(scene_dir)
        super().__init__(scene_dir.parent, scene_dir.name)
        if not scene_dir.is_dir():
            raise DatasetError(scene_dir, "scene folder not found")
        if invalid_poses not in ("error", "skip"):
            raise ValueError(f"invalid_poses must be 'error' or 'skip', got {invalid_poses!r}")
        self.dir = scene_dir
        self.layout = detect_layout(scene_dir)
        self.label_map = label_map
        export = self.layout == "export"
        self._colour_dir = scene_dir / ("color" if export else "images")
        names = [p.stem for p in self._colour_dir.iterdir() if p.suffix.lower() == ".jpg"]
        self.frame_ids = sorted(names, key=natural_key if export else None)
        if not self.frame_ids:
            raise DatasetError(self._colour_dir, "no .jpg colour images")
        self._label_dir = scene_dir / ("label-filt" if export else "labels")
        self._instance_dir = scene_dir / ("instance-filt" if export else "instance")
        self._depth_dir = scene_dir / ("depth" if export else "depths")
        if self._label_dir.is_dir() and label_map is not None:
            self.label_set = label_map.label_set
        self._size = image_size(self._colour_dir / f"{self.frame_ids[0]}.jpg")
        self._depth_size: tuple[int, int] | None = None
        if export:
            self._K = check_intrinsics(self._matrix(scene_dir / "intrinsic" / "intrinsic_color.txt"),
                                       scene_dir / "intrinsic" / "intrinsic_color.txt", self._size)
            depth_k = scene_dir / "intrinsic" / "intrinsic_depth.txt"
            self._K_depth = check_intrinsics(self._matrix(depth_k), depth_k) if depth_k.is_file() else None
        if invalid_poses == "skip":
            self._drop_invalid_poses()

    @staticmethod
    def _matrix(path: Path) -> np.ndarray:
        return read_matrix_txt(path, (4, 4), "intrinsics")[:3, :3]

    def _drop_invalid_poses(self) -> None:
        keep = []
        for i in range(len(self.frame_ids)):
            try:
                self.read_pose(i)
                keep.append(self.frame_ids[i])
            except DatasetError as e:
                if "NaN or infinite" not in e.problem:
                    raise
        if len(keep) < len(self.frame_ids):
            self.notes.append(f"{len(self.frame_ids) - len(keep)} frame(s) with an invalid (inf/NaN) pose left out")
        self.frame_ids = keep

    # ------------------------------------------------------------------------------------- files
    def files(self, index: int) -> dict[str, Path]:
        n = self.frame_ids[index]
        out = {"rgb": self._colour_dir / f"{n}.jpg", "depth": self._depth_dir / f"{n}.png"}
        out["pose"] = self.dir / "pose" / f"{n}.txt" if self.layout == "export" else self._colour_dir / f"{n}.npz"
        if self.label_set is not None:
            out["semantic"] = self._label_dir / f"{n}.png"
        if self._instance_dir.is_dir():
            out["instance"] = self._instance_dir / f"{n}.png"
        return out

    @property
    def has_depth(self) -> bool:
        return self._depth_dir.is_dir()

    def _npz(self, index: int) -> dict[str, np.ndarray]:
        path = self.files(index)["pose"]
        if not path.is_file():
            raise DatasetError(path, "missing camera file (camera_pose + camera_intrinsics)")
        try:
            with np.load(path) as z:
                return {k: z[k] for k in ("camera_pose", "camera_intrinsics")}
        except (KeyError, ValueError, OSError) as e:
            raise DatasetError(path, f"not a camera file with camera_pose and camera_intrinsics ({e})") from None

    def frame_size(self, index: int) -> tuple[int, int]:
        return self._size

    def intrinsics(self, index: int) -> np.ndarray:
        if self.layout == "export":
            return self._K
        path = self.files(index)["pose"]
        return check_intrinsics(np.asarray(self._npz(index)["camera_intrinsics"], np.float64).reshape(3, 3), path,
                                self._size)

    def read_rgb(self, index: int) -> np.ndarray:
        return read_rgb(self.files(index)["rgb"], self._size)

    def read_pose(self, index: int) -> np.ndarray:
        path = self.files(index)["pose"]
        if self.layout == "export":
            if not path.is_file():
                raise DatasetError(path, "missing pose file")
            return check_pose(read_matrix_txt(path, (4, 4), "pose"), path)
        return check_pose(self._npz(index)["camera_pose"], path)

    def read_depth(self, index: int) -> np.ndarray | None:
        if not self.has_depth:
            return None
        path = self.files(index)["depth"]
        depth = read_depth_png(path, DEPTH_SCALE, self._depth_size)
        if self._depth_size is None:
            self._depth_size = depth.shape
        if depth.shape == self._size:
            return depth
        self._check_aspect(depth.shape, path, "depth")
        if self.layout == "export" and self._K_depth is not None:
            return resample_to_camera(depth, self._K_depth, self._K, self._size)
        return resample_nearest(depth, self._size)

    def _check_aspect(self, shape: tuple[int, ...], path: Path, what: str) -> None:
        H, W = self._size
        if abs(shape[0] / shape[1] - H / W) > 0.01 * H / W:
            raise DatasetError(path, f"wrong image size {shape[1]}x{shape[0]}: the {what} image does not have the "
                                     f"{W}x{H} colour images' aspect ratio")

    def _label(self, path: Path, what: str) -> np.ndarray:
        a = read_label_png(path, what)
        if a.shape != self._size:
            self._check_aspect(a.shape, path, what)
            a = resample_nearest(a, self._size)
        return a

    def read_semantic(self, index: int) -> np.ndarray | None:
        if self.label_set is None:
            return None
        path = self.files(index)["semantic"]
        return self.label_map(self._label(path, "label"), path)

    def read_instance(self, index: int) -> np.ndarray | None:
        if not self._instance_dir.is_dir():
            return None
        return self._label(self.files(index)["instance"], "instance")


class ScanNetDataset:
    """A ScanNet root: scenes, official splits, the label table."""

    name = "scannet"

    def __init__(self, root: str | Path, label_set: str = "nyu40", invalid_poses: str = "error") -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(self.root, "dataset root not found")
        self.scenes_dir = self.root / "scans" if (self.root / "scans").is_dir() else self.root
        self.invalid_poses = invalid_poses
        tsv = next((p for p in (self.root / TSV_NAME, self.scenes_dir / TSV_NAME) if p.is_file()), None)
        self.label_map = ScanNetLabelMap(tsv, label_set) if tsv is not None else None
        self.label_set = self.label_map.label_set if self.label_map else None

    def scene_ids(self) -> list[str]:
        ids = sorted(p.name for p in self.scenes_dir.iterdir()
                     if p.is_dir() and ((p / "color").is_dir() or (p / "images").is_dir()))
        if not ids:
            raise DatasetError(self.scenes_dir, "no ScanNet scene folders (sceneXXXX_YY with color/ or images/)")
        return ids

    def split(self, name: str) -> list[str]:
        """The official split ``name`` (train, val, test): ``scannetv2_<name>.txt`` in the root."""
        for p in (self.root / f"scannetv2_{name}.txt", self.root / "splits" / f"scannetv2_{name}.txt"):
            if p.is_file():
                return [s.strip() for s in p.read_text().split() if s.strip()]
        raise DatasetError(self.root / f"scannetv2_{name}.txt",
                           "missing split file (copy ScanNet's Tasks/Benchmark/scannetv2_<split>.txt into the root)")

    def scene(self, scene_id: str) -> ScanNetScene:
        d = self.scenes_dir / scene_id
        if not d.is_dir():
            raise DatasetError(d, f"scene {scene_id!r} not found in {self.scenes_dir}")
        label_map = self.label_map
        if label_map is None and ((d / "label-filt").is_dir() or (d / "labels").is_dir()):
            raise DatasetError(self.root / TSV_NAME, "missing label table: the scene has label images but they "
                                                     "cannot be named without it")
        return ScanNetScene(d, label_map, self.invalid_poses)
