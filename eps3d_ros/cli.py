"""The ``eps3d`` command line. It only parses arguments and calls library functions.

    eps3d inspect-checkpoint WEIGHTS [--config CONFIG]   JSON report; exit 1 when a strict load would fail
    eps3d presets                                       the built-in model presets and their sizes
    eps3d demo | run | query | export | render | bench  scenes: see eps3d_ros/commands/ (`eps3d CMD --help`)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence


def _inspect(args: argparse.Namespace) -> int:
    from .model import inspect_checkpoint

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
    return 0 if report.ok else 1


def _presets(_: argparse.Namespace) -> int:
    from .model import EPS3DConfig, list_presets
    from .model.checkpoint import expected_shapes

    rows = {}
    for name in list_presets():
        shapes = expected_shapes(EPS3DConfig.preset(name))
        rows[name] = {"parameters": sum(_numel(s) for s in shapes.values()), "tensors": len(shapes)}
    print(json.dumps(rows, indent=2))
    return 0


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eps3d", description="EPS3D open-vocabulary 3D panoptic perception tools")
    p.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = p.add_subparsers(dest="command", required=True)
    ins = sub.add_parser("inspect-checkpoint", help="check a checkpoint against the network it describes")
    ins.add_argument("weights", help="weights file (.safetensors/.pt) or a directory holding model.safetensors")
    ins.add_argument("--config", help="config JSON (ours, the reference fixture's, or a release config.json)")
    ins.set_defaults(func=_inspect)
    pre = sub.add_parser("presets", help="list the built-in model presets")
    pre.set_defaults(func=_presets)
    from .commands import add_parsers  # demo, run, query, export, render, bench: one module each

    add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")
    from .model import CheckpointError, ConfigError

    try:
        return args.func(args)
    except (FileNotFoundError, CheckpointError, ConfigError, ValueError) as e:
        print(f"eps3d: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
