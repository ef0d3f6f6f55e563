"""Transforms between coordinate frames over time (TF semantics), without ROS: one tree for recorded bags and
for the node's pose fallback.

An edge ``parent ← child`` at a stamp maps child coordinates into the parent: ``p_parent = T p_child``
(``geometry_msgs/TransformStamped`` with ``header.frame_id`` = parent, ``child_frame_id`` = child).
Each dynamic edge keeps a :class:`~eps3d_ros.geometry.pose_history.PoseHistory` (interpolated between
bracketing samples, nearest within a tolerance); static edges hold one matrix. A lookup chains the edges
from a frame up to the target; TF's rule of one parent per frame is kept (a conflicting parent is
recorded in :attr:`TransformTree.conflicts` and ignored).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

from ..conventions import quat_xyzw_to_matrix
from .pose_history import PoseHistory

__all__ = ["TransformTree", "transform_to_matrix"]


def transform_to_matrix(t: Any) -> np.ndarray:
    """``[4, 4]`` of a ``geometry_msgs/Transform`` (or anything with ``translation.x..`` and
    ``rotation.x..w``, e.g. a rosbags message); a zero quaternion is a ``ValueError``."""
    r = t.rotation
    q = torch.tensor([r.x, r.y, r.z, r.w], dtype=torch.float64)
    if not float(q.norm()) > 1e-9:
        raise ValueError("transform has a zero quaternion")
    m = np.eye(4)
    m[:3, :3] = quat_xyzw_to_matrix(q).numpy()
    m[:3, 3] = [t.translation.x, t.translation.y, t.translation.z]
    return m


class TransformTree:
    """Thread-safe: the node's subscription adds while its inference thread looks up."""

    def __init__(self, tolerance: float = 0.1, max_gap: float = 1.0, maxlen: int = 10_000_000) -> None:
        self._history = lambda: PoseHistory(maxlen=maxlen, tolerance=tolerance, max_gap=max_gap)
        self.parent: dict[str, str] = {}
        self.dynamic: dict[str, PoseHistory] = {}  # child -> samples
        self.static: dict[str, np.ndarray] = {}  # child -> [4, 4]
        self.conflicts: set[str] = set()
        self._lock = threading.Lock()

    def add(self, parent: str, child: str, stamp: float, matrix: np.ndarray, static: bool = False) -> bool:
        """Record ``parent ← child`` at ``stamp``; False when ignored (empty names, a loop, another parent)."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if not parent or not child or parent == child:
            return False
        with self._lock:
            if self.parent.get(child, parent) != parent:
                self.conflicts.add(child)  # TF allows one parent per frame; keep the first
                return False
            self.parent[child] = parent
            if static:
                self.static[child] = np.asarray(matrix, dtype=np.float64)
                history = None
            else:
                history = self.dynamic.setdefault(child, self._history())
        if history is not None:
            history.add(child, stamp, matrix)
        return True

    def root(self, frame: str) -> str:
        """The top of ``frame``'s chain."""
        frame = frame.lstrip("/")
        seen = {frame}
        with self._lock:
            while frame in self.parent:
                frame = self.parent[frame]
                if frame in seen:
                    break
                seen.add(frame)
        return frame

    def frames(self) -> set[str]:
        with self._lock:
            return set(self.parent) | set(self.parent.values())

    def lookup(self, target: str, frame: str, stamp: float) -> np.ndarray | None:
        """``[4, 4]`` mapping ``frame`` coordinates into ``target`` at ``stamp`` (None when unknown).

        ``target`` must be an ancestor of ``frame`` (a camera looked up in the map), as it is for poses."""
        frame, target = frame.lstrip("/"), target.lstrip("/")
        pose = np.eye(4)
        for _ in range(256):
            if frame == target:
                return pose
            with self._lock:
                parent = self.parent.get(frame)
                T = self.static.get(frame)
                history = self.dynamic.get(frame)
            if parent is None:
                return None
            if T is None:
                T = history.lookup(frame, stamp) if history is not None else None
                if T is None:
                    return None
            pose = T @ pose
            frame = parent
        return None

    def clear(self) -> None:
        with self._lock:
            self.parent.clear()
            self.dynamic.clear()
            self.static.clear()
            self.conflicts.clear()
