"""Training samples from real datasets (``data.kind: scannet | scannetpp | replica | transforms``).

Item ``i`` is a window of one scene (:mod:`eps3d_ros.data.windows`: frames ``stride`` apart, or chosen by
view overlap), read from disk when asked for (a small LRU cache of finished samples; nothing else is held).
Each frame is centre-cropped to the training aspect ratio and resized (RGB bilinear; depth, labels and
masks nearest), the intrinsics following the crop and the scale exactly. Cameras: camera-from-world in the
dataset's world frame, metres; intrinsics moved to the renderer's pixel-centre convention
(:func:`eps3d_ros.conventions.intrinsics_for_pixel_centres`), as :class:`~.datasets.Sample` holds them.

Supervision, one of:

* labels (``teacher.kind: ground_truth``): each scene's label ids are mapped to one class list for the whole
  dataset (the union of the scenes' names; Replica scenes name their own classes), instance ids as given;
* teacher files (``data.teachers: DIR``, ``teacher.kind: files``): ``DIR/<scene_id>/teacher.npz`` (or
  ``DIR/teacher.npz`` for a one-scene dataset) as ``eps3d teachers`` writes them, read lazily by frame id.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from eps3d_ros.conventions import intrinsics_for_pixel_centres, poses_to_extrinsics

from .datasets import Sample, resize_sample
from .teacher_store import TEACHER_NPZ, TeacherFile

__all__ = ["SceneDataset", "center_crop_sample"]

STUFF_NAMES = ("wall", "floor", "ceiling")


def _crop_box(size: tuple[int, int], aspect: float) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of the largest centred crop of ``size`` with ``h / w == aspect``."""
    H, W = size
    if H / W > aspect:
        h = max(1, round(W * aspect))
        return (H - h) // 2, 0, h, W
    w = max(1, round(H / aspect))
    return 0, (W - w) // 2, H, w


def _crop_fraction(t: torch.Tensor | None, box: tuple[int, int, int, int], size: tuple[int, int]) -> torch.Tensor | None:
    """Crop ``[V, (C,) h, w]`` maps of another resolution to the same fraction of the frame as ``box``."""
    if t is None:
        return None
    H, W = size
    h, w = t.shape[-2:]
    top, left, ch, cw = box
    r0, r1 = round(top * h / H), round((top + ch) * h / H)
    c0, c1 = round(left * w / W), round((left + cw) * w / W)
    return t[..., r0:max(r1, r0 + 1), c0:max(c1, c0 + 1)]


def center_crop_sample(sample: Sample, height: int, width: int) -> Sample:
    """Centre crop of ``sample`` to the aspect of ``height x width`` (no resize); intrinsics follow the crop."""
    size = sample.size
    box = _crop_box(size, height / width)
    top, left, h, w = box
    if (h, w) == size:
        return sample

    def crop(t):
        return None if t is None else t[..., top:top + h, left:left + w]

    K = None
    if sample.intrinsics is not None:
        K = sample.intrinsics.clone()
        K[:, 0, 2] -= left
        K[:, 1, 2] -= top
    masks = sample.teacher_masks
    masks = crop(masks) if masks is None or masks.shape[-2:] == size else _crop_fraction(masks, box, size)
    return replace(sample, images=crop(sample.images), depth=crop(sample.depth), intrinsics=K,
                   semantic=crop(sample.semantic), instance=crop(sample.instance), teacher_masks=masks,
                   teacher_features=_crop_fraction(sample.teacher_features, box, size))


class SceneDataset:
    """Windows of dataset scenes as training :class:`~.datasets.Sample` s (see the module docstring)."""

    def __init__(self, kind: str, root: str | Path, scenes: list[str] | None = None, split: str = "",
                 options: dict[str, Any] | None = None, windows: Any = None, height: int = 112, width: int = 112,
                 teachers: str | Path | None = None, labels: bool = True, cache_size: int = 64) -> None:
        from eps3d_ros.data.datasets import open_dataset, select_scenes
        from eps3d_ros.data.windows import WindowConfig, sample_windows

        self.kind, self.height, self.width = kind, int(height), int(width)
        self.dataset = open_dataset(kind, root, **(options or {}))
        ids = select_scenes(self.dataset, scenes or None, split or None)
        self.scenes = [self.dataset.scene(s) for s in ids]
        self.window_config = windows or WindowConfig()
        self.windows: list[tuple[int, Any]] = []
        for k, scene in enumerate(self.scenes):
            cams = self._camera(scene)
            found = sample_windows(len(scene), self.window_config, cams)
            self.windows += [(k, w) for w in found]
        if not self.windows:
            raise ValueError(f"no window of {self.window_config.num_views} views in {len(self.scenes)} scene(s) of "
                             f"{root} (scenes too short for data.window settings?)")
        self.teacher_dir = Path(teachers) if teachers else None
        self._teachers: dict[int, TeacherFile] = {}
        self.class_names = self.stuff = None
        self._luts: list[np.ndarray | None] = []
        if labels and self.teacher_dir is None:
            self._class_table()
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[tuple[int, int, int], Sample] = OrderedDict()

    @staticmethod
    def _camera(scene):
        def camera(i: int):
            return scene.read_pose(i), scene.intrinsics(i), scene.frame_size(i)

        return camera

    def _class_table(self) -> None:
        """One class list over the scenes (union of their names) and each scene's id → class LUT."""
        names = ["unlabelled"]
        for s in self.scenes:
            if s.label_set is None:
                raise ValueError(f"{self.kind} scene {s.scene_id} has no labels: ground-truth teachers need label "
                                 "images (or give data.teachers: the output folder of `eps3d teachers`)")
            for n in s.label_set.names[1:]:
                if n not in names:
                    names.append(n)
        index = {n: i for i, n in enumerate(names)}
        self._luts = [np.array([0] + [index[n] for n in s.label_set.names[1:]], np.int64) for s in self.scenes]
        self.class_names = names
        self.stuff = [index[n] for n in STUFF_NAMES if n in index]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> Sample:
        return self.at_size(index, self.height, self.width)

    def teacher(self, k: int) -> TeacherFile:
        if k not in self._teachers:
            sid = self.scenes[k].scene_id
            folder = self.teacher_dir / sid
            if not (folder / TEACHER_NPZ).is_file() and len(self.scenes) == 1:
                folder = self.teacher_dir
            if not (folder / TEACHER_NPZ).is_file():
                raise FileNotFoundError(f"no teacher files for scene {sid}: expected {self.teacher_dir / sid / TEACHER_NPZ} "
                                        f"(eps3d teachers ... --out {self.teacher_dir / sid})")
            self._teachers[k] = TeacherFile(folder)
        return self._teachers[k]

    def _read(self, index: int) -> Sample:
        k, window = self.windows[index]
        scene = self.scenes[k]
        frames = [scene.frame(i) for i in window.frames]
        sizes = {f.size for f in frames}
        if len(sizes) > 1:
            raise ValueError(f"{scene.scene_id}: frames {[f.frame_id for f in frames]} differ in size {sorted(sizes)}")
        K = torch.from_numpy(np.stack([f.K for f in frames])).double()
        poses = torch.from_numpy(np.stack([f.pose for f in frames])).double()
        sample = Sample(
            images=torch.from_numpy(np.stack([f.rgb for f in frames])).permute(0, 3, 1, 2).float() / 255.0,
            depth=None if frames[0].depth is None else torch.from_numpy(np.stack([f.depth for f in frames])),
            intrinsics=intrinsics_for_pixel_centres(K).float(),
            extrinsics=poses_to_extrinsics(poses).float(),
            name=f"{scene.scene_id}[{','.join(f.frame_id for f in frames)}]",
        )
        if self.class_names is not None:
            lut = self._luts[k]
            sample.semantic = torch.from_numpy(np.stack([lut[f.semantic] for f in frames]))
            if frames[0].instance is not None:
                sample.instance = torch.from_numpy(np.stack([f.instance for f in frames]))
            else:
                sample.instance = torch.zeros_like(sample.semantic)
        if self.teacher_dir is not None:
            tf = self.teacher(k)
            feats, masks = tf.read(tf.rows([f.frame_id for f in frames]))
            sample.teacher_features = torch.from_numpy(feats).permute(0, 3, 1, 2).contiguous()
            sample.teacher_masks = torch.from_numpy(masks)
        return sample

    def at_size(self, index: int, height: int, width: int) -> Sample:
        """Window ``index`` cropped to the aspect of ``height x width`` and resized to it."""
        key = (index, int(height), int(width))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        sample = center_crop_sample(self._read(index), height, width)
        if sample.teacher_masks is not None and sample.teacher_masks.shape[-2:] != sample.size:
            m = sample.teacher_masks[:, None].float()
            sample.teacher_masks = F.interpolate(m, size=sample.size, mode="nearest")[:, 0].long()
        sample = resize_sample(sample, height, width)
        if self.cache_size > 0:
            self._cache[key] = sample
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return sample
