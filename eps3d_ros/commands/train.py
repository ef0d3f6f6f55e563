"""``eps3d train --config FILE [--resume [CHECKPOINT]] [--out-dir DIR] [--steps N] [--device DEV]
[--nproc-per-node N]``: distillation training (:mod:`eps3d_ros.train`), on one rank, on ``N`` ranks it starts on
this machine, or as one rank of a ``torchrun`` job (:mod:`eps3d_ros.train.launch`, also ``python -m
eps3d_ros.train``). Rank 0 prints the run's summary (steps, time, the exported model folder) as JSON."""

from __future__ import annotations

import argparse

from .guard import guarded

HELP = "train by distillation from a YAML config (see config/train_demo.yaml), on one or several ranks"


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..train.launch import add_train_arguments  # light: torch is imported when the command runs

    p = subparsers.add_parser("train", help=HELP, description=HELP)
    add_train_arguments(p)
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    from ..train.launch import run_train_command

    return run_train_command(args)
