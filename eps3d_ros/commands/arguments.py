"""Arguments several commands share (model, panoptic, frames) and the settings they make (one config tree:
:class:`~eps3d_ros.settings.Eps3dConfig`, as the node's parameters)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .guard import UserError
from .model_folder import DEMO_MODEL_ENV

__all__ = ["parse_size", "parse_names", "parse_settings", "add_model_arguments", "add_panoptic_arguments",
           "add_frame_arguments", "add_set_argument", "input_box", "pipeline_config"]


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"168x224"`` → ``(168, 224)`` (height x width); both multiples of 14."""
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise UserError(f"--size must look like HEIGHTxWIDTH, e.g. 168x224, got {text!r}") from None
    if h < 14 or w < 14 or h % 14 or w % 14:
        raise UserError(f"--size {h}x{w}: height and width must be positive multiples of 14 (the ViT patch), "
                        f"e.g. {max(14, h // 14 * 14)}x{max(14, w // 14 * 14)}")
    return h, w


def parse_names(text: str | None) -> list[str] | None:
    """``"floor, table,mug"`` → ``["floor", "table", "mug"]``."""
    if text is None:
        return None
    names = [t.strip() for t in text.split(",")]
    if not any(names):
        return []
    if not all(names):
        raise UserError(f"empty class name in {text!r} (comma-separated names such as 'floor,table,mug')")
    return names


def add_model_arguments(p: argparse.ArgumentParser, demo: bool = False) -> None:
    where = (f"default: ${DEMO_MODEL_ENV}, else the repository's models/demo_tiny" if demo else "required")
    p.add_argument("--model", required=not demo, metavar="DIR",
                   help=f"model folder (model.safetensors + config.json, with its text encoder and bundle.json when "
                        f"it has them) or weights file; {where}")
    p.add_argument("--text-model", metavar="ARCH",
                   help="open_clip architecture of the text encoder (default: the model folder's own encoder, else "
                        "ViT-B-32)")
    p.add_argument("--text-weights", metavar="FILE|TAG",
                   help="text encoder weights: a local checkpoint, an open_clip tag, or 'random' (tests); default: "
                        "the model folder's")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N (default auto)")


def add_panoptic_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vocabulary", metavar="A,B,C", help="comma-separated class names")
    p.add_argument("--stuff", metavar="A,B", help="comma-separated stuff classes (regions, not instances)")
    p.add_argument("--max-samples", type=int, metavar="N", help="features clustered (default 10000)")
    p.add_argument("--min-object-points", type=int, metavar="N", help="smaller objects are dropped (default 30)")
    add_set_argument(p)


def add_set_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="settings",
                   help="any setting of the run by its dotted name, as the node's parameters and config/eps3d.yaml "
                        "(e.g. panoptic.clustering.hdbscan.min_cluster_size=100); repeatable, wins over the model "
                        "folder's recommendation")


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[x, y]"]`` → ``{"a.b": 1, "c": ["x", "y"]}`` (values read as YAML scalars or lists)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--set takes NAME=VALUE (a dotted setting name), got {item!r}")
        try:
            out[name.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as e:
            raise UserError(f"--set {item}: the value is not a YAML value ({e})") from None
    return out


def add_frame_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("frames (selection and size)")
    g.add_argument("--every", type=int, default=1, metavar="K", help="take every K-th frame (default 1)")
    g.add_argument("--max-views", type=int, metavar="N",
                   help="at most N frames, spread evenly over the selection (default: all; 8 without poses)")
    g.add_argument("--size", metavar="HxW", help="the box frames are fitted into, aspect kept, multiples of 14 "
                                                  "(default: the model's native size, from its bundle.json)")
    g.add_argument("--hfov", type=float, default=60.0, metavar="DEG",
                   help="horizontal field of view assumed without intrinsics (default 60)")


def input_box(args: argparse.Namespace, bundle: Any) -> tuple[int, int]:
    """The box frames are fitted into: ``--size``, else the model's native size."""
    return parse_size(args.size) if getattr(args, "size", None) else tuple(bundle.input_size)


def pipeline_config(args: argparse.Namespace, model: Path, views: int, vocabulary: Sequence[str] | None = None,
                    stuff: Sequence[str] | None = None, use_depth: bool = True, measured_depth: bool = False) -> Any:
    """An :class:`~eps3d_ros.settings.Eps3dConfig` for windows of ``views`` frames: what the arguments give;
    the rest is left to the model folder (see :func:`eps3d_ros.pipeline.loading.resolve_config`)."""
    from ..settings.dotted import set_dotted
    from ..settings.tree import Eps3dConfig

    cfg = Eps3dConfig()
    cfg.model.weights = str(model)
    cfg.model.device = args.device
    if args.text_model:
        cfg.text.model = args.text_model
    if args.text_weights is not None:
        cfg.text.pretrained = args.text_weights or "random"
    cfg.text.device = "cpu" if args.device == "auto" else args.device
    if getattr(args, "size", None):
        cfg.pipeline.image_height, cfg.pipeline.image_width = parse_size(args.size)
    p = cfg.panoptic
    vocab = parse_names(args.vocabulary) if args.vocabulary is not None else vocabulary
    if vocab is not None:
        p.vocabulary = list(vocab)
    st = parse_names(args.stuff) if args.stuff is not None else stuff
    if st is not None:
        p.stuff = list(st)
    if args.max_samples is not None:
        p.clustering.max_samples = args.max_samples
    if args.min_object_points is not None:
        p.min_object_points = args.min_object_points
    pc = cfg.pipeline
    pc.window_size = views
    pc.buffer_size = max(pc.buffer_size, views)
    pc.every_n_frames = views
    pc.use_depth = "auto" if use_depth else "false"
    pc.use_measured_depth = measured_depth
    try:
        set_dotted(cfg, parse_settings(getattr(args, "settings", [])), what="--set setting")
        return cfg.validate()
    except ValueError as e:
        raise UserError(str(e)) from None
