"""``eps3d presets``: the built-in network sizes, their parameter and tensor counts (JSON)."""

from __future__ import annotations

import argparse
import json
import math

from .guard import EXIT_OK, guarded

HELP = "list the built-in model presets"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("presets", help=HELP, description=HELP)
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    from ..model import EPS3DConfig, list_presets
    from ..model.inspection import expected_shapes

    rows = {}
    for name in list_presets():
        shapes = expected_shapes(EPS3DConfig.from_preset(name))
        rows[name] = {"parameters": sum(math.prod(s) for s in shapes.values()), "tensors": len(shapes)}
    print(json.dumps(rows, indent=2))
    return EXIT_OK
