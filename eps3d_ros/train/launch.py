"""The training command: ``eps3d train`` and ``python -m eps3d_ros.train`` (the same arguments), alone, under
``torchrun`` / ``srun`` + ``torchrun``, or starting its own ranks on this machine.

    eps3d train --config config/train_demo.yaml                       # run.nproc_per_node ranks here
    eps3d train --config X --nproc-per-node 2                         # 2 ranks on this machine
    torchrun --nproc-per-node=8 -m eps3d_ros.train --config X         # the launcher decides the ranks
    torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 \\
        -m eps3d_ros.train --config X

Without a launcher and with more than one process per node asked (``--nproc-per-node`` or
``run.nproc_per_node``), the command starts them through torchrun's own launcher (standalone
rendezvous on a free local port): when one dies, torchrun stops the rest and this command names the
rank and its exit code or signal. Rank 0 prints the summary; the training log (global batch, learning
rate, resume, held-out metrics) goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["add_train_arguments", "run_train_command", "main"]

log = logging.getLogger(__name__)


def add_train_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--config", required=True, help="training config YAML")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue from OUT_DIR/checkpoint.pt when it exists, or from CHECKPOINT (a checkpoint.pt "
                        "or a slim resume state such as checkpoints/demo_small/resume.pt), on any number of ranks")
    p.add_argument("--out-dir", help="override run.out_dir")
    p.add_argument("--steps", type=int, help="stop after this many steps (the schedule keeps optim.steps)")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="stop after M minutes of training, then write the checkpoint and the model folder as at "
                        "the end (run.max_minutes; the schedule keeps optim.steps)")
    p.add_argument("--device", help="override run.device (auto, cpu, cuda, cuda:N; several ranks on CUDA take "
                                      "cuda:LOCAL_RANK each)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("--nproc-per-node", type=int, metavar="N",
                   help="ranks to start on this machine (default run.nproc_per_node; ignored under torchrun)")
    return p


def _overrides(args: argparse.Namespace) -> dict | None:
    run: dict = {}
    if args.out_dir:
        run["out_dir"] = args.out_dir
    if args.device:
        run["device"] = args.device
    if getattr(args, "max_minutes", None) is not None:
        run["max_minutes"] = args.max_minutes
    if args.no_progress:
        run["progress"] = False
    return {"run": run} if run else None


def _setup_logging() -> None:
    """Training messages (INFO) to stderr, prefixed with the rank under a launcher; other ranks warn only."""
    from .distributed import under_launcher

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    handler = logging.StreamHandler(sys.stderr)
    prefix = f"[rank {rank}/{world}] " if under_launcher() and world > 1 else ""
    handler.setFormatter(logging.Formatter(f"{prefix}%(levelname)s %(message)s"))
    logger = logging.getLogger("eps3d_ros.train")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    logger.propagate = False


def _child_arguments(args: argparse.Namespace) -> list[str]:
    out = ["--config", args.config]
    if args.resume is True:
        out.append("--resume")
    elif args.resume:
        out += ["--resume", str(args.resume)]
    for flag, value in (("--out-dir", args.out_dir), ("--steps", args.steps), ("--device", args.device),
                        ("--max-minutes", args.max_minutes)):
        if value is not None:
            out += [flag, str(value)]
    if args.no_progress:
        out.append("--no-progress")
    return out


def _launch(args: argparse.Namespace, nproc: int) -> int:
    """Run this command on ``nproc`` local ranks through torchrun's launcher; 1 (named rank) on failure."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # The ranks import the eps3d_ros this command runs from (`-m` would put the current directory first on
    # sys.path, where another checkout may sit).
    root = str(Path(__file__).resolve().parents[2])
    code = f"import sys; sys.path.insert(0, {root!r}); from eps3d_ros.train.launch import main; sys.exit(main())"
    targs = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", "--no-python",
                                          sys.executable, "-u", "-c", code, *_child_arguments(args)])
    try:
        run(targs)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        how = f"signal {failure.signal_name()}" if failure.exitcode < 0 else f"exit code {failure.exitcode}"
        print(f"eps3d: error: training failed: rank {rank} (local rank {failure.local_rank}, pid {failure.pid}) "
              f"ended with {how}; its own messages are above", file=sys.stderr)
        return 1
    return 0


def run_train_command(args: argparse.Namespace) -> int:
    """``eps3d train``: train here (one rank, or one of a launcher's), or start ``nproc`` local ranks."""
    from .config import load_train_config
    from .distributed import TrainingAborted, under_launcher

    overrides = _overrides(args)
    if not under_launcher():
        config = load_train_config(args.config, overrides)  # a bad config: one error here, not one per rank
        nproc = args.nproc_per_node or config.run.nproc_per_node
        if nproc < 1:
            raise ValueError(f"--nproc-per-node must be >= 1, got {nproc}")
        if nproc > 1:
            return _launch(args, nproc)
    _setup_logging()
    from .trainer import train

    try:
        summary = train(args.config, resume=args.resume, steps=args.steps, overrides=overrides)
    except TrainingAborted as e:
        print(f"eps3d: error: {e}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: summary[k] for k in ("steps", "wall_s", "export")}, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eps3d_ros.train`` (what torchrun starts): the arguments of ``eps3d train``."""
    p = add_train_arguments(argparse.ArgumentParser(
        prog="python -m eps3d_ros.train", description="train EPS3D by distillation (see eps3d_ros/train/launch.py)"))
    args = p.parse_args(argv)
    from eps3d_ros.model import CheckpointError, ConfigError

    try:
        return run_train_command(args)
    except (FileNotFoundError, CheckpointError, ConfigError, ValueError) as e:
        print(f"eps3d: error: {e}", file=sys.stderr)
        return 2
