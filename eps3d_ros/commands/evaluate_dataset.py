"""``eps3d evaluate --dataset scannet --root DIR [--split val] [--scenes ...] --model DIR``: a model on dataset
scenes with the EPS3D release's ScanNet protocol (eps3d_ros/eval/dataset_protocol.py), written as Markdown and
JSON. The arguments join ``eps3d evaluate``'s own (:mod:`.evaluate`, which without ``--dataset`` evaluates
held-out synthetic scenes).

Settings (``--set NAME=VALUE``): panoptic settings of the 3D path; ``panoptic.clustering.hdbscan.min_cluster_size``
and ``.min_samples`` are also the protocol's 2D clustering (default: the release's 400 and 1, not the model
folder's recommendation, so that numbers compare with the paper's)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .arguments import parse_names, parse_settings, parse_size
from .guard import EXIT_OK, UserError
from .model_folder import check_device, load_bundle
from .dataset_args import add_dataset_options, dataset_options, parse_scene_list

__all__ = ["add_arguments", "run", "markdown_report"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The dataset options of ``eps3d evaluate`` (``--scenes``, ``--views``, ``--size``, ``--set``, ``--json``,
    ``--markdown``, ``--device``, ``--no-progress`` are shared with the synthetic evaluation)."""
    g = add_dataset_options(p)
    g.add_argument("--root", metavar="DIR", help="dataset root (with --dataset)")
    g.add_argument("--split", metavar="NAME", help="official split to evaluate (e.g. val, test); default: every scene")
    g.add_argument("--frames-file", metavar="JSON", help="per-scene frame lists ({scene: [frame, ...]}); default "
                                                         "ROOT/selected_seqs_<split or test>.json for 2 views")
    g.add_argument("--mode", choices=("novel", "context"), default="novel",
                   help="render the held-out target views (novel, default) or the input views (context)")
    g.add_argument("--classes", metavar="A,B,C", help="class names (default: wall,floor,ceiling,chair,table,sofa,bed,other)")
    g.add_argument("--things", metavar="A,B", help="thing classes (default: chair,table,sofa,bed)")
    g.add_argument("--other", metavar="NAME", help="class for names outside --classes ('none': ignored; default other)")
    g.add_argument("--max-samples", type=int, default=50_000, metavar="N", help="HDBSCAN subsample (default 50000)")
    g.add_argument("--pq-pairing", choices=("same-view", "release"), default="same-view",
                   help="PQ from each view's own maps (default) or the release's reversed pairing")
    g.add_argument("--no-3d", action="store_true", help="skip the 3D (per-Gaussian) metrics")
    g.add_argument("--text-model", metavar="ARCH", help="text encoder architecture (default: the model folder's; the "
                                                        "EPS3D release: ViT-B-32)")
    g.add_argument("--text-weights", metavar="FILE|TAG", help="text encoder weights (default: the model folder's; the "
                                                              "EPS3D release: openai, from the Hugging Face cache)")
    g.add_argument("--out", metavar="DIR", help="write evaluation.md and evaluation.json here")


def _protocol(args: argparse.Namespace, bundle: Any):
    from ..eval.dataset_protocol import SCANNET_CLASSES, SCANNET_THINGS, EvalProtocol

    size = bundle.input_size[0]
    if args.size:
        h, w = parse_size(args.size)
        if h != w:
            raise UserError(f"--size {args.size}: the protocol's input is square (short side resize, centre crop)")
        size = h
    classes = tuple(parse_names(args.classes) or SCANNET_CLASSES) if args.classes else SCANNET_CLASSES
    things = tuple(parse_names(args.things) or ()) if args.things is not None else \
        tuple(t for t in SCANNET_THINGS if t in classes)
    other = args.other if args.other is not None else ("other" if "other" in classes else None)
    if other == "none":
        other = None
    p = EvalProtocol(classes=classes, things=things, other=other, context_views=args.views or 8, mode=args.mode,
                     input_size=size, max_samples=args.max_samples, pq_pairing=args.pq_pairing)
    if args.dataset != "scannet":
        p.excluded_scenes = ()
    try:
        return p.validate()
    except ValueError as e:
        raise UserError(str(e)) from None


def _settings(protocol: Any, settings: dict[str, Any]) -> Any:
    """The 3D path's panoptic config (``--set`` checked and coerced by the settings tree); its HDBSCAN
    ``min_cluster_size`` (0: the release's) and ``min_samples`` become the protocol's 2D clustering too."""
    from ..eval.dataset_eval import panoptic_config

    panoptic = panoptic_config(protocol, settings)
    hdbscan = panoptic.clustering.hdbscan
    protocol.min_cluster_size = hdbscan.min_cluster_size = hdbscan.min_cluster_size or protocol.min_cluster_size
    protocol.min_samples = hdbscan.min_samples
    return panoptic


def run(args: argparse.Namespace) -> int:
    """``eps3d evaluate --dataset ...`` (called by :func:`eps3d_ros.commands.evaluate.run`, which guards it)."""
    from ..data.datasets import open_dataset, select_scenes
    from ..eval.dataset_eval import dataset_windows, evaluate_windows
    from ..eval.dataset_protocol import selected_frames, view_plan

    if not args.root:
        raise UserError("--dataset needs --root DIR")
    model_path = args.model_option or args.model
    if not model_path:
        raise UserError("--model DIR is required")
    bundle = load_bundle(Path(model_path))
    device = check_device(args.device)
    protocol = _protocol(args, bundle)
    panoptic = _settings(protocol, parse_settings(args.settings))  # a wrong --set fails here, before any frame
    opts = dataset_options(args)
    if args.dataset == "scannet":
        opts.setdefault("invalid_poses", "skip")  # the release skips frames with invalid poses
    ds = open_dataset(args.dataset, args.root, **opts)
    scenes = select_scenes(ds, parse_scene_list(args.scenes), args.split, exclude=protocol.excluded_scenes)
    frames = selected_frames(Path(args.root), args.split or "test", args.frames_file) \
        if (protocol.context_views == 2 or args.frames_file) else None
    if frames is not None and not args.scenes:
        scenes = [s for s in scenes if s in frames]  # the frame list names the scenes evaluated, as in the release
        if not scenes:
            raise UserError("no scene of the frame list is in the dataset")
    total = sum(len(view_plan(len(frames[s]) if frames and s in frames else len(ds.scene(s)), protocol))
                for s in scenes)
    from ..text import create_text_encoder

    model = bundle.load_network(device=device).eval()
    tcfg = bundle.text_encoder_config()
    if args.text_model:
        tcfg.model = args.text_model
    if args.text_weights:
        tcfg.pretrained = args.text_weights
    text = create_text_encoder(tcfg)
    bundle.check_text_encoder(text, model.config.gaussians.semantic_expanded_dim)
    bar = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, desc="evaluate", unit="window")
    try:
        result = evaluate_windows(model, text, dataset_windows(ds, scenes, protocol, frames), protocol,
                                  path_3d=not args.no_3d, progress=bar.update if bar is not None else None,
                                  panoptic=panoptic)
    finally:
        if bar is not None:
            bar.close()
    result["summary"].update({"dataset": args.dataset, "root": str(args.root), "scenes": len(scenes),
                              "split": args.split or "", "model": str(model_path)})
    text_md = markdown_report(result)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
        (out / "evaluation.md").write_text(text_md + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(text_md if args.markdown or not args.json else json.dumps(result["summary"], indent=2, default=float))
    return EXIT_OK


def markdown_report(result: dict[str, Any]) -> str:
    s = result["summary"]

    def f(key: str) -> str:
        v = s.get(key)
        return "n/a" if v is None or v != v else f"{v:.4f}"

    head = (f"{s.get('dataset', '?')} {s.get('split') or 'all scenes'}: {s.get('scenes', '?')} scenes, {s['windows']} "
            f"windows of {s['context_views']} context views at {s['input_size']}², {s['mode']}-view rendering")
    rows = [("Semantic mIoU (2D, rendered views, 8-class protocol)", f("miou_2d")),
            ("Semantic accuracy (2D)", f("accuracy_2d")),
            ("Instance precision / recall / F@0.5 (2D, per scene)",
             f"{f('instance_precision_2d')} / {f('instance_recall_2d')} / {f('instance_f_score_2d')}"),
            ("Instance mean IoU of matched pairs (2D)", f("instance_mean_iou_2d")),
            ("PQ / SQ / RQ (2D, per scene)", f"{f('pq_2d')} / {f('sq_2d')} / {f('rq_2d')}"),
            ("Semantic mIoU (3D, per Gaussian, context views)", f("miou_3d")),
            ("PQ (3D) — things / stuff", f"{f('pq_3d')} — {f('pq_things_3d')} / {f('pq_stuff_3d')}"),
            ("Instance F@0.5 (3D)", f("instance_f_3d"))]
    lines = [head, "", "| Metric | Value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    lines += ["", "| Class | IoU (2D) |", "|---|---|"]
    lines += [f"| {c} | {v:.4f} |" for c, v in s.get("per_class_iou_2d", {}).items()]
    if s.get("pq_windows_skipped"):
        lines.append(f"\n{s['pq_windows_skipped']} window(s) had no instance cluster (left out of PQ, as the release does)")
    return "\n".join(lines)
