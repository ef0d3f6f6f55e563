"""The ``eps3d`` command line. It only parses arguments and calls library functions.

    eps3d inspect-checkpoint WEIGHTS [--config CONFIG]   JSON report; exit 1 when a strict load would fail
    eps3d presets                                       the built-in model presets and their sizes
    eps3d train --config FILE [--resume [CHECKPOINT]] [--out-dir DIR] [--steps N] [--device DEV]
                [--nproc-per-node N]                    distillation training (eps3d_ros.train; also under torchrun)
    eps3d evaluate MODEL_DIR [--scenes N] [--views V] [--size HxW] [--min-cluster-size N] [--json FILE] [--markdown]
                                                        held-out synthetic metrics of a model folder
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
        shapes = expected_shapes(EPS3DConfig.from_preset(name))
        rows[name] = {"parameters": sum(_numel(s) for s in shapes.values()), "tensors": len(shapes)}
    print(json.dumps(rows, indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train.launch import run_train_command

    return run_train_command(args)


def _evaluate(args: argparse.Namespace) -> int:
    from .train.evaluate import EvalConfig, evaluate_model_dir, markdown_table

    h = w = 0  # the model's native size (its bundle.json)
    if args.size:
        try:
            h, w = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            print(f"eps3d: error: --size must look like 112x112, got {args.size!r}", file=sys.stderr)
            return 2
    cfg = EvalConfig(seed_start=args.seed_start, num_scenes=args.scenes, num_views=args.views, height=h, width=w,
                     min_cluster_size=args.min_cluster_size, path_2d=not args.no_2d, device=args.device)
    result = evaluate_model_dir(args.model, cfg, progress=not args.no_progress)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=_jsonable)
    if args.markdown:
        print(markdown_table(result["summary"]))
    else:
        print(json.dumps(result["summary"], indent=2, default=_jsonable))
    return 0


def _jsonable(x):
    return x.item() if hasattr(x, "item") else str(x)


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
    from .train.launch import add_train_arguments  # light: torch is imported when the command runs

    tr = sub.add_parser("train", help="train by distillation from a YAML config (see config/train_demo.yaml)")
    add_train_arguments(tr)
    tr.set_defaults(func=_train)
    ev = sub.add_parser("evaluate", help="held-out synthetic metrics of a model folder with its text encoder")
    ev.add_argument("model", help="model folder (model.safetensors, config.json, text_encoder.json)")
    ev.add_argument("--scenes", type=int, default=20, help="held-out scenes (default 20)")
    ev.add_argument("--seed-start", type=int, default=100_000, help="first scene seed (default 100000, never trained on)")
    ev.add_argument("--views", type=int, default=4, help="views per scene (default 4)")
    ev.add_argument("--size", help="image size HxW, multiples of 14 (default: the model's native size)")
    ev.add_argument("--no-2d", action="store_true", help="skip the 2D (rendered views) path")
    ev.add_argument("--min-cluster-size", type=int, default=0, metavar="N",
                    help="HDBSCAN min_cluster_size in Gaussians (default 0: the model's recommendation)")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--json", help="write the full result (summary and per scene) here")
    ev.add_argument("--markdown", action="store_true", help="print the README table instead of JSON")
    ev.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    ev.set_defaults(func=_evaluate)
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
