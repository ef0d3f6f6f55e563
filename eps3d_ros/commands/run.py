"""``eps3d run``: frames from an image folder or a rosbag2 → EPS3D window by window → the object map, written as
a map file (a scene file with the map's state: ``eps3d query/export/render`` read it, ``~/load_map`` loads it).
A run whose single window is not in the map frame (no poses) writes that window's scene file instead: every
Gaussian, for export and renders.

    eps3d run --images DIR --out map.eps3d [--poses FILE] [--every K] [--window N] [--size HxW] [--model DIR]
    eps3d run --bag PATH --out map.eps3d [--rgb-topic T] [--depth-topic T] [--info-topic T] [--pose-topic T]
    eps3d run --images head=DIR1 --images wrist=DIR2 [--poses head=FILE1 --poses wrist=FILE2 ...] --out map.eps3d
    eps3d run --bag PATH --rgb-topic /head/image --rgb-topic /wrist/image --out map.eps3d
    eps3d run --dataset scannet --root DIR --scene ID --out map.eps3d    (scannet, scannetpp, replica, transforms)

The frames go through the same :class:`~eps3d_ros.pipeline.session.Session` as the node: every ``--window``
frames one reconstruction, fused into one map in the map frame when the frames carry metric poses (bag TF,
or ``--poses`` for an image folder). Without poses windows cannot be fused, so the frames (at most
``--max-views``, default 8) make one window.

Several cameras (``--images`` or ``--rgb-topic`` once per camera, each with its own intrinsics, depth and poses:
:mod:`eps3d_ros.commands.camera_sources`) go into the same windows, as the node's ``input.cameras`` do: one stream in
stamp order, windows across the cameras, one map.

Frame selection and fitting to the network (one scale factor, aspect kept, centre-cropped to multiples of
14) are described in :mod:`eps3d_ros.frames.intake`; the readers in :mod:`eps3d_ros.io.image_folder` and
:mod:`eps3d_ros.io.bag_frames`; the scene file format in :mod:`eps3d_ros.io.scene_file`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ..data.datasets import DATASET_KINDS
from .arguments import add_frame_arguments, add_model_arguments, add_panoptic_arguments, input_box, parse_names, pipeline_config
from .guard import EXIT_OK, UserError, guarded
from .model_folder import check_device, demo_model_dir, load_bundle
from .report import Timer, file_size, objects_table, units

HELP = "build an object map (a scene file) from an image folder, a rosbag2 or a dataset scene"
MAX_VIEWS_WITHOUT_POSES = 8  # one window of at most this many frames when nothing lets windows be fused
WINDOW_WITH_POSES = 4


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run", help=HELP, description=HELP + ". Frames are selected (every K-th, at most N spread evenly) and fitted "
        "into the model's input size by one scale factor (aspect kept), centre-cropped to multiples of 14 "
        "(intrinsics follow exactly). With poses (bag TF, or --poses) every --window frames are reconstructed and "
        "fused into one object map with stable ids; without poses the frames (at most 8 by default) are one window.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", metavar="[NAME=]DIR", action="append",
                     help="folder of images (sorted by name; jpg, png, bmp, tif, webp); once per camera for several "
                          "cameras (NAME: the camera, default the folder's name)")
    src.add_argument("--bag", metavar="PATH", help="rosbag2: a bag folder, a .db3 or a .mcap file")
    src.add_argument("--dataset", choices=DATASET_KINDS,
                     help="a dataset scene (with --root, --scene): poses, depth and intrinsics from its files, the map "
                          "in the dataset's world frame")
    p.add_argument("--out", required=True, metavar="MAP", help="map file to write (a scene file, e.g. room.eps3d)")
    p.add_argument("--window", type=int, metavar="N", help=f"frames per reconstruction (default: "
                                                          f"{WINDOW_WITH_POSES} with poses, else all frames)")
    add_model_arguments(p, demo=True)
    add_frame_arguments(p)
    ds = p.add_argument_group("datasets (eps3d_ros/data/)")
    ds.add_argument("--root", metavar="DIR", help="dataset root (or the capture folder for --dataset transforms)")
    ds.add_argument("--scene", metavar="ID", help="scene id (optional for a single capture)")
    ds.add_argument("--invalid-poses", choices=("error", "skip"), default="skip",
                    help="ScanNet frames with inf/NaN poses: left out (default) or an error")
    im = p.add_argument_group("image folders")
    im.add_argument("--depth-dir", metavar="[NAME=]DIR", action="append",
                    help="depth images paired by sorted order (16-bit PNG, mm)")
    im.add_argument("--intrinsics", metavar="[NAME=]JSON", action="append",
                    help="K of the original images: {'K': 3x3} | fx/fy/cx/cy | Open3D intrinsic_matrix (default: "
                         "--hfov guess)")
    im.add_argument("--poses", metavar="[NAME=]FILE", action="append",
                    help="camera-to-world pose per image, sorted order: Open3D .log, TUM .txt or .json (see "
                         "eps3d_ros/io/poses_file.py). With several cameras these three are given per camera, as "
                         "NAME=FILE or in the cameras' order; poses in one world frame")
    im.add_argument("--fps", type=float, default=30.0, help="frame rate for the stamps (default 30)")
    bag = p.add_argument_group("bags (topics are detected by message type when not given)")
    bag.add_argument("--rgb-topic", metavar="[NAME=]TOPIC", action="append",
                     help="sensor_msgs/Image or CompressedImage; once per camera for several cameras (NAME: the "
                          "camera, default the topic's namespace)")
    bag.add_argument("--depth-topic", metavar="[NAME=]TOPIC", action="append",
                     help="sensor_msgs/Image 16UC1 (mm) or 32FC1 (m) (default: the one nearest the colour topic)")
    bag.add_argument("--info-topic", metavar="[NAME=]TOPIC", action="append",
                     help="sensor_msgs/CameraInfo (default: the one beside the colour topic)")
    bag.add_argument("--pose-topic", metavar="TOPIC",
                     help="geometry_msgs/TransformStamped or tf2_msgs/TFMessage (default: /tf, /tf_static and every "
                          "TransformStamped topic)")
    bag.add_argument("--map-frame", metavar="FRAME", help="frame of the poses (default: the root of the camera's TF chain)")
    bag.add_argument("--no-poses", action="store_true", help="ignore transforms")
    bag.add_argument("--sync-slop", type=float, default=0.05, metavar="S",
                     help="max colour/depth stamp difference in s (default 0.05)")
    bag.add_argument("--tf-tolerance", type=float, default=0.1, metavar="S",
                     help="use the nearest transform sample within S seconds when none brackets the stamp (default 0.1)")
    both = p.add_argument_group("depth")
    both.add_argument("--no-depth", action="store_true", help="ignore depth")
    both.add_argument("--depth-scale", type=float, default=0.001, metavar="M",
                      help="metres per unit of 16-bit depth (default 0.001: mm)")
    both.add_argument("--measured-depth", action="store_true",
                      help="with depth and poses: Gaussian centres from the measured depth")
    p.add_argument("--max-alignment-error", type=float, metavar="F",
                   help="a window whose camera centres fit the poses with a residual above F x the cameras' spread "
                        "is not trusted and stays in the camera frame (default 0.25: pipeline.max_alignment_error)")
    add_panoptic_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars (none either when stderr is not a terminal)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.set_defaults(func=run)
    return p


def _check_out(path: str) -> Path:
    out = Path(path).expanduser()
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file name such as {out / 'scene.eps3d'}")
    if not out.parent.exists():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist")
    return out


@guarded
def run(args: argparse.Namespace) -> int:
    timer = Timer()
    out = _check_out(args.out)
    model = demo_model_dir(args.model)
    # everything that can be wrong with the arguments is found before a frame is read
    bundle = load_bundle(model)
    check_device(args.device)
    for names in (args.vocabulary, args.stuff):
        parse_names(names)
    for name in ("window", "max_views"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.max_alignment_error is not None:
        args.settings = [*args.settings, f"pipeline.max_alignment_error={args.max_alignment_error}"]
    box = input_box(args, bundle)
    cfg = pipeline_config(args, model, args.window or WINDOW_WITH_POSES, use_depth=not args.no_depth,
                          measured_depth=args.measured_depth)
    if args.poses and not args.images:
        raise UserError("--poses is for image folders: a bag's poses come from its TF (--pose-topic), a dataset's "
                        "from its files")
    if args.images:  # before any image is decoded: would the window fit in memory?
        _check_folder_memory(args, box, bundle, cfg)
    from ..pipeline.loading import check_text_weights

    check_text_weights(cfg)  # an offline robot without the CLIP file fails now, not after reading every frame
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    from .camera_sources import read_frames

    progress = not args.no_progress and sys.stderr.isatty()  # no bars in logs and pipes
    with timer.stage("read frames"):
        fs = _dataset_frames(args, box, progress) if args.dataset else read_frames(args, box, progress)
    frames, notes = _windows_plan(fs, args)
    _say_frames(say, fs, frames, notes)

    from ..pipeline.loading import load_reconstructor
    from ..pipeline.session import Session
    from .run_summary import WindowLog

    window = args.window if (args.window and fs.has_poses) else (WINDOW_WITH_POSES if fs.has_poses else len(frames))
    p = cfg.pipeline
    p.window_size = p.every_n_frames = min(window, len(frames))
    p.buffer_size = max(p.buffer_size, p.window_size)
    p.keyframe_min_interval = p.keyframe_min_translation = p.keyframe_min_rotation = 0.0  # recorded: every frame
    with timer.stage("load model"):
        rec = load_reconstructor(cfg, frame_size=fs.size)
    windows = WindowLog()
    session = Session(rec.config, rec, on_update=windows)
    try:
        _feed(session, frames, timer, progress=progress)
        info = {"source": fs.source, "selected_frames": fs.selected, "total_frames": fs.total,
                "original_size": list(fs.original_size), "topics": fs.topics, "model": str(model)}
        if fs.cameras:
            info["cameras"] = fs.cameras
        with timer.stage("write file"):
            if session.map.fused or not windows.snapshots:
                session.save_map(out, info, replace="scene")
            else:  # one window, not in the map frame: its full scene (every Gaussian) is the better file
                from ..io.scene_file import save_scene, scene_file_from_snapshot

                save_scene(out, scene_file_from_snapshot(windows.snapshots[-1], rec.text_encoder.config, info))
    finally:
        session.close()
    return _report(args, out, session, windows, frames, fs, timer)


def _check_folder_memory(args, box, bundle, cfg) -> None:
    """Refuse, from the image headers alone, a window that would not fit in memory (pipeline/memory.py); with
    several cameras the window's size is the one the intake will choose from each camera's first image."""
    from ..frames.intake import network_size, select_indices, window_size_of
    from ..io.image_folder import list_images, peek_image_size
    from ..pipeline.memory import check_window_memory
    from .camera_sources import camera_names

    sizes, picked = [], 0
    for _, folder in camera_names(args.images, lambda d: Path(d).name or "camera", "--images"):
        files = list_images(folder)
        pick = select_indices(len(files), args.every, args.max_views)
        picked += len(pick)
        sizes.append(network_size(*peek_image_size(files[pick[0]]), box))
    views = (min(args.window or WINDOW_WITH_POSES, picked) if args.poses
             else min(picked, args.max_views or MAX_VIEWS_WITHOUT_POSES))
    h, w = window_size_of(sizes)
    check_window_memory(views, h, w, bundle.weights.stat().st_size, cfg.pipeline.max_memory_mb,
                        check_device(args.device), tuple(bundle.input_size))


def _say_frames(say, fs, frames: list, notes: list[str]) -> None:
    from ..frames.intake import enlargement

    H, W = fs.original_size
    h, w = fs.size
    say(f"frames: {len(frames)} of {fs.total} from {fs.source} ({H}x{W} -> {h}x{w}, HxW); "
        f"depth: {'yes' if fs.has_depth else 'no'}, poses: {'yes' if fs.has_poses else 'no'}")
    if fs.cameras:
        say("cameras: " + ", ".join(f"{name} ({n} frames)" for name, n in fs.cameras.items()))
    factor = enlargement(H, W, h, w)
    if factor > 1.0:
        notes = [*notes, f"the frames are ENLARGED {factor:.1f}x ({W}x{H} -> {w}x{h}, WxH): no detail is gained, "
                         "only memory and time; a --size at or below the source size avoids it"]
    for role, topic in fs.topics.items():
        say(f"  {role}: {topic}")
    for note in [*fs.notes, *notes]:
        say(f"  note: {note}")


def _dataset_frames(args, box, progress: bool):
    if not args.root:
        raise UserError("--dataset needs --root DIR (and --scene ID unless the root is one capture)")
    from ..io.dataset_frames import frames_from_dataset

    options = {"invalid_poses": args.invalid_poses} if args.dataset == "scannet" else {}
    return frames_from_dataset(args.dataset, args.root, args.scene, box=box, every=args.every,
                               max_views=args.max_views, use_depth=not args.no_depth, fps=args.fps, progress=progress,
                               options=options)


def _windows_plan(fs, args) -> tuple[list, list[str]]:
    """The frames to feed: without poses (nothing lets windows be fused) one window of at most 8 unless --max-views
    says; options that then have no effect are named."""
    frames, notes = list(fs.frames), []
    if not fs.has_poses and args.max_views is None and len(frames) > MAX_VIEWS_WITHOUT_POSES:
        from ..frames.intake import select_indices

        keep = select_indices(len(frames), 1, MAX_VIEWS_WITHOUT_POSES)
        frames = [frames[i] for i in keep]
        notes.append(f"no poses: windows cannot be fused into one map, so {len(frames)} of the {len(fs.frames)} "
                     "frames (spread evenly) make one window (--max-views to change; --poses or a bag with TF to "
                     "map a longer sequence)")
    if not fs.has_poses and args.window:
        notes.append(f"--window {args.window} has no effect without poses: windows cannot be fused, so the "
                     f"{len(frames)} frames make one window")
    if args.measured_depth and not (fs.has_poses and fs.has_depth):
        missing = " and ".join(w for w, have in (("poses", fs.has_poses), ("depth", fs.has_depth)) if not have)
        notes.append(f"--measured-depth has no effect without {missing}: Gaussian centres come from the network")
    return frames, notes


def _feed(session, frames: list, timer: Timer, progress: bool) -> None:
    """Offer the frames one by one; each window is reconstructed and fused before the next is queued."""
    from tqdm import tqdm

    windows = session.config.pipeline.window_size
    bar = tqdm(total=len(frames), desc="mapping", unit="frame", disable=not progress, leave=False)
    done = 0
    for f in frames:
        session.offer(f)
        bar.update()
        if session.stats()["worker_submitted"] > done:
            done = session.stats()["worker_submitted"]
            _wait(session, timer)
    if len(frames) % windows:  # the last frames: one more window ending with them
        ok, message = session.reconstruct_now()
        if ok:
            _wait(session, timer)
    bar.close()


def _wait(session, timer: Timer) -> None:
    before = session.snapshot
    if not session.wait_idle(3600):
        raise UserError("a window did not finish within an hour")
    if session.stats()["failures"]:
        raise UserError(session.stats()["last_error"])
    snap = session.snapshot
    if snap is not None and snap is not before:
        for k in ("preprocess", "network", "alignment", "panoptic"):
            timer.add(k, snap.timings[k])
        timer.add("fusion", session.stats()["last_fusion_s"])


def _report(args, out: Path, session, windows, frames: list, fs, timer: Timer) -> int:
    """The summary from the file as written (what `eps3d query` reads) and the windows' outcomes."""
    from ..io.scene_file import load_scene
    from .run_summary import file_objects, outcome_counts, reasons_text

    sf = load_scene(out)
    is_map = isinstance(sf.info.get("map"), dict)
    counts = outcome_counts(windows.outcomes, is_map and session.map.fused)
    objects = file_objects(sf)
    warnings = sorted({s.alignment.warning for s in windows.snapshots if s.alignment.warning})
    if args.json:
        print(json.dumps({"file": str(out), "kind": "map" if is_map else "scene", "frames": len(frames),
                          "windows": counts, "window_outcomes": [dataclasses.asdict(o) for o in windows.outcomes],
                          "size": list(fs.size), "topics": fs.topics, "objects": len(objects),
                          "things": sum(o["is_thing"] for o in objects), "frame_id": sf.frame_id,
                          "scale_known": sf.scale_known, "fused": session.map.fused,
                          "cameras": fs.cameras, "last_window_views": session.stats().get("last_window_views", ""),
                          "alignment": sorted({s.alignment.method for s in windows.snapshots}),
                          "warnings": warnings, "object_table": objects,
                          "timings_s": {k: round(v, 4) for k, v in timer.stages.items()}}, indent=2))
        return EXIT_OK
    held = (f"{counts['in_file']} fused window(s)" if is_map and session.map.fused else "the last window only")
    print(f"windows: {counts['reconstructed']} reconstructed, {counts['fused']} fused into the map, "
          f"{counts['camera_frame']} left in the camera frame; the file holds {held}")
    for line in reasons_text(windows.outcomes):
        print(f"  {line}")
    print(f"{'map' if is_map else 'scene'}: {len(objects)} objects in '{sf.frame_id}' ({units(sf.scale_known)})")
    last = windows.snapshots[-1] if windows.snapshots else None
    if last is not None:
        for note in last.notes:
            if note != last.alignment.warning and note not in {o.reason for o in windows.outcomes}:
                print(f"  note: {note}")
    seen = {o["id"]: o["observations"] for o in objects if "observations" in o} if is_map else None
    print(objects_table(sf.scene, sf.scale_known, limit=30, seen=seen))
    print(f"wrote {out} ({file_size(out)}: {'the map' if is_map else 'the window scene, every Gaussian'})")
    print("timings:")
    print(timer.report())
    return EXIT_OK
