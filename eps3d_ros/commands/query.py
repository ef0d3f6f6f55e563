"""``eps3d query SCENE "text" [--top K]``: rank a scene file's objects for a text description.

The text encoder is the one stored with the scene (``--text-model`` / ``--text-weights`` override it).
Exit code 1 when no object matches: none reaches the calibrated relevance ``--min-relevance`` (default the
scene's ``panoptic.min_relevance``, 0.5; see :mod:`eps3d_ros.panoptic.relevance`) or ``--min-score``; the output
then says "no object matches '...'" and names the closest object.
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
                   help="keep objects with a ranking score >= S in [0, 1] (min-max over the scene: the best is 1; "
                        "default 0)")
    p.add_argument("--min-relevance", type=float, metavar="R",
                   help="an object matches when its calibrated relevance reaches R in [0, 1] (0.5: the text fits it "
                        "at least as well as generic phrases and the other class names; default: the scene's "
                        "panoptic.min_relevance, 0.5); 0 lists the ranking of every object")
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
    from ..panoptic.relevance import no_match_message

    if args.min_relevance is not None and not 0.0 <= args.min_relevance <= 1.0:
        raise ValueError(f"--min-relevance must be in [0, 1], got {args.min_relevance}")
    scene = sf.scene
    threshold = scene.config.relevance_threshold if args.min_relevance is None else args.min_relevance
    ranked = scene.query(args.text, max_results=max(1, len(scene.objects)), min_score=args.min_score, min_relevance=0.0)
    matches = [m for m in ranked if m.relevance >= threshold][:args.top]
    closest = max(ranked, key=lambda m: m.relevance, default=None)
    text = args.text.strip()
    if args.json:
        print(json.dumps({"scene": args.scene, "text": text, "frame_id": sf.frame_id,
                          "scale_known": sf.scale_known, "min_relevance": threshold, "no_match": not matches,
                          "closest": match_dict(closest) if closest is not None else None,
                          "matches": [match_dict(m) for m in matches]}, indent=2))
    elif not matches:
        print(no_match_message(text, threshold, closest) + f" in {args.scene}")
    else:
        print(f"'{text}' in {args.scene}: {len(matches)} of {len(scene.objects)} objects "
              f"(relevance >= {threshold:g}; frame '{sf.frame_id}', {units(sf.scale_known)})")
        print(matches_table(matches))
    return EXIT_OK if matches else EXIT_NOTHING
