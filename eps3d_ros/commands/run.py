"""``eps3d run``: frames from an image folder or a rosbag2 → EPS3D → a scene file.

    eps3d run --images DIR --out scene.eps3d [--every K] [--max-views N] [--size HxW] [--model DIR]
    eps3d run --bag PATH --out scene.eps3d [--rgb-topic T] [--depth-topic T] [--info-topic T] [--pose-topic T]

Frame selection and fitting to the network (one scale factor, aspect kept, centre-cropped to multiples of
14) are described in :mod:`eps3d_ros.pipeline.intake`; the readers in :mod:`eps3d_ros.io.image_folder` and
:mod:`eps3d_ros.io.bag_frames`; the scene file format in :mod:`eps3d_ros.io.scene_file`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import (
    EXIT_OK,
    Timer,
    UserError,
    add_frame_arguments,
    add_model_arguments,
    add_panoptic_arguments,
    check_device,
    demo_model_dir,
    file_size,
    guarded,
    input_box,
    print_notes,
    load_bundle,
    objects_table,
    parse_names,
    pipeline_config,
    units,
)

HELP = "reconstruct a scene file from an image folder or a rosbag2"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run", help=HELP, description=HELP + ". Frames are selected (every K-th, at most N spread evenly) and fitted "
        "into the model's input size by one scale factor (aspect kept), centre-cropped to multiples of 14 "
        "(intrinsics follow exactly); frames of different sizes are brought to one network size.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", metavar="DIR", help="folder of images (sorted by name; jpg, png, bmp, tif, webp)")
    src.add_argument("--bag", metavar="PATH", help="rosbag2: a bag folder, a .db3 or a .mcap file")
    p.add_argument("--out", required=True, metavar="SCENE", help="scene file to write (e.g. scene.eps3d)")
    add_model_arguments(p, demo=True)
    add_frame_arguments(p)
    im = p.add_argument_group("image folders")
    im.add_argument("--depth-dir", metavar="DIR", help="depth images paired by sorted order (16-bit PNG, mm)")
    im.add_argument("--intrinsics", metavar="JSON", help="K of the original images: {'K': 3x3} | fx/fy/cx/cy | "
                                                         "Open3D intrinsic_matrix (default: --hfov guess)")
    im.add_argument("--fps", type=float, default=30.0, help="frame rate for the stamps (default 30)")
    bag = p.add_argument_group("bags (topics are detected by message type when not given)")
    bag.add_argument("--rgb-topic", metavar="TOPIC", help="sensor_msgs/Image or CompressedImage")
    bag.add_argument("--depth-topic", metavar="TOPIC", help="sensor_msgs/Image 16UC1 (mm) or 32FC1 (m)")
    bag.add_argument("--info-topic", metavar="TOPIC", help="sensor_msgs/CameraInfo")
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
    box = input_box(args, bundle)
    cfg = pipeline_config(args, model, max(1, args.max_views), use_depth=not args.no_depth,
                          measured_depth=args.measured_depth)
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    from ..io.bag_frames import frames_from_bag
    from ..io.image_folder import frames_from_images, read_calibration

    progress = not args.no_progress and sys.stderr.isatty()  # no bars in logs and pipes
    from tqdm import tqdm

    stages = tqdm(total=4, desc="read frames", unit="stage", disable=not progress, leave=False,
                  bar_format="{desc:<16} {n_fmt}/{total_fmt} stages {bar} {elapsed}")
    with timer.stage("read frames"):
        if args.images:
            K, K_size = read_calibration(args.intrinsics) if args.intrinsics else (None, None)
            fs = frames_from_images(args.images, box=box, every=args.every, max_views=args.max_views, K=K,
                                    K_size=K_size, hfov_deg=args.hfov,
                                    depth_folder=None if args.no_depth else args.depth_dir,
                                    depth_scale=args.depth_scale, fps=args.fps, progress=progress)
        else:
            fs = frames_from_bag(args.bag, rgb_topic=args.rgb_topic, depth_topic=args.depth_topic,
                                 info_topic=args.info_topic, pose_topic=args.pose_topic, map_frame=args.map_frame,
                                 use_depth=not args.no_depth, use_poses=not args.no_poses, every=args.every,
                                 max_views=args.max_views, box=box, hfov_deg=args.hfov,
                                 sync_slop=args.sync_slop, depth_scale=args.depth_scale, tf_tolerance=args.tf_tolerance,
                                 progress=progress)
    stages.update()
    H, W = fs.original_size
    h, w = fs.size
    stages.clear()
    say(f"frames: {len(fs.frames)} of {fs.total} from {fs.source} ({H}x{W} -> {h}x{w}, HxW); "
        f"depth: {'yes' if fs.has_depth else 'no'}, poses: {'yes' if fs.has_poses else 'no'}")
    for role, topic in fs.topics.items():
        say(f"  {role}: {topic}")
    for note in fs.notes:
        say(f"  note: {note}")

    from ..io.scene_file import reconstruct_scene_file, save_scene
    from ..pipeline.loading import load_reconstructor

    pc = cfg.pipeline
    pc.window_size = pc.every_n_frames = len(fs.frames)
    stages.set_description("load model")
    with timer.stage("load model"):
        rec = load_reconstructor(cfg)
    stages.update()
    stages.set_description("reconstruct")
    info = {"source": fs.source, "selected_frames": fs.selected, "total_frames": fs.total,
            "original_size": list(fs.original_size), "topics": fs.topics, "model": str(model)}
    sf, snap = reconstruct_scene_file(rec, fs.frames, info=info)
    for k in ("preprocess", "network", "alignment", "panoptic"):
        timer.add(k, snap.timings[k])
    stages.update()
    stages.set_description("write scene")
    with timer.stage("write scene"):
        save_scene(out, sf)
    stages.update()
    stages.close()
    scene = sf.scene
    if args.json:
        print(json.dumps({"scene": str(out), "frames": len(fs.frames), "size": [h, w], "gaussians": scene.num_gaussians,
                          "objects": len(scene.objects), "frame_id": sf.frame_id, "scale_known": sf.scale_known,
                          "alignment": snap.alignment.method, "notes": list(snap.notes),
                          "timings_s": {k: round(v, 4) for k, v in timer.stages.items()}}, indent=2))
        return EXIT_OK
    print(f"scene: {scene.num_gaussians} Gaussians, {len(scene.objects)} objects in '{sf.frame_id}' "
          f"({units(sf.scale_known)}; alignment {snap.alignment.method})")
    print_notes(snap)
    print(objects_table(scene, sf.scale_known, limit=30))
    print(f"wrote {out} ({file_size(out)})")
    print("timings:")
    print(timer.report())
    return EXIT_OK
