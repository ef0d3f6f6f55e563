"""Frames from a rosbag2 (a bag folder, a ``.db3`` or a ``.mcap`` file), read with ``rosbags`` (no ROS needed).

* colour: ``sensor_msgs/msg/Image`` (the encodings of ``frames.images``) or ``CompressedImage``
  (JPEG/PNG); depth: ``Image`` 16UC1 (``depth_scale`` m per unit, default mm) or 32FC1 (m), registered
  to the colour camera, matched to each colour frame by the nearest header stamp within ``sync_slop``;
  intrinsics: the ``CameraInfo`` nearest in time (the one beside the colour topic when there are several);
* topics are detected by message type when not given: the one colour topic (names with ``color`` /
  ``rgb`` win a tie), the one depth topic (of several, those nearest the colour topic's name, e.g.
  ``/head/depth`` for ``/head/image``; then ``aligned`` / ``registered`` win), the ``camera_info`` in the
  colour topic's namespace (else the nearest). Ambiguity is an error naming the candidates. A bag of several
  cameras is read once per colour topic (``eps3d run --rgb-topic`` given per camera);
* poses: ``/tf`` + ``/tf_static`` (``tf2_msgs/msg/TFMessage``) and any ``TransformStamped`` topic form
  a :class:`~eps3d_ros.geometry.transform_tree.TransformTree`; each frame's pose is the chain from the
  colour frame (``header.frame_id``) up to ``map_frame`` (default: the root of that chain) at the image
  stamp, each edge interpolated between samples at most ``max_gap`` apart (slerp) or taken from the
  nearest sample within ``tf_tolerance``;
* selection by header stamp (:func:`~eps3d_ros.frames.intake.select_indices`), and each frame fitted
  into ``box`` by the intake (aspect kept, intrinsics exact).
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..frames.frame import Frame, check_intrinsics
from ..frames.images import COLOR_ENCODINGS, decode_color, decode_depth
from ..frames.intake import prepare_frame, select_indices, window_size_of
from ..geometry.transform_tree import TransformTree, transform_to_matrix
from .frame_sources import FrameSet, FrameSourceError, progress_bar
from .image_folder import DEFAULT_HFOV_DEG, match_depth_size, guess_intrinsics

__all__ = ["frames_from_bag"]

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TF_TYPE = "tf2_msgs/msg/TFMessage"
TRANSFORM_TYPE = "geometry_msgs/msg/TransformStamped"


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    store = getattr(Stores, "ROS2_KILTED", None) or getattr(Stores, "LATEST")
    return get_typestore(store)


def _header_stamp(raw: bytes | memoryview) -> float:
    """The ``std_msgs/Header`` stamp at the start of a CDR message (Image, CompressedImage, CameraInfo)."""
    kind = bytes(raw[:2])
    fmt = "<iI" if kind in (b"\x00\x01", b"\x00\x03") else ">iI"
    sec, nsec = struct.unpack_from(fmt, raw, 4)
    return sec + nsec * 1e-9


def _stamp(s: Any) -> float:
    return s.sec + s.nanosec * 1e-9


def _namespace(topic: str) -> str:
    return topic.rstrip("/").rsplit("/", 1)[0]


def _nearest(candidates: list[str], topic: str) -> list[str]:
    """The candidates that share the most leading name parts with ``topic`` (a bag of several cameras:
    ``/head/depth`` belongs to ``/head/image``); all of them when none shares any."""
    parts = topic.strip("/").split("/")

    def shared(t: str) -> int:
        n = 0
        for a, b in zip(t.strip("/").split("/"), parts):
            if a != b:
                break
            n += 1
        return n

    best = max((shared(t) for t in candidates), default=0)
    return [t for t in candidates if shared(t) == best] if best else list(candidates)


def _first_encoding(reader: Any, conn: Any, ts: Any) -> str:
    for c, _, raw in reader.messages(connections=[conn]):
        msg = ts.deserialize_cdr(raw, c.msgtype)
        return str(getattr(msg, "encoding", getattr(msg, "format", ""))).strip().lower()
    return ""


def _pick(candidates: list[str], prefer: Sequence[str], role: str, option: str, extra: str = "") -> str | None:
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    preferred = [t for t in candidates if any(p in t.lower() for p in prefer)]
    if len(preferred) == 1:
        return preferred[0]
    raise FrameSourceError(f"several {role} topics in the bag: {', '.join(sorted(candidates))}; choose one with "
                           f"{option}{extra}")


def frames_from_bag(
    path: str | Path,
    *,
    rgb_topic: str | None = None,
    depth_topic: str | None = None,
    info_topic: str | None = None,
    pose_topic: str | None = None,
    map_frame: str | None = None,
    use_depth: bool = True,
    use_poses: bool = True,
    every: int = 1,
    max_views: int | None = None,
    box: tuple[int, int],
    hfov_deg: float = DEFAULT_HFOV_DEG,
    sync_slop: float = 0.05,
    depth_scale: float = 0.001,
    tf_tolerance: float = 0.1,
    progress: bool = False,
) -> FrameSet:
    """Frames of a rosbag2 (see the module docstring), each fitted into ``box`` by the intake."""
    from rosbags.rosbag2 import Reader

    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"bag not found: {p}")
    if p.is_file() and p.suffix not in (".db3", ".mcap"):
        raise FrameSourceError(f"{p} is not a rosbag2 (a bag folder with metadata.yaml, a .db3 or a .mcap file)")
    ts = _typestore()
    try:
        reader = Reader(p)
        reader.open()
    except Exception as e:  # noqa: BLE001 - rosbags raises its own errors, sqlite3 and yaml errors
        raise FrameSourceError(f"cannot open {p} as a rosbag2: {type(e).__name__}: {e}") from None
    try:
        return _read_bag(reader, p, ts, rgb_topic, depth_topic, info_topic, pose_topic, map_frame, use_depth, use_poses,
                         every, max_views, box, hfov_deg, sync_slop, depth_scale, tf_tolerance, progress)
    finally:
        reader.close()


@dataclass
class _Topics:
    """The topics a bag's frames come from, and every topic's type."""

    rgb: str
    depth: str | None
    info: str | None
    tf: list[str]
    by_topic: dict[str, list[Any]]
    types: dict[str, str]


@dataclass
class _Index:
    """Pass 1: the stamps of the image messages (with their order on the topic), camera infos, the TF tree."""

    rgb: list[tuple[float, int]]
    depth: list[tuple[float, int]]
    infos: list[tuple[float, np.ndarray, int, int]]  # stamp, K, height, width
    tree: TransformTree
    roles: dict[int, str]  # connection id -> "rgb" | "depth"


def _read_bag(reader, p, ts, rgb_topic, depth_topic, info_topic, pose_topic, map_frame, use_depth, use_poses, every,
              max_views, box, hfov_deg, sync_slop, depth_scale, tf_tolerance, progress) -> FrameSet:
    notes: list[str] = []
    topics = _choose_topics(reader, p, ts, rgb_topic, depth_topic, info_topic, pose_topic, use_depth, use_poses)
    index = _index(reader, p, ts, topics, tf_tolerance, progress, notes)
    index.rgb.sort()
    pick = select_indices(len(index.rgb), every, max_views)
    chosen = [index.rgb[i] for i in pick]
    depth_for = _match_depth(chosen, index.depth, sync_slop)
    if topics.depth and len(depth_for) < len(chosen):
        notes.append(f"{len(chosen) - len(depth_for)} of {len(chosen)} frames without depth (no {topics.depth} "
                     f"message within {sync_slop} s)")
    rgb_msgs, depth_msgs = _decode_chosen(reader, ts, topics, index, {idx for _, idx in chosen},
                                          set(depth_for.values()), progress)
    frames, map_used, first_size = _frames(chosen, rgb_msgs, depth_msgs, depth_for, topics, index, map_frame, box, hfov_deg,
                               depth_scale, notes)
    names = {"rgb": topics.rgb}
    if topics.depth:
        names["depth"] = topics.depth
    if topics.info:
        names["camera_info"] = topics.info
    if topics.tf:
        names["poses"] = ", ".join(topics.tf)
        if map_used:
            names["map_frame"] = map_used
    return FrameSet(frames=frames, source=f"bag {p}", original_size=first_size,
                    size=window_size_of([f.size for f in frames]),
                    selected=pick, total=len(index.rgb), topics=names, notes=notes)


def _choose_topics(reader, p, ts, rgb_topic, depth_topic, info_topic, pose_topic, use_depth, use_poses) -> _Topics:
    """The topics given (checked), else found by type: colour, depth, camera_info, transforms."""
    by_topic: dict[str, list[Any]] = {}
    for c in reader.connections:
        by_topic.setdefault(c.topic, []).append(c)
    types = {t: cs[0].msgtype for t, cs in by_topic.items()}
    listing = ", ".join(f"{t} ({m})" for t, m in sorted(types.items())) or "none"

    def check(topic: str | None, allowed: tuple[str, ...], option: str) -> None:
        if topic is None:
            return
        if topic not in types:
            raise FrameSourceError(f"{option} {topic}: no such topic in {p}; topics: {listing}")
        if types[topic] not in allowed:
            raise FrameSourceError(f"{option} {topic} carries {types[topic]}, expected {' or '.join(allowed)}")

    check(rgb_topic, (IMAGE_TYPE, COMPRESSED_TYPE), "--rgb-topic")
    check(depth_topic, (IMAGE_TYPE,), "--depth-topic")
    check(info_topic, (INFO_TYPE,), "--info-topic")
    check(pose_topic, (TRANSFORM_TYPE, TF_TYPE), "--pose-topic")
    encodings = {t: _first_encoding(reader, by_topic[t][0], ts) for t, m in types.items()
                 if m in (IMAGE_TYPE, COMPRESSED_TYPE) and (rgb_topic is None or (use_depth and depth_topic is None))}

    def is_depth(t: str) -> bool:
        e = encodings.get(t, "")
        return types[t] == IMAGE_TYPE and (e in ("16uc1", "32fc1") or (e == "mono16" and "depth" in t.lower()))

    def is_color(t: str) -> bool:
        e = encodings.get(t, "")
        if types[t] == COMPRESSED_TYPE:
            return "depth" not in e and "depth" not in t.lower()
        return types[t] == IMAGE_TYPE and e in COLOR_ENCODINGS and not is_depth(t)

    if rgb_topic is None:
        rgb_topic = _pick([t for t in encodings if is_color(t)], ("color", "rgb"), "colour image", "--rgb-topic")
        if rgb_topic is None:
            raise FrameSourceError(f"no colour image topic in {p} (sensor_msgs/msg/Image with one of "
                                   f"{', '.join(COLOR_ENCODINGS)}, or CompressedImage); topics: {listing}")
    if use_depth and depth_topic is None:
        depth_topic = _pick(_nearest([t for t in encodings if is_depth(t) and t != rgb_topic], rgb_topic),
                            ("aligned", "registered"), "depth image", "--depth-topic", " (or --no-depth)")
    if info_topic is None:
        infos = [t for t, m in types.items() if m == INFO_TYPE]
        near = [t for t in infos if _namespace(t) == _namespace(rgb_topic)]
        info_topic = near[0] if len(near) == 1 else _pick(_nearest(infos, rgb_topic), (), "camera_info",
                                                          "--info-topic")
    tf_topics = []
    if use_poses:
        tf_topics = [pose_topic] if pose_topic else [t for t, m in types.items() if m in (TF_TYPE, TRANSFORM_TYPE)]
    return _Topics(rgb_topic, depth_topic if use_depth else None, info_topic, tf_topics, by_topic, types)


def _index(reader, p, ts, topics: _Topics, tf_tolerance: float, progress: bool, notes: list[str]) -> _Index:
    """Pass 1: image stamps from the CDR headers (nothing decoded), camera infos and transforms."""
    by = topics.by_topic
    rgb_conns, depth_conns = by[topics.rgb], by.get(topics.depth, []) if topics.depth else []
    info_conns = by.get(topics.info, []) if topics.info else []
    tf_conns = [c for t in topics.tf for c in by[t]]
    index = _Index([], [], [], TransformTree(tolerance=tf_tolerance),
                   {c.id: "rgb" for c in rgb_conns} | {c.id: "depth" for c in depth_conns})
    bad_tf = 0
    wanted = [*rgb_conns, *depth_conns, *info_conns, *tf_conns]
    counters = {"rgb": 0, "depth": 0}
    for c, _, raw in progress_bar(reader.messages(connections=wanted), progress, "indexing bag",
                                  sum(x.msgcount for x in wanted)):
        role = index.roles.get(c.id)
        if role is not None:
            (index.rgb if role == "rgb" else index.depth).append((_header_stamp(raw), counters[role]))
            counters[role] += 1
        elif c.msgtype == INFO_TYPE:
            m = ts.deserialize_cdr(raw, c.msgtype)
            index.infos.append((_stamp(m.header.stamp), np.asarray(m.k, np.float64).reshape(3, 3), int(m.height),
                                int(m.width)))
        else:
            m = ts.deserialize_cdr(raw, c.msgtype)
            for tr in (m.transforms if c.msgtype == TF_TYPE else [m]):
                try:
                    index.tree.add(tr.header.frame_id, tr.child_frame_id, _stamp(tr.header.stamp),
                                   transform_to_matrix(tr.transform), static=c.topic.endswith("tf_static"))
                except ValueError:
                    bad_tf += 1
    if not index.rgb:
        raise FrameSourceError(f"the colour topic {topics.rgb} of {p} has no messages")
    if bad_tf:
        notes.append(f"{bad_tf} transform(s) with a zero quaternion ignored")
    return index


def _match_depth(chosen: list[tuple[float, int]], depth: list[tuple[float, int]], slop: float) -> dict[int, int]:
    """Colour message order → the depth message order nearest in stamp, within ``slop`` seconds."""
    d_times = sorted(depth)
    d_keys = [s for s, _ in d_times]
    out: dict[int, int] = {}
    for stamp, idx in chosen:
        j = bisect.bisect_left(d_keys, stamp)
        best = min((k for k in (j - 1, j) if 0 <= k < len(d_keys)), key=lambda k: abs(d_keys[k] - stamp), default=None)
        if best is not None and abs(d_keys[best] - stamp) <= slop:
            out[idx] = d_times[best][1]
    return out


def _decode_chosen(reader, ts, topics: _Topics, index: _Index, want_rgb: set[int], want_depth: set[int],
                   progress: bool) -> tuple[dict[int, Any], dict[int, Any]]:
    """Pass 2: only the chosen colour and depth messages are deserialised."""
    conns = [*topics.by_topic[topics.rgb], *(topics.by_topic.get(topics.depth, []) if topics.depth else [])]
    msgs: dict[str, dict[int, Any]] = {"rgb": {}, "depth": {}}
    counters = {"rgb": 0, "depth": 0}
    for c, _, raw in progress_bar(reader.messages(connections=conns), progress, "reading frames",
                                  sum(x.msgcount for x in conns)):
        role = index.roles[c.id]
        i = counters[role]
        counters[role] += 1
        if i in (want_rgb if role == "rgb" else want_depth):
            msgs[role][i] = ts.deserialize_cdr(raw, c.msgtype)
    return msgs["rgb"], msgs["depth"]


def _frames(chosen, rgb_msgs, depth_msgs, depth_for, topics: _Topics, index: _Index, map_frame, box, hfov_deg,
            depth_scale, notes: list[str]) -> tuple[list[Frame], str | None, tuple[int, int]]:
    """The chosen messages as frames (intrinsics from the nearest camera_info, pose from the TF tree), fitted
    into ``box``; the map frame used; the first image's size."""
    frames: list[Frame] = []
    first_size = None
    map_used, no_pose = map_frame, 0
    info_stamps = [s for s, *_ in index.infos]
    if not index.infos:
        notes.append(f"no camera_info: intrinsics guessed from a {hfov_deg:g} degree horizontal field of view")
    for stamp, idx in chosen:
        msg = rgb_msgs[idx]
        rgb = _decode_rgb(msg, topics.rgb)
        H, W = rgb.shape[:2]
        if first_size is None:
            first_size = (H, W)
        elif (H, W) != first_size and not any("image size changes" in n for n in notes):
            notes.append(f"{topics.rgb}: image size changes from {first_size[1]}x{first_size[0]} to {W}x{H}: "
                         "fitted to one network size, aspect kept")
        K = guess_intrinsics(H, W, hfov_deg)
        if index.infos:
            _, Ki, ih, iw = index.infos[min(range(len(index.infos)), key=lambda k: abs(info_stamps[k] - stamp))]
            if (ih and iw) and (ih, iw) != (H, W):
                raise FrameSourceError(f"{topics.info} describes {iw}x{ih} images but {topics.rgb} has {W}x{H}")
            if Ki[0, 0] > 0 and Ki[1, 1] > 0:  # K = 0: an uncalibrated camera, the guess stays
                K = check_intrinsics(Ki, H, W, topics.info)
        depth = None
        if idx in depth_for:
            dm = depth_msgs[depth_for[idx]]
            d = decode_depth(dm.encoding, dm.height, dm.width, dm.step, dm.data, bool(dm.is_bigendian),
                             depth_scale=depth_scale)
            depth = match_depth_size(d, H, W, topics.depth)
        frame_id = (msg.header.frame_id or "camera").lstrip("/")
        pose = None
        if topics.tf:
            if map_used is None:
                map_used = index.tree.root(frame_id)
            if map_used != frame_id:
                pose = index.tree.lookup(map_used, frame_id, stamp)
            no_pose += pose is None
        frames.append(prepare_frame(Frame(stamp=stamp, rgb=rgb, K=K, frame_id=frame_id, depth=depth, pose=pose), box))
    if topics.tf and no_pose:
        cam, known = frames[0].frame_id, index.tree.frames()
        why = (f"'{cam}' is not in the transform tree (frames: {', '.join(sorted(known)[:8])})"
               if cam not in known else f"no transform '{map_used}' <- '{cam}' at the image stamps")
        notes.append(f"{no_pose} of {len(frames)} frames without a pose: {why}")
    return frames, map_used, first_size


def _decode_rgb(msg: Any, topic: str) -> np.ndarray:
    if hasattr(msg, "encoding"):
        return decode_color(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(bytes(msg.data))) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as e:
        raise FrameSourceError(f"{topic}: cannot decode a CompressedImage of format {msg.format!r}: {e}") from None
