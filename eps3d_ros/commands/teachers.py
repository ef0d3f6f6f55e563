"""``eps3d teachers RECORDING_OR_SCENE --features clip-dense --masks sam|none --out DIR``: teacher files for an
unlabelled recording, for training (``teacher.npz`` + ``teacher.json``, format in eps3d_ros/train/teachers.py).

The source is a capture folder (``transforms.json``, TUM or Redwood), a recorded folder (``views.npz``), or with
``--dataset NAME --root ROOT`` a scene id of that dataset. Features: the dense read-out of an open_clip ViT
image tower (MaskCLIP; ``--clip-model``, ``--clip-weights`` a local file or a cached tag). Masks: Segment
Anything's automatic masks (``--sam-weights`` a local .pth; needs ``pip install segment-anything``) or none.
Interrupted runs continue where they stopped (the same command again); ``--overwrite`` starts over.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .guard import EXIT_OK, UserError, guarded
from .model_folder import check_device
from .dataset_args import add_dataset_options, dataset_options

HELP = "dense CLIP features + SAM masks of an unlabelled recording, as training teacher files"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("teachers", help=HELP, description=__doc__.split("\n\n", 1)[1])
    p.add_argument("source", metavar="RECORDING_OR_SCENE",
                   help="capture folder (transforms.json / TUM / Redwood), recorded folder (views.npz), or a scene "
                        "id with --dataset and --root")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for teacher.npz and teacher.json")
    p.add_argument("--features", choices=("clip-dense",), default="clip-dense", help="feature teacher (clip-dense)")
    p.add_argument("--masks", choices=("sam", "none"), default="sam", help="mask teacher (default sam)")
    p.add_argument("--root", metavar="DIR", help="dataset root when SOURCE is a scene id")
    add_dataset_options(p)
    g = p.add_argument_group("models (local weights; nothing is downloaded)")
    g.add_argument("--clip-model", default="ViT-B-16", metavar="ARCH",
                   help="open_clip ViT architecture (default ViT-B-16; use the -quickgelu name for OpenAI weights "
                        "in a file)")
    g.add_argument("--clip-weights", default="", metavar="FILE|TAG",
                   help="open_clip checkpoint file, or a tag already in the Hugging Face cache; 'random' for tests")
    g.add_argument("--clip-size", type=int, default=448, metavar="PX", help="longer image side for CLIP (default 448)")
    g.add_argument("--sam-model", default="vit_b", choices=("vit_b", "vit_l", "vit_h"), help="SAM backbone")
    g.add_argument("--sam-weights", default="", metavar="FILE", help="SAM checkpoint (.pth); 'random' for tests")
    g.add_argument("--sam-size", type=int, default=640, metavar="PX", help="longer image side for SAM (default 640)")
    g.add_argument("--sam-points", type=int, default=32, metavar="N", help="SAM prompt grid per side (default 32)")
    p.add_argument("--chunk", type=int, default=16, metavar="N", help="frames per saved chunk (default 16)")
    p.add_argument("--overwrite", action="store_true", help="replace existing teacher files / an unfinished run")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _source(args: argparse.Namespace):
    from ..train.make_teachers import recording_source, scene_source

    if args.dataset:
        if not args.root:
            raise UserError("--dataset needs --root (and SOURCE is the scene id)")
        from ..data.datasets import open_dataset

        ds = open_dataset(args.dataset, args.root, **dataset_options(args))
        return scene_source(ds.scene(args.source))
    path = Path(args.source).expanduser()
    if (path / "views.npz").is_file():
        return recording_source(path)
    from ..data.captures import capture_form, open_capture

    if capture_form(path) is None:
        raise UserError(f"{path}: not a recording (views.npz) or a capture (transforms.json, TUM, Redwood); for a "
                        "dataset scene give --dataset NAME --root DIR SCENE_ID")
    return scene_source(open_capture(path))


def _weights(value: str, flag: str) -> str:
    if value == "random":
        return ""
    if not value:
        raise UserError(f"{flag} is required (a local checkpoint file; 'random' only for tests)")
    return value


@guarded
def run(args: argparse.Namespace) -> int:
    if args.chunk < 1 or args.clip_size < 16 or args.sam_size < 16 or args.sam_points < 1:
        raise UserError("--chunk, --sam-points must be >= 1 and --clip-size, --sam-size >= 16")
    device = check_device(args.device)
    source = _source(args)
    from ..teacher_models import DenseClip, DenseClipConfig, SamConfig, SamMasks
    from ..train.make_teachers import make_teachers

    features = DenseClip(DenseClipConfig(model=args.clip_model, pretrained=_weights(args.clip_weights, "--clip-weights"),
                                         size=args.clip_size, device=device))
    masks = None
    if args.masks == "sam":
        masks = SamMasks(SamConfig(model=args.sam_model, checkpoint=_weights(args.sam_weights, "--sam-weights"),
                                   size=args.sam_size, points_per_side=args.sam_points, device=device))
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress and sys.stderr.isatty()
    make_teachers(source, out, features, masks, chunk=args.chunk, progress=progress, overwrite=args.overwrite)
    meta = json.loads((out / "teacher.json").read_text())
    print(f"wrote {out / 'teacher.npz'}: {meta['frames']} frames, features {meta['grid'][0]}x{meta['grid'][1]}x"
          f"{meta['feature_dim']} ({features.arch}), masks {meta['mask_size'][0]}x{meta['mask_size'][1]} "
          f"({meta['mask_source']})")
    print(f"train with the same CLIP weights as the text encoder: text.model {features.arch}, text.pretrained "
          f"{features.checkpoint or '(random)'}")
    return EXIT_OK
