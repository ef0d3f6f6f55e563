"""Frames for a reconstruction from recorded data: what the readers share.

Readers: :mod:`.image_folder` (``eps3d run --images``) and :mod:`.bag_frames` (``--bag``). Both select
frames by :func:`~eps3d_ros.frames.intake.select_indices` and fit each into the model's input box with
the same intake as the node (:func:`~eps3d_ros.frames.intake.prepare_frame`: one scale factor, aspect
kept, centre-cropped to multiples of 14, intrinsics exact), so a frame gives the same network input
whether it comes from a file, a bag or a topic. Several cameras (``eps3d run`` given several folders or colour
topics) are read one by one and merged into one stream by :func:`merge_cameras`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..frames.frame import Frame

__all__ = ["FrameSourceError", "FrameSet", "merge_cameras", "progress_bar"]


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
    cameras: dict[str, int] = field(default_factory=dict)  # several cameras: name -> frames of it

    @property
    def has_depth(self) -> bool:
        return any(f.depth is not None for f in self.frames)

    @property
    def has_poses(self) -> bool:
        return any(f.pose is not None for f in self.frames)


def merge_cameras(sets: dict[str, FrameSet]) -> FrameSet:
    """Several cameras' frames as one stream: each frame named after its camera (:attr:`Frame.camera
    <eps3d_ros.frames.frame.Frame.camera>`), in stamp order, at equal stamps in the order of ``sets`` (cameras
    triggered together). ``size`` is the largest network size of them (a window of several cameras is brought to
    it); ``topics`` and ``notes`` are each camera's, prefixed with its name."""
    if not sets:
        raise FrameSourceError("no camera given")
    named = [dataclasses.replace(f, camera=name) for name, s in sets.items() for f in s.frames]
    frames = sorted(named, key=lambda f: f.stamp)  # stable: the cameras' order at equal stamps
    first = next(iter(sets.values()))
    return FrameSet(frames=frames, source="; ".join(f"{name}: {s.source}" for name, s in sets.items()),
                    original_size=first.original_size,
                    size=max((s.size for s in sets.values()), key=lambda hw: (hw[0] * hw[1], hw)),
                    selected=[i for s in sets.values() for i in s.selected], total=sum(s.total for s in sets.values()),
                    topics={f"{name} {role}": t for name, s in sets.items() for role, t in s.topics.items()},
                    notes=[f"{name}: {n}" for name, s in sets.items() for n in s.notes],
                    cameras={name: len(s.frames) for name, s in sets.items()})


def progress_bar(items: Iterable[Any], on: bool, desc: str, total: int | None = None) -> Iterable[Any]:
    """``items`` wrapped in a tqdm bar when ``on``."""
    if not on:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, unit="frame", leave=False)
