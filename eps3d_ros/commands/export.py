"""``eps3d export SCENE --out FILE [--format ply]``: a scene file in another format (``--ply FILE`` is short for
``--format ply --out FILE``).

Formats (:data:`FORMATS`; the suffix of ``--out`` picks one when ``--format`` is not given):

* ``ply`` — 3D Gaussian splatting PLY (see :mod:`eps3d_ros.io.ply`): ``x y z nx ny nz f_dc_0..2 f_rest_* opacity
  scale_0..2 rot_0..3`` (3DGS conventions: opacity logit, log scales, wxyz quaternions, channel-major SH) plus
  uint32 ``label`` and ``instance``; the header's comments list the vocabulary. Splat viewers open it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .guard import EXIT_OK, UserError, guarded
from .report import file_size

HELP = "write a scene file in another format (3D Gaussian splatting PLY + label, instance)"


def _write_ply(out: Path, sf: Any, args: argparse.Namespace) -> str:
    from ..io.ply import write_gaussian_ply

    try:
        info = write_gaussian_ply(out, sf.scene, sh_degree=args.sh_degree, min_opacity=args.min_opacity)
    except ValueError as e:
        if "min_opacity" in str(e):
            raise UserError(str(e).replace("min_opacity", "--min-opacity", 1)) from None
        raise
    what = f"{info['gaussians']} Gaussians, SH degree {info['sh_degree']}"
    if info["scene_sh_degree"] < info["sh_degree"]:
        what += (f" (the scene has degree {info['scene_sh_degree']}: the higher bands are written as zeros, the colour "
                 "is view-independent)")
    return what


# format -> (file suffixes, writer(out, scene file, args) -> what was written)
FORMATS: dict[str, tuple[tuple[str, ...], Callable[[Path, Any, argparse.Namespace], str]]] = {
    "ply": ((".ply",), _write_ply),
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help=HELP, description=HELP)
    p.add_argument("scene", metavar="SCENE", help="scene file written by `eps3d run` / `eps3d demo`")
    p.add_argument("--out", metavar="FILE", help="file to write; its suffix picks the format unless --format is given")
    p.add_argument("--format", choices=sorted(FORMATS), help="what to write (default: from the suffix of --out)")
    p.add_argument("--ply", metavar="FILE", help="short for --format ply --out FILE")
    ply = p.add_argument_group("ply")
    ply.add_argument("--sh-degree", type=int, default=3, choices=range(5), metavar="D",
                     help="spherical-harmonic degree to write, 0-4 (default 3: the 45 f_rest most viewers expect)")
    ply.add_argument("--min-opacity", type=float, default=0.0, metavar="A",
                     help="leave out Gaussians more transparent than A (default 0: all)")
    p.set_defaults(func=run)
    return p


def _target(args: argparse.Namespace) -> tuple[Path, str]:
    """``(output file, format)`` from ``--out`` / ``--format`` / ``--ply``."""
    if args.ply is not None:
        if args.out is not None or args.format not in (None, "ply"):
            raise UserError("--ply FILE is short for --format ply --out FILE: give one or the other")
        args.out, args.format = args.ply, "ply"
    if args.out is None:
        raise UserError("give the file to write: --out FILE (or --ply FILE)")
    out = Path(args.out).expanduser()
    fmt = args.format
    if fmt is None:
        fmt = next((name for name, (suffixes, _) in FORMATS.items() if out.suffix.lower() in suffixes), None)
        if fmt is None:
            known = ", ".join(f"{name} ({' '.join(s)})" for name, (s, _) in sorted(FORMATS.items()))
            raise UserError(f"--out {out}: no format writes '{out.suffix or 'no suffix'}' files; give --format "
                            f"({known})")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file name such as {out / ('scene' + FORMATS[fmt][0][0])}")
    if not out.parent.exists():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist")
    return out, fmt


@guarded
def run(args: argparse.Namespace) -> int:
    out, fmt = _target(args)
    from ..io.scene_file import load_scene

    sf = load_scene(args.scene)
    what = FORMATS[fmt][1](out, sf, args)
    print(f"wrote {out} ({fmt}, {file_size(out)}): {what}, frame '{sf.frame_id}' "
          f"({'metres' if sf.scale_known else 'scale unknown'})")
    return EXIT_OK
