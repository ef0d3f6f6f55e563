"""Frames of a dataset scene (``eps3d run --dataset NAME --root DIR --scene ID``).

The scene's frames (:mod:`eps3d_ros.data`: camera-to-world poses in the dataset's world frame, metres; depth
in metres; OpenCV intrinsics) are selected like an image folder's (every ``every``-th, at most ``max_views``
spread evenly) and fitted into the model's input box by the same intake as the node
(:func:`~eps3d_ros.frames.intake.prepare_frame`), read one at a time so that large images are not held.
The map the session builds from them is in the dataset's world frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..frames.frame import Frame, check_intrinsics
from ..frames.intake import prepare_frame, select_indices, window_size_of
from .frame_sources import FrameSet, FrameSourceError, progress_bar

__all__ = ["frames_from_dataset"]


def frames_from_dataset(kind: str, root: str | Path, scene: str | None, *, box: tuple[int, int], every: int = 1,
                        max_views: int | None = None, use_depth: bool = True, fps: float = 30.0,
                        frame_id: str = "camera", progress: bool = False, options: dict[str, Any] | None = None
                        ) -> FrameSet:
    """A :class:`FrameSet` of scene ``scene`` of dataset ``kind`` (``scene`` may be omitted for a single capture)."""
    from ..data.dataset_scene import DatasetError
    from ..data.datasets import open_dataset

    try:
        ds = open_dataset(kind, root, **(options or {}))
        if not scene:
            ids = ds.scene_ids()
            if len(ids) != 1:
                raise FrameSourceError(f"{root} holds {len(ids)} scenes: name one with --scene (e.g. {ids[0]})")
            scene = ids[0]
        reader = ds.scene(scene)
    except DatasetError as e:
        raise FrameSourceError(str(e)) from None
    pick = select_indices(len(reader), every, max_views)
    frames: list[Frame] = []
    for i in progress_bar(pick, progress, "reading frames"):
        try:
            f = reader.frame(i)
        except DatasetError as e:
            raise FrameSourceError(str(e)) from None
        depth = None
        if use_depth and f.depth is not None:
            depth = np.where(f.depth > 0, f.depth, np.nan).astype(np.float32)  # Frame: NaN = no measurement
        H, W = f.rgb.shape[:2]
        K = check_intrinsics(f.K, H, W, f"the intrinsics of {reader.scene_id} frame {f.frame_id}")
        frames.append(prepare_frame(Frame(stamp=i / fps, rgb=f.rgb, K=K, frame_id=frame_id, depth=depth,
                                          pose=f.pose), box))
    notes = list(reader.notes)
    H, W = reader.frame_size(pick[0])
    return FrameSet(frames=frames, source=f"{kind} scene {reader.scene_id} ({root})", original_size=(H, W),
                    size=window_size_of([f.size for f in frames]), selected=pick, total=len(reader), notes=notes)
