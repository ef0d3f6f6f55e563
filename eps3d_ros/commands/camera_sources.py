"""The frames ``eps3d run`` reads from image folders or a bag, of one camera or several.

One camera: ``--images DIR`` or a bag's colour topic (detected, or ``--rgb-topic``), as always. Several cameras:
``--images`` or ``--rgb-topic`` given once per camera, optionally named ``NAME=DIR`` / ``NAME=TOPIC`` (default: the
folder's name; the colour topic's namespace, ``/head/image`` → ``head``). Each camera's own files and topics follow
it, either as ``NAME=VALUE`` or, unnamed, one per camera in the cameras' order:

    eps3d run --images head=run/head --images wrist=run/wrist \\
              --intrinsics head=head_K.json --intrinsics wrist=wrist_K.json \\
              --poses head=head_poses.txt --poses wrist=wrist_poses.txt --out map.eps3d
    eps3d run --bag rig.mcap --rgb-topic /head/image --rgb-topic /wrist/image --out map.eps3d

(image folders: ``--intrinsics``, ``--poses``, ``--depth-dir``; bags: ``--depth-topic``, ``--info-topic``, found
beside each colour topic when not given; one ``--pose-topic`` / TF tree and one map frame for all.) Each camera is
read by the one-camera reader; the streams are merged in stamp order, each frame named after its camera
(:func:`~eps3d_ros.io.frame_sources.merge_cameras`), and the session takes them as the node takes several cameras:
windows across the cameras (each camera's newest frame and keyframes by turns), one map. Image folders are stamped
``index / --fps`` per camera, so their frames at one index are taken as triggered together. Windows are fused only
in one world frame, so either every camera has poses or none has.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from ..io.frame_sources import FrameSet, merge_cameras
from .guard import UserError

__all__ = ["camera_names", "per_camera", "read_frames"]

_NAMED = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)=(.+)$")  # NAME=VALUE; a camera name is a ROS name token


def _split(value: str) -> tuple[str | None, str]:
    """``"head=DIR"`` → ``("head", "DIR")``; a value without a name (or an existing path with '=') → ``(None, v)``."""
    m = _NAMED.match(value)
    if m and not Path(value).expanduser().exists():
        return m.group(1), m.group(2)
    return None, value


def camera_names(values: list[str], default_name, option: str) -> list[tuple[str, str]]:
    """``[(name, value)]`` of the cameras given by ``option`` (named, or ``default_name(value)``); names unique."""
    out = [(name or default_name(v), v) for name, v in (_split(x) for x in values)]
    names = [n for n, _ in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"two cameras named '{twice[0]}' ({option}): name them, e.g. {option} head=... "
                        f"{option} wrist=...")
    return out


def per_camera(values: list[str] | None, names: list[str], option: str) -> dict[str, str]:
    """``{camera: value}`` of an option given per camera (``NAME=VALUE``, or unnamed in the cameras' order)."""
    if not values:
        return {}
    parsed = [_split(v) for v in values]
    if len(names) == 1 and len(values) == 1:
        name, v = parsed[0]
        if name not in (None, names[0]):
            raise UserError(f"{option} {values[0]}: no camera named '{name}' (the camera: {names[0]})")
        return {names[0]: v if name else values[0]}
    if all(n is not None for n, _ in parsed):
        out: dict[str, str] = {}
        for name, v in parsed:
            if name not in names:
                raise UserError(f"{option} {name}=...: no camera named '{name}' (cameras: {', '.join(names)})")
            if name in out:
                raise UserError(f"{option} given twice for camera '{name}'")
            out[name] = v
        return out
    if all(n is None for n, _ in parsed) and len(values) == len(names):
        return dict(zip(names, values))
    raise UserError(f"{option} given {len(values)} time(s) for {len(names)} cameras ({', '.join(names)}): give it "
                    f"once per camera in their order, or as NAME=VALUE for the cameras that have one")


def _topic_name(topic: str) -> str:
    parts = [p for p in topic.strip("/").split("/")[:-1] if p]
    return "_".join(parts) or "camera"


def read_frames(args: argparse.Namespace, box: tuple[int, int], progress: bool) -> FrameSet:
    """The frames of ``--images`` or ``--bag`` (see the module docstring)."""
    if args.images:
        cams = camera_names(args.images, lambda d: Path(d).expanduser().resolve().name or "camera", "--images")
        sets = {name: _read_images(args, name, folder, [n for n, _ in cams], box, progress) for name, folder in cams}
    else:
        cams = camera_names(args.rgb_topic or [""], _topic_name, "--rgb-topic")
        sets = {}
        map_frame = args.map_frame
        for name, topic in cams:
            sets[name] = _read_bag(args, name, topic or None, [n for n, _ in cams], map_frame, box, progress)
            map_frame = map_frame or sets[name].topics.get("map_frame")  # one map frame for every camera
    if len(sets) == 1:
        return next(iter(sets.values()))
    posed = {name: s.has_poses for name, s in sets.items()}
    if any(posed.values()) and not all(posed.values()):
        without = [n for n, p in posed.items() if not p]
        raise UserError(f"camera(s) {', '.join(without)} have no poses while the others have: windows are fused in "
                        "one world frame, so every camera needs poses (--poses NAME=FILE, or TF in the bag) or none")
    return merge_cameras(sets)


def _read_images(args, name: str, folder: str, names: list[str], box, progress: bool) -> FrameSet:
    from ..io.image_folder import frames_from_images, read_calibration
    from ..io.poses_file import read_poses

    intrinsics = per_camera(args.intrinsics, names, "--intrinsics").get(name)
    poses = per_camera(args.poses, names, "--poses").get(name)
    depth = per_camera(args.depth_dir, names, "--depth-dir").get(name)
    K, K_size = read_calibration(intrinsics) if intrinsics else (None, None)
    return frames_from_images(folder, box=box, every=args.every, max_views=args.max_views, K=K, K_size=K_size,
                              hfov_deg=args.hfov, poses=read_poses(poses) if poses else None,
                              depth_folder=None if args.no_depth else depth, depth_scale=args.depth_scale,
                              fps=args.fps, frame_id=f"{name}_optical" if len(names) > 1 else "camera",
                              progress=progress)


def _read_bag(args, name: str, topic: str | None, names: list[str], map_frame: str | None, box,
              progress: bool) -> FrameSet:
    from ..io.bag_frames import frames_from_bag

    return frames_from_bag(args.bag, rgb_topic=topic, depth_topic=per_camera(args.depth_topic, names,
                                                                              "--depth-topic").get(name),
                           info_topic=per_camera(args.info_topic, names, "--info-topic").get(name),
                           pose_topic=args.pose_topic, map_frame=map_frame, use_depth=not args.no_depth,
                           use_poses=not args.no_poses, every=args.every, max_views=args.max_views, box=box,
                           hfov_deg=args.hfov, sync_slop=args.sync_slop, depth_scale=args.depth_scale,
                           tf_tolerance=args.tf_tolerance, progress=progress)

