"""The ``eps3d`` command line: the parser of every command in :mod:`eps3d_ros.commands` (one module each;
``eps3d CMD --help``), and ``main``.

    eps3d demo | run | query | export | render | bench          scenes and maps
    eps3d train | evaluate | inspect-checkpoint | presets        models (train: also under torchrun)
    eps3d data check | teachers                                  datasets, teacher files for recordings
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .commands import add_parsers


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eps3d", description="EPS3D open-vocabulary 3D panoptic perception tools")
    p.add_argument("-v", "--verbose", action="store_true", help="log details and print tracebacks")
    add_parsers(p.add_subparsers(dest="command", required=True))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
