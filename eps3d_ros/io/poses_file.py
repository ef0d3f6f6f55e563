"""Camera poses of an image folder, one per image in sorted order (``eps3d run --images DIR --poses FILE``).

Convention (as ``Frame.pose`` and TF): camera-to-world, i.e. the camera's optical frame (OpenCV axes: x right,
y down, z forward) in the map frame, in metres. Accepted files:

* Open3D / Redwood trajectory ``.log``: per image a header line (``i j n``) and the 4x4 matrix in 4 rows;
* TUM RGB-D ``.txt``: per image ``timestamp tx ty tz qx qy qz qw`` (lines starting with ``#`` are comments);
* ``.json``: ``{"poses": [4x4, 4x4, ...]}`` (or just the list), row-major.

Every matrix must be a finite rigid transform (orthonormal rotation, last row ``0 0 0 1``); a wrong count,
a malformed line or a non-rigid matrix is an error that names the file and the entry.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..conventions import quat_xyzw_to_matrix
from .frame_sources import FrameSourceError

__all__ = ["read_poses"]


def read_poses(path: str | Path, count: int | None = None) -> np.ndarray:
    """``[N, 4, 4]`` float64 camera-to-world poses from ``path`` (format by suffix / content, see the module)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"poses file not found: {p}")
    text = p.read_text()
    if p.suffix.lower() == ".json":
        poses = _json(p, text)
    elif p.suffix.lower() == ".log":
        poses = _log(p, text)
    else:
        poses = _tum(p, text)
    if count is not None and len(poses) != count:
        raise FrameSourceError(f"{p} has {len(poses)} poses for {count} images: one per image, in sorted order")
    for i, m in enumerate(poses):
        R = m[:3, :3]
        if not np.isfinite(m).all() or not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6) \
                or not np.allclose(R.T @ R, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
            raise FrameSourceError(f"{p}: pose {i} is not a rigid camera-to-world transform: {m.round(4).tolist()}")
    return poses


def _json(p: Path, text: str) -> np.ndarray:
    try:
        d = json.loads(text)
        rows = d["poses"] if isinstance(d, dict) else d
        return np.asarray(rows, dtype=np.float64).reshape(-1, 4, 4)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise FrameSourceError(f"{p}: expected {{\"poses\": [4x4, ...]}} ({type(e).__name__}: {e})") from None


def _log(p: Path, text: str) -> np.ndarray:
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if len(rows) % 5:
        raise FrameSourceError(f"{p}: an Open3D .log holds blocks of 5 lines (header + 4x4), got {len(rows)} lines")
    try:
        return np.array([[[float(x) for x in r] for r in rows[i + 1:i + 5]] for i in range(0, len(rows), 5)])
    except ValueError as e:
        raise FrameSourceError(f"{p}: not numbers in a 4x4 block ({e})") from None


def _tum(p: Path, text: str) -> np.ndarray:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            _, tx, ty, tz, qx, qy, qz, qw = (float(v) for v in line.split())
        except ValueError:
            raise FrameSourceError(f"{p}:{n}: expected 'timestamp tx ty tz qx qy qz qw' (TUM), got {line!r}") from None
        q = torch.tensor([qx, qy, qz, qw], dtype=torch.float64)
        if not float(q.norm()) > 1e-9:
            raise FrameSourceError(f"{p}:{n}: zero quaternion")
        m = np.eye(4)
        m[:3, :3] = quat_xyzw_to_matrix(q / q.norm()).numpy()
        m[:3, 3] = (tx, ty, tz)
        out.append(m)
    if not out:
        raise FrameSourceError(f"{p}: no poses (an Open3D .log, a TUM .txt or a .json)")
    return np.stack(out)
