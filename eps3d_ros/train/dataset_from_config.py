"""The training dataset a config's ``data`` section names: synthetic scenes, recorded folders
(:mod:`.datasets`) or the scenes of a real dataset (:mod:`.scene_dataset`). Kept apart from both so that
neither imports the other."""

from __future__ import annotations

from typing import Any

from eps3d_ros.data.windows import WindowConfig

from .datasets import RecordedDataset, SyntheticDataset
from .scene_dataset import SceneDataset

__all__ = ["build_dataset"]


def build_dataset(data: Any, labels: bool = True) -> Any:
    """The training dataset of a :class:`~eps3d_ros.train.config.DataSection` (synthetic, recorded or a real
    dataset, :class:`~eps3d_ros.train.scene_dataset.SceneDataset`); ``labels``: ground-truth supervision."""
    if data.kind == "synthetic":
        return SyntheticDataset(range(data.seed_start, data.seed_start + data.num_scenes), data.num_views,
                                data.height, data.width, data.scene_options, data.cache_size)
    if data.kind == "recorded":
        return RecordedDataset(data.recordings, data.num_views, data.height, data.width, data.stride)
    options = {"label_set": data.label_set, "invalid_poses": data.invalid_poses} if data.kind == "scannet" else {}
    if data.kind == "scannetpp":
        options = {"semantics_dir": data.semantics_dir, "classes_file": data.classes_file}
    windows = WindowConfig(num_views=data.num_views, mode=data.window, stride=data.stride,
                           min_overlap=data.min_overlap, max_overlap=data.max_overlap, step=data.window_step)
    return SceneDataset(data.kind, data.root, list(data.scenes), data.split, options, windows, data.height,
                        data.width, teachers=data.teachers or None, labels=labels,
                        cache_size=min(data.cache_size, 64))  # samples of real frames are large
