"""One interface over real datasets: a scene is an ordered list of posed frames, read lazily.

Every reader (:mod:`.scannet`, :mod:`.scannetpp`, :mod:`.replica`, :mod:`.transforms_capture`) turns its
dataset's files into :class:`FrameData` in the conventions of :mod:`eps3d_ros.conventions`, converting
only through that module:

* ``rgb [H, W, 3] uint8``; ``K [3, 3]`` in pixels of that image, OpenCV pixel centres (pixel ``(u, v)`` is
  at image coordinates ``(u, v)``, as ``sensor_msgs/CameraInfo`` and ``Frame.K``);
* ``pose [4, 4]`` camera-to-world, OpenCV camera axes, metres (``extrinsics`` gives camera-from-world);
* ``depth [H, W] float32`` metres at the colour image's pixels, 0 = no measurement;
* ``semantic [H, W] int64``: row of the scene's :class:`LabelSet` (0 = unlabelled), ``instance [H, W]
  int64`` object ids (0 = none), where the dataset has them.

A reader opens a scene cheaply (file lists, intrinsics, poses); images are read only by
:meth:`SceneReader.frame`. Problems raise :class:`DatasetError`, whose message starts with the file;
:meth:`SceneReader.check` reads every file and collects *every* problem instead of stopping at the first.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "DatasetError",
    "OneCameraScene",
    "Issue",
    "LabelSet",
    "FrameData",
    "SceneReader",
    "ROLES",
    "natural_key",
    "read_rgb",
    "read_depth_png",
    "read_label_png",
    "image_size",
    "check_pose",
    "resample_nearest",
    "resample_to_camera",
]

ROLES = ("rgb", "pose", "depth", "semantic", "instance")


class DatasetError(ValueError):
    """A file of a dataset that cannot be used; ``path`` names it and the message starts with it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Issue:
    """One problem found by :meth:`SceneReader.check`: the file and what is wrong with it."""

    path: str
    problem: str
    fatal: bool = True  # False: a warning (the scene is still usable)

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" + ("" if self.fatal else " (warning)")


@dataclass(frozen=True)
class LabelSet:
    """Class names of a dataset's label images: ``names[k]`` is class id ``k``; 0 is "unlabelled"."""

    name: str
    names: tuple[str, ...]
    stuff: tuple[int, ...] = ()  # ids of region classes (wall, floor, ...): one segment, no instances

    @property
    def things(self) -> tuple[int, ...]:
        return tuple(i for i in range(1, len(self.names)) if i not in self.stuff)

    def ids(self, names: Sequence[str]) -> list[int]:
        index = {n: i for i, n in enumerate(self.names)}
        return [index[n] for n in names if n in index]


@dataclass
class FrameData:
    """One frame in the conventions of the module docstring."""

    frame_id: str
    rgb: np.ndarray  # [H, W, 3] uint8
    K: np.ndarray  # [3, 3] float64 pixels, OpenCV pixel centres
    pose: np.ndarray  # [4, 4] float64 camera-to-world, OpenCV axes, metres
    depth: np.ndarray | None = None  # [H, W] float32 metres, 0 = none
    semantic: np.ndarray | None = None  # [H, W] int64 LabelSet id, 0 = unlabelled
    instance: np.ndarray | None = None  # [H, W] int64, 0 = none

    @property
    def size(self) -> tuple[int, int]:
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    @property
    def extrinsics(self) -> np.ndarray:
        """Camera-from-world ``[3, 4]`` float64."""
        import torch

        from eps3d_ros.conventions import poses_to_extrinsics

        return poses_to_extrinsics(torch.from_numpy(self.pose)).numpy()

    def world_points(self) -> np.ndarray:
        """``[H, W, 3]`` float64 world points of the measured depth (NaN where there is none)."""
        if self.depth is None:
            raise ValueError(f"frame {self.frame_id} has no depth")
        H, W = self.depth.shape
        v, u = np.mgrid[0:H, 0:W].astype(np.float64)
        d = self.depth.astype(np.float64)
        cam = np.stack([(u - self.K[0, 2]) / self.K[0, 0] * d, (v - self.K[1, 2]) / self.K[1, 1] * d, d], -1)
        world = cam @ self.pose[:3, :3].T + self.pose[:3, 3]
        world[d <= 0] = np.nan
        return world


class SceneReader(ABC):
    """A scene of a dataset. Subclasses list their frames in ``__init__`` and implement the ``read_*`` methods,
    each of which reads one file (or returns ``None`` where the dataset has no such file) and raises
    :class:`DatasetError` naming it."""

    dataset: ClassVar[str] = ""

    def __init__(self, root: str | Path, scene_id: str) -> None:
        self.root = Path(root)
        self.scene_id = scene_id
        self.frame_ids: list[str] = []
        self.label_set: LabelSet | None = None
        self.notes: list[str] = []  # what the reader decided (skipped frames, assumed intrinsics, ...)

    def __len__(self) -> int:
        return len(self.frame_ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scene_id!r}, {len(self)} frames)"

    @property
    def has_depth(self) -> bool:
        return False

    @property
    def has_labels(self) -> bool:
        return self.label_set is not None

    # ------------------------------------------------------------------------------- one file each
    @abstractmethod
    def read_rgb(self, index: int) -> np.ndarray: ...

    @abstractmethod
    def read_pose(self, index: int) -> np.ndarray: ...

    @abstractmethod
    def intrinsics(self, index: int) -> np.ndarray:
        """``K [3, 3]`` of frame ``index``'s colour image (pixels, OpenCV centres)."""

    def frame_size(self, index: int) -> tuple[int, int]:
        """``(H, W)`` of frame ``index``'s colour image (readers that know it from their files need no decoding)."""
        return tuple(self.read_rgb(index).shape[:2])

    def read_depth(self, index: int) -> np.ndarray | None:
        return None

    def read_semantic(self, index: int) -> np.ndarray | None:
        return None

    def read_instance(self, index: int) -> np.ndarray | None:
        return None

    def files(self, index: int) -> dict[str, Path]:
        """The files frame ``index`` is read from, by role (for reports)."""
        return {}

    # ------------------------------------------------------------------------------------ frames
    def frame(self, index: int) -> FrameData:
        """Frame ``index`` with everything the dataset has for it."""
        if not 0 <= index < len(self):
            raise IndexError(f"{self.scene_id}: frame {index} of {len(self)}")
        rgb = self.read_rgb(index)
        return FrameData(
            frame_id=self.frame_ids[index], rgb=rgb, K=np.asarray(self.intrinsics(index), np.float64),
            pose=self.read_pose(index), depth=self.read_depth(index), semantic=self.read_semantic(index),
            instance=self.read_instance(index),
        )

    def frames(self, indices: Sequence[int] | None = None) -> Iterator[FrameData]:
        for i in range(len(self)) if indices is None else indices:
            yield self.frame(int(i))

    def poses(self) -> np.ndarray:
        """``[N, 4, 4]`` camera-to-world of every frame (raises on the first bad pose file)."""
        return np.stack([self.read_pose(i) for i in range(len(self))]) if len(self) else np.zeros((0, 4, 4))

    def check(self, decode: bool = True, progress: Any = None) -> list[Issue]:
        """Every problem of the scene's files: each role of each frame is read on its own, so one broken
        file never hides another. ``decode=False`` only checks that the files exist (quick)."""
        issues: list[Issue] = []
        readers = {"rgb": self.read_rgb, "pose": self.read_pose, "depth": self.read_depth,
                   "semantic": self.read_semantic, "instance": self.read_instance}
        for i in range(len(self)):
            if not decode:
                issues += [Issue(str(p), "missing file") for p in self.files(i).values() if not p.exists()]
            else:
                for role in ROLES:
                    try:
                        readers[role](i)
                    except DatasetError as e:
                        issues.append(Issue(e.path, e.problem))
            if progress is not None:
                progress(1)
        return issues


class OneCameraScene(SceneReader):
    """A scene whose frames share one camera: one image size ``self._size`` ``(H, W)`` and one ``self._K``, both
    set by the subclass's ``__init__``; the colour image of a frame is the file :meth:`rgb_path` names."""

    _size: tuple[int, int]
    _K: np.ndarray

    @abstractmethod
    def rgb_path(self, index: int) -> Path: ...

    def frame_size(self, index: int) -> tuple[int, int]:
        return self._size

    def intrinsics(self, index: int) -> np.ndarray:
        return self._K

    def read_rgb(self, index: int) -> np.ndarray:
        return read_rgb(self.rgb_path(index), self._size)


# ------------------------------------------------------------------------------ shared file readers
def natural_key(name: str) -> list[Any]:
    """Sort key comparing the numbers in names numerically (``2.jpg`` before ``10.jpg``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` from an image file's header (no decoding)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DatasetError(path, "missing file")
    try:
        with Image.open(path) as im:
            return int(im.height), int(im.width)
    except (UnidentifiedImageError, OSError) as e:
        raise DatasetError(path, f"not a readable image ({e})") from None


def _open_array(path: Path, what: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DatasetError(path, f"missing {what} file")
    try:
        with Image.open(path) as im:
            if what == "colour":
                return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
            return np.asarray(im).copy()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DatasetError(path, f"not a readable {what} image ({e})") from None


def read_rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """``[H, W, 3] uint8``; ``size`` ``(H, W)``: the size the scene's intrinsics are for (else an error)."""
    rgb = _open_array(Path(path), "colour")
    if size is not None and rgb.shape[:2] != tuple(size):
        raise DatasetError(path, f"wrong image size {rgb.shape[1]}x{rgb.shape[0]}: the scene's colour images and "
                                 f"intrinsics are {size[1]}x{size[0]}")
    return rgb


def read_depth_png(path: Path, scale: float, size: tuple[int, int] | None = None) -> np.ndarray:
    """A 16-bit depth PNG in ``scale`` metres per unit → ``[H, W] float32`` metres (0 = none)."""
    a = _open_array(Path(path), "depth")
    if a.ndim != 2 or a.dtype.kind not in "iu" or a.dtype.itemsize < 2:
        raise DatasetError(path, f"a depth image must be one 16-bit channel (units of {scale:g} m), got "
                                 f"{a.dtype} with shape {a.shape} (wrong units or not a depth image)")
    if size is not None and a.shape != tuple(size):
        raise DatasetError(path, f"wrong image size {a.shape[1]}x{a.shape[0]}: the scene's depth images are "
                                 f"{size[1]}x{size[0]}")
    return (a.astype(np.float32) * np.float32(scale)).astype(np.float32)


def read_label_png(path: Path, what: str) -> np.ndarray:
    """A single-channel integer label PNG → ``[H, W] int64``."""
    a = _open_array(Path(path), what)
    if a.ndim != 2 or a.dtype.kind not in "iub":
        raise DatasetError(path, f"a {what} image must be one integer channel, got {a.dtype} with shape {a.shape}")
    return a.astype(np.int64)


def check_pose(m: Any, path: str | Path, what: str = "camera-to-world pose") -> np.ndarray:
    """``[4, 4] float64``: finite, a rotation (orthonormal, det +1), last row ``0 0 0 1``; else an error."""
    try:
        m = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(path, f"{what} is not a matrix of numbers") from None
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise DatasetError(path, f"{what} must be 4x4, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise DatasetError(path, f"{what} has NaN or infinite values (an invalid pose: leave the frame out)")
    R = m[:3, :3]
    if not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6) or not np.allclose(R.T @ R, np.eye(3), atol=2e-3) \
            or np.linalg.det(R) < 0:
        raise DatasetError(path, f"{what} is not a rigid transform: {np.round(m, 4).tolist()}")
    return m


def resample_nearest(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest resample of ``[h, w]`` to ``size`` by pixel centres (same camera, other resolution)."""
    h, w = a.shape[:2]
    H, W = size
    if (h, w) == (H, W):
        return a
    rows = np.minimum(((np.arange(H) + 0.5) * h / H).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(W) + 0.5) * w / W).astype(np.int64), w - 1)
    return np.ascontiguousarray(a[rows[:, None], cols[None, :]])


def resample_to_camera(a: np.ndarray, K_src: np.ndarray, K_dst: np.ndarray, size: tuple[int, int],
                       fill: float | int = 0) -> np.ndarray:
    """Nearest resample of an image ``a`` of camera ``K_src`` onto the pixels of a co-located camera ``K_dst``
    of ``size`` (the ray through each target pixel centre picks the source pixel it crosses)."""
    H, W = size
    h, w = a.shape[:2]
    u = (np.arange(W) - K_dst[0, 2]) / K_dst[0, 0] * K_src[0, 0] + K_src[0, 2]
    v = (np.arange(H) - K_dst[1, 2]) / K_dst[1, 1] * K_src[1, 1] + K_src[1, 2]
    cols, rows = np.floor(u + 0.5).astype(np.int64), np.floor(v + 0.5).astype(np.int64)
    ok_c, ok_r = (cols >= 0) & (cols < w), (rows >= 0) & (rows < h)
    out = a[np.clip(rows, 0, h - 1)[:, None], np.clip(cols, 0, w - 1)[None, :]].copy()
    out[~(ok_r[:, None] & ok_c[None, :])] = fill
    return out


def read_matrix_txt(path: Path, shape: tuple[int, int], what: str) -> np.ndarray:
    """A whitespace-separated text matrix (``inf``/``nan`` allowed: the caller checks)."""
    if not path.is_file():
        raise DatasetError(path, f"missing {what} file")
    try:
        vals = [float(t) for t in path.read_text().split()]
    except (ValueError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"{what} is not a text matrix of numbers ({e})") from None
    if len(vals) != shape[0] * shape[1]:
        raise DatasetError(path, f"{what} must hold {shape[0]}x{shape[1]} numbers, got {len(vals)}")
    return np.asarray(vals, np.float64).reshape(shape)


def check_intrinsics(K: np.ndarray, path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A pinhole ``K``: finite positive focal lengths; the principal point inside the image when the size is known."""
    K = np.asarray(K, np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or not (K[0, 0] > 0 and K[1, 1] > 0) or K[2, 2] != 1:
        raise DatasetError(path, f"not pinhole intrinsics [[fx 0 cx] [0 fy cy] [0 0 1]]: {np.round(K, 4).tolist()}")
    if size is not None:
        H, W = size
        if not (0 <= K[0, 2] <= W and 0 <= K[1, 2] <= H):
            raise DatasetError(path, f"principal point ({K[0, 2]:.1f}, {K[1, 2]:.1f}) lies outside the {W}x{H} image "
                                     "(intrinsics for another resolution?)")
    return K


def fov_intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Square-pixel ``K`` of a horizontal field of view, principal point at the centre (OpenCV centres)."""
    f = width / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
