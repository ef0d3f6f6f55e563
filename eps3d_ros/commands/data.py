"""``eps3d data check --dataset NAME ROOT``: validate a dataset tree before training or evaluating on it.

Counts scenes and frames, reads every file of every frame (``--quick``: only checks they exist) and lists every
problem file by file: missing or unreadable files, invalid (NaN/inf, non-rigid) poses, wrong image sizes,
unknown label ids, depth in the wrong units. Exit 0 with the counts when the tree is usable, 1 when anything
is broken (the list says what), 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import json
import sys

from .guard import EXIT_NOTHING, EXIT_OK, guarded
from .dataset_args import add_dataset_options, dataset_options, parse_scene_list

HELP = "validate dataset trees (eps3d data check --dataset scannet ROOT)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("data", help=HELP, description=HELP)
    sub = p.add_subparsers(dest="data_command", required=True)
    c = sub.add_parser("check", help="count scenes and frames, list every broken file (exit 1 when unusable)",
                       description=__doc__.split("\n\n")[1])
    c.add_argument("root", metavar="ROOT", help="dataset root (or one capture folder for --dataset transforms)")
    add_dataset_options(c, dataset_required=True)
    c.add_argument("--scenes", nargs="+", metavar="ID", help="only these scenes (default: all)")
    c.add_argument("--split", metavar="NAME", help="only the scenes of this official split (train, val, test)")
    c.add_argument("--quick", action="store_true", help="only check that the files exist (no image is decoded)")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    from ..data.check import check_dataset
    from ..data.datasets import open_dataset, select_scenes

    opts = dataset_options(args)
    scenes = parse_scene_list(args.scenes)
    if args.split and not scenes:
        scenes = select_scenes(open_dataset(args.dataset, args.root, **opts), split=args.split)
    bar = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc="checking", unit="frame", leave=False)

    def on_scene(scene_id: str, frames: int) -> None:
        if bar is not None:
            bar.total = (bar.total or 0) + frames
            bar.set_postfix_str(scene_id)

    try:
        report = check_dataset(args.dataset, args.root, scenes, decode=not args.quick,
                               progress=bar.update if bar is not None else None, on_scene=on_scene, **opts)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return EXIT_OK if report.usable else EXIT_NOTHING
    for s in report.scenes:
        extras = ", ".join(x for x, on in (("labels", s.labelled), ("depth", s.depth)) if on) or "no labels, no depth"
        print(f"{s.scene}: {s.frames} frames ({extras})")
        for n in s.notes:
            print(f"  note: {n}")
    warnings = [i for i in report.issues if not i.fatal]
    for i in report.errors:
        print(f"ERROR {i}")
    for i in warnings:
        print(f"WARNING {i}")
    status = "usable" if report.usable else "NOT usable"
    print(f"{args.dataset} {args.root}: {len(report.scenes)} scene(s), {report.frames} frame(s), "
          f"{len(report.errors)} broken file(s), {len(warnings)} warning(s): {status}")
    return EXIT_OK if report.usable else EXIT_NOTHING
