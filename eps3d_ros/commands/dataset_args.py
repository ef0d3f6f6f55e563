"""Command-line options shared by the commands that read datasets (``data check``, ``run``, ``teachers``,
``evaluate``): which dataset, where, and the per-dataset reading options."""

from __future__ import annotations

import argparse
from typing import Any

from ..data.datasets import DATASET_KINDS

__all__ = ["add_dataset_options", "dataset_options", "parse_scene_list"]


def add_dataset_options(p: argparse.ArgumentParser, dataset_required: bool = False) -> argparse._ArgumentGroup:
    g = p.add_argument_group("dataset")
    g.add_argument("--dataset", choices=DATASET_KINDS, required=dataset_required,
                   help="dataset kind: scannet (2D export or EPS3D test layout), scannetpp (DSLR, undistorted), "
                        "replica (Semantic-NeRF sequences), transforms (transforms.json / TUM / Redwood captures)")
    g.add_argument("--label-set", choices=("nyu40", "scannet200"), help="ScanNet class names (default nyu40)")
    g.add_argument("--invalid-poses", choices=("error", "skip"),
                   help="ScanNet frames whose pose is inf/NaN: an error or left out (default: error for data check, "
                        "skip for evaluate, as the EPS3D release does)")
    g.add_argument("--semantics-dir", metavar="DIR",
                   help="ScanNet++: the toolkit's 2D semantics output (default ROOT/semantics_2d)")
    g.add_argument("--classes-file", metavar="FILE",
                   help="ScanNet++: class names, one a line (default ROOT/metadata/semantic_benchmark/top100.txt)")
    return g


def dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    """The reading options given, as keyword arguments of :func:`eps3d_ros.data.datasets.open_dataset`."""
    out = {"label_set": args.label_set, "invalid_poses": args.invalid_poses, "semantics_dir": args.semantics_dir,
           "classes_file": args.classes_file}
    return {k: v for k, v in out.items() if v is not None}


def parse_scene_list(values: list[str] | None) -> list[str] | None:
    """``--scenes a b`` or ``--scenes a,b`` → ``["a", "b"]``."""
    if not values:
        return None
    out = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return out or None
