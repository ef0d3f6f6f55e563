"""Frames for a reconstruction from recorded data: what the readers share.

Readers: :mod:`.image_folder` (``eps3d run --images``) and :mod:`.bag_frames` (``--bag``). Both select
frames by :func:`~eps3d_ros.frames.intake.select_indices` and fit each into the model's input box with
the same intake as the node (:func:`~eps3d_ros.frames.intake.prepare_frame`: one scale factor, aspect
kept, centre-cropped to multiples of 14, intrinsics exact), so a frame gives the same network input
whether it comes from a file, a bag or a topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..frames.frame import Frame

__all__ = ["FrameSourceError", "FrameSet", "progress_bar"]


class FrameSourceError(ValueError):
    """Input that cannot give frames: empty folder, unreadable image, bag without images, ambiguous topics."""


@dataclass
class FrameSet:
    frames: list[Frame]
    source: str  # what they came from, for reports
    original_size: tuple[int, int]  # (H, W) of the first image, before fitting
    size: tuple[int, int]  # (h, w): the network size of a window of them (frames.intake.window_size_of)
    selected: list[int]  # indices into the full ordered sequence
    total: int  # frames available before selection
    topics: dict[str, str] = field(default_factory=dict)  # bag: role -> topic
    notes: list[str] = field(default_factory=list)

    @property
    def has_depth(self) -> bool:
        return any(f.depth is not None for f in self.frames)

    @property
    def has_poses(self) -> bool:
        return any(f.pose is not None for f in self.frames)


def progress_bar(items: Iterable[Any], on: bool, desc: str, total: int | None = None) -> Iterable[Any]:
    """``items`` wrapped in a tqdm bar when ``on``."""
    if not on:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, unit="frame", leave=False)
