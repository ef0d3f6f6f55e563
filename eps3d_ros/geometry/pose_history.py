"""Recent camera poses per frame id, looked up at an image stamp (the fallback when tf2_ros is absent).

Between two samples that bracket the stamp (at most ``max_gap`` apart) the pose is interpolated:
translation linearly, rotation by quaternion slerp, as a TF buffer does. Outside, the nearest
sample within ``tolerance`` is used; otherwise there is no pose.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque

import numpy as np
import torch

from ..conventions import matrix_to_quat_xyzw, quat_xyzw_to_matrix
from .slerp import slerp


class PoseHistory:
    def __init__(self, maxlen: int = 400, tolerance: float = 0.05, max_gap: float = 0.5) -> None:
        self.tolerance = tolerance
        self.max_gap = max_gap
        self._maxlen = maxlen
        self._data: dict[str, deque[tuple[float, np.ndarray]]] = {}
        self._lock = threading.Lock()

    def add(self, frame_id: str, stamp: float, pose: np.ndarray) -> None:
        """Record the camera-to-map pose ``[4, 4]`` of ``frame_id`` at ``stamp`` (seconds)."""
        pose = np.asarray(pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.isfinite(pose).all():
            raise ValueError(f"a pose must be a finite 4x4 matrix, got shape {pose.shape}")
        with self._lock:
            samples = self._data.setdefault(frame_id, deque(maxlen=self._maxlen))
            if samples and stamp < samples[-1][0]:  # late sample: keep the history sorted
                items = sorted([*samples, (stamp, pose)], key=lambda s: s[0])
                samples.clear()
                samples.extend(items[-self._maxlen:])
            else:
                samples.append((stamp, pose))

    def lookup(self, frame_id: str, stamp: float) -> np.ndarray | None:
        with self._lock:
            samples = list(self._data.get(frame_id, ()))
        if not samples:
            return None
        stamps = [s for s, _ in samples]
        i = bisect.bisect_left(stamps, stamp)
        if i < len(samples) and abs(stamps[i] - stamp) < 1e-9:
            return samples[i][1].copy()
        if 0 < i < len(samples) and stamps[i] - stamps[i - 1] <= self.max_gap:
            (t0, a), (t1, b) = samples[i - 1], samples[i]
            return _interpolate(a, b, (stamp - t0) / (t1 - t0))
        nearest = min(range(len(samples)), key=lambda j: abs(stamps[j] - stamp))
        if abs(stamps[nearest] - stamp) <= self.tolerance:
            return samples[nearest][1].copy()
        return None

    def frames(self) -> list[str]:
        with self._lock:
            return sorted(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def _interpolate(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    qa = matrix_to_quat_xyzw(torch.from_numpy(a[:3, :3]))
    qb = matrix_to_quat_xyzw(torch.from_numpy(b[:3, :3]))
    if float(qa @ qb) < 0:  # the shorter way round
        qb = -qb
    out = np.eye(4)
    out[:3, :3] = quat_xyzw_to_matrix(slerp(qa, qb, w)).numpy()
    out[:3, 3] = (1 - w) * a[:3, 3] + w * b[:3, 3]
    return out
