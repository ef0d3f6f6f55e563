"""Training samples: windows of views of one scene, with whatever ground truth / teacher data exists.

A :class:`Sample` holds ``V = context + target`` views. The context views go through the network;
the target views are held out and only rendered into (they need cameras). Which views are targets
is drawn per step (:meth:`Sample.split`), from the *interior* of the window, so targets are
interpolated between context views rather than extrapolated.

* :class:`SyntheticDataset` — seeded procedural scenes (:func:`eps3d_ros.data.synthetic.generate_scene`),
  generated on demand (about 30 ms for 4 views of 112x112) and kept in a bounded in-memory cache.
  Item ``i`` is the scene of seed ``seeds[i]``; the same seed always gives the same scene.
* :class:`RecordedDataset` — recordings on disk with precomputed teacher files (format in
  :mod:`eps3d_ros.train.teachers`); item ``i`` is a window of consecutive frames (``stride`` apart).

Images are resized to the training size (a multiple of the patch size 14): RGB bilinearly, depth,
labels and masks by nearest neighbour, intrinsics scaled with the image.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .teachers import read_recording

__all__ = ["Sample", "SyntheticDataset", "RecordedDataset", "resize_sample"]


@dataclass
class Sample:
    """One window of V views (torch, CPU). Optional fields are ``None`` when the source lacks them."""

    images: Tensor  # [V, 3, H, W] float32 in [0, 1]
    depth: Tensor | None = None  # [V, H, W] float32 metres, 0 = no measurement
    intrinsics: Tensor | None = None  # [V, 3, 3] float32 pixels
    extrinsics: Tensor | None = None  # [V, 3, 4] float32 camera-from-world (OpenCV)
    semantic: Tensor | None = None  # [V, H, W] int64 class ids (synthetic ground truth)
    instance: Tensor | None = None  # [V, H, W] int64 instance ids (synthetic ground truth)
    teacher_features: Tensor | None = None  # [V, D, h, w] float32 (recordings)
    teacher_masks: Tensor | None = None  # [V, H, W] int64 (recordings)
    name: str = ""

    @property
    def num_views(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    @property
    def has_cameras(self) -> bool:
        return self.intrinsics is not None and self.extrinsics is not None

    def select(self, views: list[int] | Tensor) -> "Sample":
        """The sample restricted to ``views`` (in that order)."""
        v = torch.as_tensor(views, dtype=torch.long)
        out = {}
        for name in ("images", "depth", "intrinsics", "extrinsics", "semantic", "instance", "teacher_features",
                     "teacher_masks"):
            t = getattr(self, name)
            out[name] = None if t is None else t[v]
        return replace(self, **out)

    def split(self, num_target: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
        """``(context, target)`` view indices: targets drawn from the interior (never the first view)."""
        V = self.num_views
        if num_target <= 0:
            return list(range(V)), []
        if num_target >= V:
            raise ValueError(f"{num_target} target views leave no context view of {V}")
        interior = list(range(1, V - 1)) or list(range(1, V))
        if len(interior) < num_target:
            interior = list(range(1, V))
        target = sorted(rng.choice(interior, size=num_target, replace=False).tolist())
        context = [i for i in range(V) if i not in target]
        return context, target


def resize_sample(sample: Sample, height: int, width: int) -> Sample:
    """Resize every map of ``sample`` to ``height x width`` (see the module docstring for the modes)."""
    H, W = sample.size
    if (H, W) == (height, width):
        return sample

    def nearest(t: Tensor | None) -> Tensor | None:
        if t is None:
            return None
        return F.interpolate(t[:, None].float(), size=(height, width), mode="nearest")[:, 0].to(t.dtype)

    images = F.interpolate(sample.images, size=(height, width), mode="bilinear", align_corners=False,
                           antialias=True).clamp(0, 1)
    K = None
    if sample.intrinsics is not None:
        K = sample.intrinsics.clone()
        K[:, 0] *= width / W
        K[:, 1] *= height / H
    return replace(sample, images=images, depth=nearest(sample.depth), intrinsics=K, semantic=nearest(sample.semantic),
                   instance=nearest(sample.instance), teacher_masks=nearest(sample.teacher_masks))


class SyntheticDataset:
    """Seeded synthetic scenes; ``dataset[i]`` is the scene of ``seeds[i]`` with ``num_views`` views."""

    def __init__(
        self,
        seeds: list[int] | range,
        num_views: int = 4,
        height: int = 112,
        width: int = 112,
        scene_options: dict[str, Any] | None = None,
        cache_size: int = 2048,
    ) -> None:
        self.seeds = list(seeds)
        if not self.seeds:
            raise ValueError("SyntheticDataset needs at least one seed")
        self.num_views, self.height, self.width = int(num_views), int(height), int(width)
        self.scene_options = dict(scene_options or {})
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[tuple[int, int, int], Sample] = OrderedDict()
        from eps3d_ros.data.scene_layout import CLASS_NAMES, STUFF_CLASSES, THING_CLASSES

        self.class_names, self.things, self.stuff = list(CLASS_NAMES), list(THING_CLASSES), list(STUFF_CLASSES)

    def __len__(self) -> int:
        return len(self.seeds)

    def scene(self, index: int, height: int | None = None, width: int | None = None):
        """The full :class:`~eps3d_ros.data.synthetic.SyntheticScene` of item ``index`` (not cached),
        rendered at ``height x width`` (default: the dataset's size)."""
        from eps3d_ros.data.synthetic import generate_scene

        return generate_scene(self.seeds[index], self.num_views, height or self.height, width or self.width,
                              **self.scene_options)

    def __getitem__(self, index: int) -> Sample:
        return self.at_size(index, self.height, self.width)

    def at_size(self, index: int, height: int, width: int) -> Sample:
        """Item ``index`` rendered (not resized) at ``height x width``: the same scene and cameras at any size."""
        key = (index, int(height), int(width))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        s = self.scene(index, height, width)
        sample = Sample(
            images=torch.from_numpy(s.rgb).permute(0, 3, 1, 2).float() / 255.0,
            depth=torch.from_numpy(s.depth),
            intrinsics=torch.from_numpy(s.intrinsics),
            extrinsics=torch.from_numpy(s.extrinsics),
            semantic=torch.from_numpy(s.semantic),
            instance=torch.from_numpy(s.instance),
            name=f"synthetic-{self.seeds[index]}",
        )
        if self.cache_size > 0:
            self._cache[key] = sample
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return sample


class RecordedDataset:
    """Windows of ``num_views`` consecutive frames (``stride`` apart) of recordings with teacher files."""

    def __init__(
        self,
        recordings: list[str | Path],
        num_views: int = 4,
        height: int = 112,
        width: int = 112,
        stride: int = 1,
    ) -> None:
        if not recordings:
            raise ValueError("RecordedDataset needs at least one recording folder")
        if stride < 1:
            raise ValueError("stride must be >= 1")
        self.num_views, self.height, self.width, self.stride = int(num_views), int(height), int(width), int(stride)
        self.recordings = [Path(r) for r in recordings]
        self._data = [read_recording(r) for r in self.recordings]
        self.windows: list[tuple[int, int]] = []
        span = (self.num_views - 1) * self.stride + 1
        for r, d in enumerate(self._data):
            n = d["rgb"].shape[0]
            if n < span:
                raise ValueError(f"{self.recordings[r]} has {n} frames; a window of {self.num_views} views with "
                                 f"stride {self.stride} needs {span}")
            self.windows += [(r, start) for start in range(0, n - span + 1)]
        self.class_names = None

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> Sample:
        return self.at_size(index, self.height, self.width)

    def at_size(self, index: int, height: int, width: int) -> Sample:
        """Window ``index`` resized to ``height x width`` (see :func:`resize_sample`)."""
        r, start = self.windows[index]
        d = self._data[r]
        idx = np.arange(start, start + self.num_views * self.stride, self.stride)

        def opt(key: str, dtype=None) -> Tensor | None:
            if key not in d:
                return None
            t = torch.from_numpy(np.ascontiguousarray(d[key][idx]))
            return t if dtype is None else t.to(dtype)

        feats = opt("teacher_features", torch.float32)
        sample = Sample(
            images=torch.from_numpy(d["rgb"][idx]).permute(0, 3, 1, 2).float() / 255.0,
            depth=opt("depth", torch.float32),
            intrinsics=opt("intrinsics", torch.float32),
            extrinsics=opt("extrinsics", torch.float32),
            teacher_features=None if feats is None else feats.permute(0, 3, 1, 2).contiguous(),
            teacher_masks=opt("teacher_masks", torch.int64),
            name=f"{self.recordings[r].name}[{start}]",
        )
        return resize_sample(sample, height, width)

