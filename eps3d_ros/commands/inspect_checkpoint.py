"""``eps3d inspect-checkpoint WEIGHTS [--config CONFIG]``: a checkpoint against the network it describes, as JSON.

Nothing is built or loaded into a network: the tensors' names and shapes are compared with those the
configuration (embedded, ``config.json`` beside it, ``--config``, or inferred from the tensors) gives.
Exit code 1 when a strict load would fail.
"""

from __future__ import annotations

import argparse
import json

from .guard import EXIT_NOTHING, EXIT_OK, guarded

HELP = "check a checkpoint against the network it describes"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("inspect-checkpoint", help=HELP, description=HELP + " (JSON; exit code 1 when a strict "
                              "load would fail)")
    p.add_argument("weights", help="weights file (.safetensors/.pt) or a directory holding model.safetensors")
    p.add_argument("--config", help="config JSON (ours, the reference fixture's, or a release config.json)")
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    from ..model import inspect_checkpoint

    report, cfg = inspect_checkpoint(args.weights, config=args.config)
    out = {
        "path": report.path,
        "format": report.format,
        "config_source": report.config_source,
        "preset": cfg.preset,
        "parameters": report.num_parameters,
        "loaded_tensors": report.num_loaded,
        "missing": report.missing,
        "unexpected": report.unexpected,
        "mismatched_shapes": report.mismatched,
        "ignored": report.ignored,
        "absent_modules": report.absent_modules,
        "assumptions": report.assumptions,
        "strict_load_ok": report.ok,
    }
    print(json.dumps(out, indent=2))
    return EXIT_OK if report.ok else EXIT_NOTHING
