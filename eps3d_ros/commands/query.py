"""``eps3d query SCENE "text" [--top K]``: rank a scene file's objects for a text description.

The text encoder is the one stored with the scene (``--text-model`` / ``--text-weights`` override it).
Exit code 1 when no object matches (none in the scene, or none above ``--min-score``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from .guard import EXIT_NOTHING, EXIT_OK, guarded
from .report import match_dict, matches_table, units

HELP = "rank a scene file's objects for a text description"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("query", help=HELP, description=HELP + " (exit code 1 when nothing matches)")
    p.add_argument("scene", metavar="SCENE", help="scene file written by `eps3d run` / `eps3d demo`")
    p.add_argument("text", help="what to look for, e.g. 'red mug'")
    p.add_argument("--top", type=int, default=5, metavar="K", help="at most K objects (default 5)")
    p.add_argument("--min-score", type=float, default=0.0, metavar="S",
                   help="keep objects with a normalised score >= S in [0, 1] (default 0)")
    p.add_argument("--text-model", metavar="ARCH", help="override the stored text encoder architecture")
    p.add_argument("--text-weights", metavar="FILE|TAG", help="override the stored text encoder weights")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    if not args.text.strip():
        raise ValueError("empty query text: give an object description such as 'red mug'")
    from ..io.scene_file import load_scene

    sf = load_scene(args.scene)
    cfg = sf.text_encoder
    if args.text_model or args.text_weights is not None:
        cfg = dataclasses.replace(cfg, model=args.text_model or cfg.model,
                                  pretrained=cfg.pretrained if args.text_weights is None else args.text_weights)
    from ..io.scene_file import attach_text_encoder

    sf = attach_text_encoder(sf, cfg)
    matches = sf.scene.query(args.text, max_results=args.top, min_score=args.min_score)
    if args.json:
        print(json.dumps({"scene": args.scene, "text": args.text.strip(), "frame_id": sf.frame_id,
                          "scale_known": sf.scale_known, "matches": [match_dict(m) for m in matches]}, indent=2))
    else:
        print(f"'{args.text.strip()}' in {args.scene}: {len(matches)} of {len(sf.scene.objects)} objects "
              f"(frame '{sf.frame_id}', {units(sf.scale_known)})")
        print(matches_table(matches))
    return EXIT_OK if matches else EXIT_NOTHING
