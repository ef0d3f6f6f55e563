"""``eps3d evaluate MODEL_DIR [--scenes N] [--views V] [--size HxW] [--json FILE] [--markdown]``: held-out
synthetic metrics of a model folder with its own text encoder (:mod:`eps3d_ros.eval.model_eval`).

``eps3d evaluate --dataset scannet --root DIR [--split val] [--scenes ID ...] --model DIR``: dataset scenes with
the EPS3D release's protocol (:mod:`.evaluate_dataset`).
"""

from __future__ import annotations

import argparse
import json

from .arguments import add_set_argument, parse_settings, parse_size
from .guard import EXIT_OK, UserError, guarded

HELP = ("held-out synthetic metrics of a model folder with its text encoder, or a dataset with the EPS3D protocol "
        "(--dataset)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    from .evaluate_dataset import add_arguments as add_dataset_arguments

    p = subparsers.add_parser("evaluate", help=HELP, description=HELP)
    p.add_argument("model", nargs="?", help="model folder (model.safetensors, config.json, text_encoder.json)")
    p.add_argument("--model", dest="model_option", metavar="DIR", help="the model folder (instead of MODEL)")
    p.add_argument("--scenes", nargs="+", metavar="N|ID",
                   help="synthetic: how many held-out scenes (default 20); --dataset: the scene ids to evaluate")
    p.add_argument("--seed-start", type=int, default=100_000,
                   help="first scene seed (default 100000, never trained on)")
    p.add_argument("--views", type=int, help="views per scene (default 4; --dataset: context views, default 8)")
    p.add_argument("--size", help="image size HxW, multiples of 14 (default: the model's native size)")
    p.add_argument("--no-2d", action="store_true", help="skip the 2D (rendered views) path")
    add_set_argument(p)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N (default auto)")
    p.add_argument("--json", help="write the full result (summary and per scene) here")
    p.add_argument("--markdown", action="store_true", help="print the README table instead of JSON")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    add_dataset_arguments(p)
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    if args.dataset:  # a dataset with the EPS3D release's protocol
        from .evaluate_dataset import run as run_dataset

        return run_dataset(args)
    from ..eval.model_eval import EvalConfig, evaluate_model_dir, markdown_table
    from .model_folder import check_device

    model = args.model_option or args.model
    if not model:
        raise UserError("give the model folder (MODEL or --model DIR)")
    if args.scenes and (len(args.scenes) != 1 or not args.scenes[0].isdigit()):
        raise UserError(f"--scenes takes one number of synthetic scenes, got {' '.join(args.scenes)} (scene ids need "
                        "--dataset)")
    h, w = parse_size(args.size) or (0, 0)  # 0: the model's native size (its bundle.json)
    cfg = EvalConfig(seed_start=args.seed_start, num_scenes=int(args.scenes[0]) if args.scenes else 20,
                     num_views=args.views or 4, height=h, width=w, settings=parse_settings(args.settings),
                     path_2d=not args.no_2d, device=check_device(args.device))
    result = evaluate_model_dir(model, cfg, progress=not args.no_progress)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=_jsonable)
    if args.markdown:
        print(markdown_table(result["summary"]))
    else:
        print(json.dumps(result["summary"], indent=2, default=_jsonable))
    return EXIT_OK


def _jsonable(x):
    return x.item() if hasattr(x, "item") else str(x)
