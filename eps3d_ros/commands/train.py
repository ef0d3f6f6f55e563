"""``eps3d train --config FILE [--resume [CHECKPOINT]] [--out-dir DIR] [--steps N] [--device DEV]``: distillation
training (:mod:`eps3d_ros.train`); prints the run's summary (steps, time, the exported model folder) as JSON."""

from __future__ import annotations

import argparse
import json

from .guard import EXIT_OK, guarded

HELP = "train by distillation from a YAML config (see config/train_demo.yaml)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help=HELP, description=HELP)
    p.add_argument("--config", required=True, help="training config YAML")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue from OUT_DIR/checkpoint.pt when it exists, or from CHECKPOINT (a checkpoint.pt "
                        "or a slim resume state such as checkpoints/demo_small/resume.pt)")
    p.add_argument("--out-dir", help="override run.out_dir")
    p.add_argument("--steps", type=int, help="stop after this many steps (the schedule keeps optim.steps)")
    p.add_argument("--device", help="override run.device (auto, cpu, cuda, cuda:N)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    from ..train import train

    overrides: dict = {}
    if args.out_dir:
        overrides["out_dir"] = args.out_dir
    if args.device:
        overrides["device"] = args.device
    if args.no_progress:
        overrides["progress"] = False
    summary = train(args.config, resume=args.resume, steps=args.steps,
                    overrides={"run": overrides} if overrides else None)
    print(json.dumps({k: summary[k] for k in ("steps", "wall_s", "export")}, indent=2))
    return EXIT_OK
