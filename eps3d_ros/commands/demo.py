"""``eps3d demo``: the whole pipeline on a fresh machine (no network, no GPU) with the demo model.

A synthetic tabletop scene (or ``--images DIR``) → EPS3D (``models/demo_tiny``) → labelled objects,
the answer to a query, PNG renders with a legend, a PLY and a scene file in ``--out``, and the time
of every stage. ``--ros`` also runs eps3d_node in-process on the same frames over real topics and
calls its ``~/query_objects`` service as a grasp planner would.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .arguments import add_model_arguments, add_panoptic_arguments, input_box, parse_names, pipeline_config
from .guard import EXIT_OK, UserError, guarded
from .model_folder import check_device, demo_model_dir, load_bundle
from .report import Timer, file_size, matches_table, objects_table, print_notes, units

HELP = "run the whole pipeline on a synthetic scene (or --images) with the demo model"
DEFAULT_SEED = 100_000  # held out: the demo model was trained on seeds 0..19999


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo", help=HELP,
        description=HELP + ": prints the objects found and a query's answer, writes PNG renders (RGB, semantic, "
        "instance, legend), a PLY and a scene file, and reports the time of each stage. No network or GPU needed.")
    add_model_arguments(p, demo=True)
    src = p.add_argument_group("input")
    src.add_argument("--images", metavar="DIR", help="use this image folder instead of a synthetic scene")
    src.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"synthetic scene seed (default {DEFAULT_SEED}, "
                                                                     "not seen in training)")
    src.add_argument("--views", type=int, default=4, help="number of views (default 4)")
    src.add_argument("--size", metavar="HxW",
                     help="network image size box, multiples of 14 (default: the model's native size, from its "
                          "bundle.json; 112x112 for the demo model)")
    src.add_argument("--no-depth", action="store_true", help="synthetic: no depth images (scale from poses only)")
    src.add_argument("--no-poses", action="store_true", help="synthetic: no camera poses (output in the camera frame)")
    src.add_argument("--measured-depth", action="store_true",
                     help="synthetic with depth and poses: Gaussian centres from the measured depth (the node's "
                          "pipeline.use_measured_depth), so only labels and instances come from the model")
    q = p.add_argument_group("query and output")
    q.add_argument("--query", default="chair", help="text to look for (default 'chair', the thing class the demo "
                                                     "model labels best; its text encoder only knows class names)")
    q.add_argument("--top", type=int, default=3, metavar="K", help="answers to show (default 3)")
    q.add_argument("--out", default="eps3d_demo", metavar="DIR", help="output folder (default ./eps3d_demo)")
    q.add_argument("--render-scale", type=float, default=2.0, metavar="F",
                   help="renders at F x the network size (default 2)")
    p.add_argument("--ros", action="store_true",
                   help="also start eps3d_node in-process, feed it the frames over real topics and call its "
                        "query service (needs the ROS 2 Python packages and the built interfaces)")
    add_panoptic_arguments(p)
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    if args.views < 1:
        raise UserError(f"--views must be >= 1, got {args.views}")
    if args.top < 1:
        raise UserError(f"--top must be >= 1, got {args.top}")
    if not args.query.strip():
        raise UserError("--query is empty: give an object description such as 'mug'")
    if args.measured_depth and (args.images or args.no_depth or args.no_poses):
        raise UserError("--measured-depth needs the synthetic scene's depth and poses (not with --images, --no-depth "
                        "or --no-poses)")
    model = demo_model_dir(args.model)
    bundle = load_bundle(model)
    check_device(args.device)
    for names in (args.vocabulary, args.stuff):
        parse_names(names)
    size = input_box(args, bundle)
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    timer = Timer()

    from ..data.scene_layout import CLASS_NAMES, STUFF_CLASSES

    vocabulary, stuff = list(CLASS_NAMES[1:]), [CLASS_NAMES[i] for i in STUFF_CLASSES]
    frames, source, synthetic = _input_frames(args, size, timer)
    cfg = pipeline_config(args, model, len(frames), vocabulary=vocabulary, stuff=stuff,
                          use_depth=not args.no_depth, measured_depth=args.measured_depth)
    text = bundle.text if not (args.text_model or args.text_weights) else None
    print(f"EPS3D demo: model {model}, text encoder "
          f"{text.describe() if text else (args.text_model or bundle.text.model) + ' / ' + str(args.text_weights)}")
    print(f"input: {source}")
    if synthetic is not None:
        things = [f"{o.colour} {o.class_name}" for o in synthetic.objects]
        print(f"ground truth: {len(things)} objects: {', '.join(things)} (+ floor, walls, table)")

    from ..io.scene_file import reconstruct_scene_file
    from ..pipeline.loading import load_reconstructor

    with timer.stage("load model"):
        rec = load_reconstructor(cfg)
    sf, snap = reconstruct_scene_file(rec, frames, info={"source": source, "model": str(model), "demo": True})
    for k in ("preprocess", "network", "alignment", "panoptic"):
        timer.add(k, snap.timings[k])
    scene = sf.scene
    print(f"\nfound {len(scene.objects)} objects in '{sf.frame_id}' ({units(sf.scale_known)}; alignment "
          f"{snap.alignment.method}), {scene.num_gaussians} Gaussians:")
    print_notes(snap)
    print(objects_table(scene, sf.scale_known, limit=25))
    if synthetic is not None:
        print(truth_table(synthetic, frames, snap, sf, cfg.output.map_frame))
    with timer.stage("query"):
        matches = scene.query(args.query, max_results=args.top)
    print(f"\nquery '{args.query}' (top {args.top}, relevance >= {scene.config.relevance_threshold:g}):")
    if matches:
        print(matches_table(matches))
    else:
        from ..panoptic.relevance import no_match_message

        closest = max(scene.query(args.query, max_results=len(scene.objects) or 1, min_relevance=0.0),
                      key=lambda m: m.relevance, default=None)
        print("  " + no_match_message(args.query.strip(), scene.config.relevance_threshold, closest))

    _write_outputs(out, sf, frames, source, args, timer)

    if args.ros:
        _ros_demo(frames, rec, cfg, args, timer)
    print("\ntimings:")
    print(timer.report())
    return EXIT_OK


def _input_frames(args: argparse.Namespace, size: tuple[int, int], timer: Timer) -> tuple[list, str, Any]:
    """``(frames, a line on where they come from, the synthetic scene or None)``: ``--images``, else a synthetic
    scene of ``--seed``."""
    synthetic = None
    if args.images:
        from ..io.image_folder import frames_from_images

        with timer.stage("read images"):
            fs = frames_from_images(args.images, box=size, max_views=args.views, progress=False)
        frames, source = fs.frames, f"{len(fs.frames)} of {fs.total} images from {args.images} fitted to " \
                                    f"{fs.size[0]}x{fs.size[1]} (HxW; no depth, no poses)"
    else:
        from ..data.synthetic import generate_scene
        from ..frames.frame import synthetic_frames

        with timer.stage("generate scene"):
            synthetic = generate_scene(seed=args.seed, num_views=args.views, height=size[0], width=size[1])
            frames = synthetic_frames(synthetic, with_depth=not args.no_depth, with_pose=not args.no_poses)
        extras = [x for x, on in (("depth", not args.no_depth), ("camera poses", not args.no_poses)) if on]
        source = (f"synthetic scene seed {args.seed}: {args.views} views of {size[0]}x{size[1]} (HxW)"
                  f"{' with ' + ' and '.join(extras) if extras else ''}"
                  f"{'; Gaussian centres from the measured depth' if args.measured_depth else ''}")
    return frames, source, synthetic


def _write_outputs(out: Path, sf: Any, frames: list, source: str, args: argparse.Namespace, timer: Timer) -> None:
    """The scene file, the PLY and the PNG renders in ``out``."""
    from ..io.scene_file import save_scene
    from ..io.figures import write_figures
    from ..io.ply import write_gaussian_ply

    out.mkdir(parents=True, exist_ok=True)
    with timer.stage("write scene file"):
        save_scene(out / "scene.eps3d", sf)
    with timer.stage("write PLY"):
        write_gaussian_ply(out / "scene.ply", sf.scene)
    with timer.stage("render PNGs"):
        figs = write_figures(sf.scene, sf.cameras, out, scale=args.render_scale,
                             title=f"demo: {source.split(':')[0]} ({sf.frame_id}, {units(sf.scale_known)})",
                             inputs=[f.rgb for f in frames])
    print(f"\nwrote to {out}/: scene.eps3d ({file_size(out / 'scene.eps3d')}), scene.ply "
          f"({file_size(out / 'scene.ply')}), overview.png, legend.png and {len(figs['files']) - 2} view PNGs "
          f"({figs['size'][0]}x{figs['size'][1]} HxW)")
    print(f"  next: eps3d query {out / 'scene.eps3d'} \"{args.query}\"   |   eps3d render {out / 'scene.eps3d'} "
          f"--out {out / 'renders'}")


def _ros_demo(frames: list, rec: Any, cfg: Any, args: argparse.Namespace, timer: Timer) -> None:
    """The same frames through eps3d_node in-process; its query service's answer printed."""
    from ..ros.demo import run_node_demo  # rclpy only on this path

    params = _node_parameters(rec.config)
    with timer.stage("ROS node demo"):
        response = run_node_demo(frames, params, args.query, max_results=args.top,
                                 map_frame=cfg.output.map_frame)
    print(f"\n[ros] call {response['service']} {json.dumps(response['request'])}")
    print(f"[ros] response: success={response['success']}, frame '{response['frame_id']}', "
          f"scale_known={response['scale_known']}, message: {response['message']}")
    for o in response["objects"]:
        c = ", ".join(f"{v:+.3f}" for v in o["centroid"])
        size = " x ".join(f"{v:.3f}" for v in o["box_size"])
        print(f"  score {o['score']:.3f}  relevance {o['relevance']:.3f}  #{o['id']} {o['label']}  centroid ({c})  box {size}  "
              f"{o['point_count']} pts")
    t = response["timings_s"]
    print(f"[ros] node start {t.get('node_start', 0):.2f} s, frames -> first scene {t.get('first_scene', 0):.2f} s, "
          f"query round trip {t.get('query', 0) * 1000:.1f} ms")
    if not response["success"]:
        raise UserError(f"the node's query failed: {response['message']}")


def _node_parameters(cfg) -> dict:
    """The node's ROS parameters for the same reconstruction (dotted names as in config/eps3d.yaml) from the
    resolved config of the reconstruction (where an empty ``text.pretrained`` meant random weights)."""
    from ..settings.tree import config_leaves

    pc = cfg.pipeline
    params = {k: v for k, v in config_leaves(cfg).items() if k.startswith("panoptic.")}  # every panoptic setting
    params.update({
        "model.weights": cfg.model.weights, "model.device": cfg.model.device,
        "text.encoder": cfg.text.encoder, "text.model": cfg.text.model,
        "text.pretrained": cfg.text.pretrained or "random", "text.templates": list(cfg.text.templates),
        "pipeline.image_height": pc.image_height, "pipeline.image_width": pc.image_width,
        "pipeline.window_size": pc.window_size, "pipeline.every_n_frames": pc.window_size,
        "pipeline.buffer_size": pc.buffer_size, "pipeline.use_depth": pc.use_depth,
        "pipeline.use_measured_depth": pc.use_measured_depth,
        "pipeline.keyframe_min_interval": 0.0, "pipeline.keyframe_min_translation": 0.0,
        "pipeline.keyframe_min_rotation": 0.0,
    })
    return params


def truth_table(synthetic, frames, snap, sf, map_frame: str, max_distance: float = 0.5) -> str:
    """One line per true thing: the found object matched to it (same class, nearest first, within
    ``max_distance`` m), or "missed"; then the found things matched to none (see eval.object_match)."""
    import numpy as np

    from ..eval.object_match import match_objects, true_objects

    to_frame = None  # in the map frame: the synthetic world is the map
    if sf.frame_id != map_frame:  # the reference view's optical frame: the truth is moved there
        ref = frames[snap.alignment.reference_index]
        if not ref.has_pose or not sf.scale_known:
            return "\nground truth vs found: not compared (no metric pose links the scene to the synthetic world)"
        to_frame = np.linalg.inv(ref.pose)  # pose: camera-to-world
    matches, extras = match_objects(sf.scene.objects, true_objects(synthetic, to_frame), max_distance)
    lines = [f"\nground truth vs found (same class, nearest centroid within {max_distance} m; box: largest axis "
             "ratio to the true visible surface):",
             f"  {'true object':<16} {'found':>6}  {'centroid error':>14}  {'box':>6}"]
    for m in matches:
        if m.found_id is None:
            lines.append(f"  {m.truth.name:<16} {'missed':>6}")
        else:
            lines.append(f"  {m.truth.name:<16} {'#' + str(m.found_id):>6}  {m.error:>12.2f} m  {m.box_ratio:>5.1f}x")
    found = sum(m.found_id is not None for m in matches)
    lines.append(f"  {found} of {len(matches)} found; found things matched to no true object: "
                 f"{', '.join('#' + str(i) for i in extras) if extras else 'none'}")
    return "\n".join(lines)
