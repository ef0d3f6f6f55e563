"""``eps3d export SCENE --ply OUT``: a scene file as a 3D Gaussian splatting PLY (splat viewers open it).

Layout (see :mod:`eps3d_ros.io.ply`): ``x y z nx ny nz f_dc_0..2 f_rest_* opacity scale_0..2 rot_0..3``
(3DGS conventions: opacity logit, log scales, wxyz quaternions, channel-major SH) plus uint32
``label`` and ``instance``; the header's comments list the vocabulary.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .guard import EXIT_OK, UserError, guarded
from .report import file_size

HELP = "write a scene file as a 3D Gaussian splatting PLY (+ label, instance)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help=HELP, description=HELP)
    p.add_argument("scene", metavar="SCENE", help="scene file written by `eps3d run` / `eps3d demo`")
    p.add_argument("--ply", required=True, metavar="OUT", help="PLY file to write")
    p.add_argument("--sh-degree", type=int, default=3, choices=range(5), metavar="D",
                   help="spherical-harmonic degree to write, 0-4 (default 3: the 45 f_rest most viewers expect)")
    p.add_argument("--min-opacity", type=float, default=0.0, metavar="A",
                   help="leave out Gaussians more transparent than A (default 0: all)")
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    out = Path(args.ply).expanduser()
    if out.is_dir():
        raise UserError(f"--ply {out} is a folder: give a file name such as {out / 'scene.ply'}")
    if not out.parent.exists():
        raise UserError(f"--ply {out}: the folder {out.parent} does not exist")
    from ..io.ply import write_gaussian_ply
    from ..io.scene_file import load_scene

    sf = load_scene(args.scene)
    info = write_gaussian_ply(out, sf.scene, sh_degree=args.sh_degree, min_opacity=args.min_opacity)
    print(f"wrote {out} ({file_size(out)}): {info['gaussians']} Gaussians, SH degree {info['sh_degree']}, "
          f"frame '{sf.frame_id}' ({'metres' if sf.scale_known else 'scale unknown'})")
    return EXIT_OK
