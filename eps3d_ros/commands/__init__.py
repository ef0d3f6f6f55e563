"""The ``eps3d`` commands, one module each: ``add_parser(subparsers)`` and ``run(args) -> int``. They parse and
validate, then call library functions; heavy imports (torch, rclpy) happen inside ``run`` so that
``eps3d --help`` stays fast. Shared parts: :mod:`.guard` (exit codes, user errors), :mod:`.arguments`,
:mod:`.dataset_args` (the options of commands that read datasets), :mod:`.model_folder`, :mod:`.report`;
:mod:`.evaluate_dataset` is ``eps3d evaluate --dataset``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["COMMANDS", "add_parsers"]

COMMANDS = ("demo", "run", "query", "export", "render", "bench", "train", "evaluate", "inspect-checkpoint",
            "presets", "data", "teachers", "learning-curve")


def add_parsers(subparsers: Any) -> None:
    """Register every command of :data:`COMMANDS` on an ``argparse`` subparsers object."""
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name.replace('-', '_')}").add_parser(subparsers)
