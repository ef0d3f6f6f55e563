"""Frames from a rosbag2 (a bag folder, a ``.db3`` or a ``.mcap`` file), read with ``rosbags`` (no ROS needed).

* colour: ``sensor_msgs/msg/Image`` (the encodings of ``pipeline.images``) or ``CompressedImage``
  (JPEG/PNG); depth: ``Image`` 16UC1 (``depth_scale`` m per unit, default mm) or 32FC1 (m), registered
  to the colour camera, matched to each colour frame by the nearest header stamp within ``sync_slop``;
  intrinsics: the ``CameraInfo`` nearest in time (the one beside the colour topic when there are several);
* topics are detected by message type when not given: the one colour topic (names with ``color`` /
  ``rgb`` win a tie), the one depth topic (``aligned`` / ``registered`` win), the ``camera_info`` in
  the colour topic's namespace. Ambiguity is an error naming the candidates;
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
from pathlib import Path
from typing import Any

import numpy as np

from ..frames.frame import Frame
from ..frames.images import COLOR_ENCODINGS, decode_color, decode_depth
from ..frames.intake import prepare_frame, select_indices
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


def _read_bag(reader, p, ts, rgb_topic, depth_topic, info_topic, pose_topic, map_frame, use_depth, use_poses, every,
              max_views, box, hfov_deg, sync_slop, depth_scale, tf_tolerance, progress) -> FrameSet:
    conns = list(reader.connections)
    by_topic: dict[str, list[Any]] = {}
    for c in conns:
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
        depth_topic = _pick([t for t in encodings if is_depth(t) and t != rgb_topic], ("aligned", "registered"),
                            "depth image", "--depth-topic", " (or --no-depth)")
    if not use_depth:
        depth_topic = None
    if info_topic is None:
        infos = [t for t, m in types.items() if m == INFO_TYPE]
        near = [t for t in infos if _namespace(t) == _namespace(rgb_topic)]
        info_topic = near[0] if len(near) == 1 else _pick(infos, (), "camera_info", "--info-topic")
    tf_topics = []
    if use_poses:
        tf_topics = [pose_topic] if pose_topic else [t for t, m in types.items() if m in (TF_TYPE, TRANSFORM_TYPE)]

    # ---- pass 1: stamps of the image topics (from the CDR header), camera infos and transforms
    rgb_conns, depth_conns = by_topic[rgb_topic], by_topic.get(depth_topic, []) if depth_topic else []
    info_conns = by_topic.get(info_topic, []) if info_topic else []
    tf_conns = [c for t in tf_topics for c in by_topic[t]]
    rgb_stamps: list[tuple[float, int]] = []
    depth_stamps: list[tuple[float, int]] = []
    infos: list[tuple[float, np.ndarray, int, int]] = []
    tree = TransformTree(tolerance=tf_tolerance)
    notes: list[str] = []
    bad_tf = 0
    n_msgs = sum(c.msgcount for c in [*rgb_conns, *depth_conns, *info_conns, *tf_conns])
    counters = {"rgb": 0, "depth": 0}
    roles = {c.id: "rgb" for c in rgb_conns} | {c.id: "depth" for c in depth_conns}
    wanted = [*rgb_conns, *depth_conns, *info_conns, *tf_conns]
    for c, _, raw in progress_bar(reader.messages(connections=wanted), progress, "indexing bag", n_msgs):
        role = roles.get(c.id)
        if role is not None:
            (rgb_stamps if role == "rgb" else depth_stamps).append((_header_stamp(raw), counters[role]))
            counters[role] += 1
        elif c.msgtype == INFO_TYPE:
            m = ts.deserialize_cdr(raw, c.msgtype)
            infos.append((_stamp(m.header.stamp), np.asarray(m.k, np.float64).reshape(3, 3), int(m.height), int(m.width)))
        else:
            m = ts.deserialize_cdr(raw, c.msgtype)
            items = m.transforms if c.msgtype == TF_TYPE else [m]
            for tr in items:
                try:
                    tree.add(tr.header.frame_id, tr.child_frame_id, _stamp(tr.header.stamp),
                             transform_to_matrix(tr.transform), static=c.topic.endswith("tf_static"))
                except ValueError:
                    bad_tf += 1
    if not rgb_stamps:
        raise FrameSourceError(f"the colour topic {rgb_topic} of {p} has no messages")
    if bad_tf:
        notes.append(f"{bad_tf} transform(s) with a zero quaternion ignored")

    # ---- selection (by header stamp), depth matching
    rgb_stamps.sort()
    pick = select_indices(len(rgb_stamps), every, max_views)
    chosen = [rgb_stamps[i] for i in pick]
    d_times = sorted(depth_stamps)
    d_keys = [s for s, _ in d_times]
    depth_for: dict[int, int] = {}
    for stamp, idx in chosen:
        j = bisect.bisect_left(d_keys, stamp)
        best = min((k for k in (j - 1, j) if 0 <= k < len(d_keys)), key=lambda k: abs(d_keys[k] - stamp), default=None)
        if best is not None and abs(d_keys[best] - stamp) <= sync_slop:
            depth_for[idx] = d_times[best][1]
    if depth_topic and len(depth_for) < len(chosen):
        notes.append(f"{len(chosen) - len(depth_for)} of {len(chosen)} frames without depth (no {depth_topic} "
                     f"message within {sync_slop} s)")

    # ---- pass 2: decode the chosen messages
    want_rgb = {idx for _, idx in chosen}
    want_depth = set(depth_for.values())
    rgb_msgs: dict[int, Any] = {}
    depth_msgs: dict[int, Any] = {}
    counters = {"rgb": 0, "depth": 0}
    for c, _, raw in progress_bar(reader.messages(connections=[*rgb_conns, *depth_conns]), progress, "reading frames",
                               sum(x.msgcount for x in [*rgb_conns, *depth_conns])):
        role = roles[c.id]
        i = counters[role]
        counters[role] += 1
        if role == "rgb" and i in want_rgb:
            rgb_msgs[i] = ts.deserialize_cdr(raw, c.msgtype)
        elif role == "depth" and i in want_depth:
            depth_msgs[i] = ts.deserialize_cdr(raw, c.msgtype)

    frames: list[Frame] = []
    first_size = None
    map_used = map_frame
    no_pose = 0
    info_stamps = [s for s, *_ in infos]
    if not infos:
        notes.append(f"no camera_info: intrinsics guessed from a {hfov_deg:g} degree horizontal field of view")
    for stamp, idx in chosen:
        msg = rgb_msgs[idx]
        rgb = _decode_rgb(msg, rgb_topic)
        H, W = rgb.shape[:2]
        if first_size is None:
            first_size = (H, W)
        elif (H, W) != first_size and not any("image size changes" in n for n in notes):
            notes.append(f"{rgb_topic}: image size changes from {first_size[1]}x{first_size[0]} to {W}x{H}: "
                         "fitted to one network size, aspect kept")
        K = guess_intrinsics(H, W, hfov_deg)
        if infos:
            j = min(range(len(infos)), key=lambda k: abs(info_stamps[k] - stamp))
            _, Ki, ih, iw = infos[j]
            if (ih and iw) and (ih, iw) != (H, W):
                raise FrameSourceError(f"{info_topic} describes {iw}x{ih} images but {rgb_topic} has {W}x{H}")
            if Ki[0, 0] > 0 and Ki[1, 1] > 0:
                K = Ki
        depth = None
        if idx in depth_for:
            dm = depth_msgs[depth_for[idx]]
            d = decode_depth(dm.encoding, dm.height, dm.width, dm.step, dm.data, bool(dm.is_bigendian),
                             depth_scale=depth_scale)
            depth = match_depth_size(d, H, W, depth_topic)
        frame_id = (msg.header.frame_id or "camera").lstrip("/")
        pose = None
        if tf_topics:
            if map_used is None:
                map_used = tree.root(frame_id)
            if map_used != frame_id:
                pose = tree.lookup(map_used, frame_id, stamp)
            if pose is None:
                no_pose += 1
        frames.append(prepare_frame(Frame(stamp=stamp, rgb=rgb, K=K, frame_id=frame_id, depth=depth, pose=pose), box))
    if tf_topics and no_pose:
        cam = frames[0].frame_id
        why = (f"'{cam}' is not in the transform tree (frames: {', '.join(sorted(tree.frames())[:8])})"
               if cam not in tree.frames() else f"no transform '{map_used}' <- '{cam}' at the image stamps")
        notes.append(f"{no_pose} of {len(frames)} frames without a pose: {why}")
    topics = {"rgb": rgb_topic}
    if depth_topic:
        topics["depth"] = depth_topic
    if info_topic:
        topics["camera_info"] = info_topic
    if tf_topics:
        topics["poses"] = ", ".join(tf_topics)
        if map_used:
            topics["map_frame"] = map_used
    return FrameSet(frames=frames, source=f"bag {p}", original_size=first_size, size=frames[-1].size, selected=pick,
                    total=len(rgb_stamps), topics=topics, notes=notes)


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
