"""Panoptic scenes → point-cloud arrays ready for ``sensor_msgs/PointCloud2`` (no ROS types here).

One point per Gaussian centre, as a numpy structured array with the fields (all 4 bytes, packed,
little-endian, 28 bytes per point)::

    x, y, z    float32   position in the scene's frame
    rgb        float32   colour packed as 0x00RRGGBB and reinterpreted as float32 (the PCL convention)
    label      uint32    class index into the scene vocabulary; 0xFFFFFFFF = unknown
    instance   uint32    object id of things; 0 = stuff / none
    score      float32   probability of the label

Colours: ``kind="semantic"`` a fixed palette per class index (unknown → grey); ``"instance"`` a
colour per object id (stuff and none → grey); ``"color"`` the Gaussians' own colours.
:func:`cloud_fields` gives the PointField layout (name, offset, datatype, count) for the node.
"""

from __future__ import annotations

import colorsys
import math
from typing import Any

import numpy as np

__all__ = [
    "CLOUD_DTYPE",
    "UNKNOWN_LABEL",
    "GREY",
    "label_color",
    "instance_color",
    "pack_rgb",
    "unpack_rgb",
    "voxel_downsample",
    "cloud_points",
    "object_cloud",
    "map_object_cloud",
    "cloud_fields",
    "cloud_to_bytes",
]

CLOUD_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4"),
                        ("label", "<u4"), ("instance", "<u4"), ("score", "<f4")])
UNKNOWN_LABEL = 0xFFFFFFFF  # -1 as uint32
GREY = (128, 128, 128)
KINDS = ("semantic", "instance", "color")

# 20 well-separated colours for class indices (cycled beyond 20); grey is reserved for "unknown".
_LABEL_PALETTE = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (255, 255, 255),
], dtype=np.uint8)

# PointField datatypes (sensor_msgs/PointField constants)
_POINTFIELD = {"i1": 1, "u1": 2, "i2": 3, "u2": 4, "i4": 5, "u4": 6, "f4": 7, "f8": 8}


def label_color(label: int) -> tuple[int, int, int]:
    """RGB of a class index (a fixed palette, cycled); negative (unknown) → grey."""
    label = int(label)
    if label < 0 or label == UNKNOWN_LABEL:
        return GREY
    r, g, b = _LABEL_PALETTE[label % len(_LABEL_PALETTE)]
    return int(r), int(g), int(b)


def instance_color(instance: int) -> tuple[int, int, int]:
    """RGB of an object id: golden-ratio hues (neighbouring ids differ strongly); 0 (stuff/none) → grey."""
    instance = int(instance)
    if instance <= 0:
        return GREY
    hue = (instance * 0.6180339887498949) % 1.0
    sat = 0.85 if instance % 2 else 0.65
    val = 0.95 if (instance // 2) % 2 else 0.8
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return round(r * 255), round(g * 255), round(b * 255)


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """``[N, 3]`` uint8 → ``[N]`` float32 holding ``0x00RRGGBB`` bit for bit."""
    rgb = np.asarray(rgb, dtype=np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]  # [N] uint32
    return packed.astype("<u4").view("<f4")


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_rgb`: ``[N]`` float32 → ``[N, 3]`` uint8."""
    u = np.ascontiguousarray(packed, dtype="<f4").view("<u4")
    return np.stack([(u >> 16) & 255, (u >> 8) & 255, u & 255], axis=-1).astype(np.uint8)


def voxel_downsample(points: np.ndarray, max_points: int, priority: np.ndarray | None = None,
                     max_iterations: int = 40) -> np.ndarray:
    """Indices (ascending) of at most ``max_points`` points, one per occupied voxel.

    The voxel size is searched: the smallest size tried whose occupied-voxel count fits (a
    power-law secant step on ``count(size)`` inside a bracket, usually 3-6 counts). The voxel grid is
    anchored at the points' minimum corner. In each voxel the point with the highest ``priority``
    (ties: lowest index) represents it, so the result is deterministic.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    max_points = int(max_points)
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    prio = np.zeros(n) if priority is None else np.asarray(priority, dtype=np.float64)
    origin = pts.min(0)
    extent = float((pts.max(0) - origin).max())
    if extent <= 0:  # every point at one place
        return _representatives(np.zeros(n, np.int64), prio)[:1]

    rel = pts - origin  # [N, 3] >= 0

    def keys_for(size: float) -> np.ndarray:
        ijk = (rel / size).astype(np.int64)  # [N, 3] floor (rel >= 0)
        dims = ijk.max(0) + 1
        return (ijk[:, 0] * dims[1] + ijk[:, 1]) * dims[2] + ijk[:, 2]

    def count(size: float) -> int:
        k = np.sort(keys_for(size))
        return int(1 + np.count_nonzero(k[1:] != k[:-1]))

    target = 0.97 * max_points  # aim just under the bound so the first fitting size is usually close
    lo, c_lo = extent / 2e6, None  # below this the keys could overflow int64; count there is ~N
    hi, c_hi = extent * (1 + 1e-9), 1  # one voxel holds everything
    size = extent / math.sqrt(max_points)  # a surface guess: count ~ (extent / size)^2
    for _ in range(max_iterations):
        c = count(size)
        if c <= max_points:
            hi, c_hi = size, c
            if c >= 0.9 * max_points:
                break
        else:
            lo, c_lo = size, c
        # secant in log-log through the bracket ends when both counts are known, else slope -2
        if c_lo is not None and c_lo > c_hi and hi > lo:
            slope = math.log(c_lo / c_hi) / math.log(lo / hi)  # negative
            guess = hi * (target / c_hi) ** (1.0 / slope)
        else:
            guess = size * (c / target) ** 0.5
        if hi / lo < 1 + 1e-6:
            break
        size = guess if lo < guess < hi else math.sqrt(lo * hi)  # outside the bracket: bisect (in log size)
    return np.sort(_representatives(keys_for(hi), prio))


def _representatives(keys: np.ndarray, prio: np.ndarray) -> np.ndarray:
    """Per distinct key, the index with the highest priority (ties: lowest index)."""
    order = np.lexsort((np.arange(len(keys)), -prio, keys))  # last key is primary
    k = keys[order]
    first = np.ones(len(k), dtype=bool)
    first[1:] = k[1:] != k[:-1]
    return order[first]


def _fill(idx: np.ndarray, scene: Any, rgb: np.ndarray, sem: np.ndarray, ins: np.ndarray) -> np.ndarray:
    """The structured array of points ``idx``; ``sem``/``ins`` are the scene's panoptic labels ``[N]``."""
    out = np.empty(len(idx), dtype=CLOUD_DTYPE)
    xyz = scene.means[idx]
    out["x"], out["y"], out["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    out["rgb"] = pack_rgb(rgb)
    out["label"] = sem[idx].astype(np.int64) & 0xFFFFFFFF  # -1 → UNKNOWN_LABEL
    out["instance"] = np.maximum(ins[idx], 0)
    out["score"] = scene.label_scores[idx]
    return out


def _colors(kind: str, idx: np.ndarray, scene: Any, sem: np.ndarray, ins: np.ndarray) -> np.ndarray:
    """``[len(idx), 3]`` uint8 colours of the chosen points."""
    if kind == "color":
        return np.clip(np.round(scene.colors[idx] * 255.0), 0, 255).astype(np.uint8)
    ids = sem[idx] if kind == "semantic" else ins[idx]
    fn = label_color if kind == "semantic" else instance_color
    uniq, inv = np.unique(ids, return_inverse=True)
    table = np.array([fn(int(u)) for u in uniq], dtype=np.uint8).reshape(-1, 3)
    return table[inv.reshape(-1)]


def cloud_points(scene: Any, kind: str = "semantic", max_points: int = 200_000, min_opacity: float = 0.1) -> np.ndarray:
    """The scene's Gaussians with opacity ``>= min_opacity``, voxel-downsampled to ``<= max_points``,
    as a :data:`CLOUD_DTYPE` array coloured by ``kind`` ("semantic", "instance" or "color")."""
    if kind not in KINDS:
        raise ValueError(f"unknown cloud kind {kind!r}: use one of {', '.join(KINDS)}")
    idx = np.nonzero(scene.opacities >= min_opacity)[0]
    if len(idx) > max_points or max_points < 1:
        idx = idx[voxel_downsample(scene.means[idx], max_points, priority=scene.opacities[idx])]
    sem, ins = scene.panoptic_labels()  # things' members carry their object's class
    return _fill(idx, scene, _colors(kind, idx, scene, sem, ins), sem, ins)


def object_cloud(scene: Any, obj: Any, max_points: int | None = None) -> np.ndarray:
    """The points of one :class:`~eps3d_ros.panoptic.SceneObject` (e.g. a query answer), all in its colour
    (instance colour for things, class colour for stuff)."""
    idx = np.asarray(obj.indices, dtype=np.int64)
    if len(idx) and (idx.min() < 0 or idx.max() >= scene.num_gaussians):
        raise ValueError(f"object {obj.id} has indices outside this scene's {scene.num_gaussians} Gaussians "
                         "(an object of another snapshot?)")
    if max_points is not None and len(idx) > max_points:
        idx = idx[voxel_downsample(scene.means[idx], max_points, priority=scene.opacities[idx])]
    color = instance_color(obj.id) if obj.is_thing else label_color(obj.label_id)
    sem, ins = scene.panoptic_labels()
    return _fill(idx, scene, np.tile(np.array(color, dtype=np.uint8), (len(idx), 1)), sem, ins)


def map_object_cloud(obj: Any, vocabulary: tuple[str, ...] | list[str] = ()) -> np.ndarray:
    """The points of one :class:`~eps3d_ros.mapping.MapObject` (a query answer from the map), all in its colour
    (instance colour for things, class colour for stuff); ``label`` is its index in ``vocabulary`` (unknown when
    the vocabulary does not name it)."""
    pts = np.asarray(obj.points, dtype=np.float32).reshape(-1, 3)
    vocab = list(vocabulary)
    label = vocab.index(obj.label) if obj.label in vocab else -1
    color = instance_color(obj.id) if obj.is_thing else label_color(label)
    out = np.zeros(len(pts), dtype=CLOUD_DTYPE)
    out["x"], out["y"], out["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    out["rgb"] = pack_rgb(np.tile(np.array(color, dtype=np.uint8), (len(pts), 1)))
    out["label"] = np.uint32(UNKNOWN_LABEL if label < 0 else label)
    out["instance"] = np.uint32(obj.id if obj.is_thing else 0)
    out["score"] = np.float32(obj.score)
    return out


def cloud_fields(dtype: np.dtype = CLOUD_DTYPE) -> list[tuple[str, int, int, int]]:
    """``(name, offset, PointField datatype, count)`` per field, plus nothing else: ``point_step = dtype.itemsize``."""
    out = []
    for name in dtype.names:
        ft, offset = dtype.fields[name][:2]
        out.append((name, int(offset), _POINTFIELD[ft.str[1:]], 1))
    return out


def cloud_to_bytes(cloud: np.ndarray) -> bytes:
    """The PointCloud2 ``data`` of a structured array (little-endian, ``is_dense`` holds: no NaN positions)."""
    return np.ascontiguousarray(cloud).tobytes()
