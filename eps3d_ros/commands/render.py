"""``eps3d render SCENE --out DIR``: PNG renders of a scene file's views (RGB, semantic, instance, legend).

Files: ``view_NN_rgb.png``, ``view_NN_semantic.png``, ``view_NN_instance.png`` at the camera image size
times ``--scale``, ``legend.png`` and ``overview.png`` (see :mod:`eps3d_ros.io.figures`). Views are
rendered in batches under the renderer's memory budget (``eps3d_ros.render.DEFAULT_MAX_BYTES``), with a
progress bar (on stderr) when there are several batches.
"""

from __future__ import annotations

import argparse

from .guard import EXIT_OK, UserError, guarded
from .model_folder import check_device

HELP = "render a scene file's views to PNG (RGB, semantic and instance maps, legend)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("render", help=HELP, description=HELP)
    p.add_argument("scene", metavar="SCENE", help="scene file written by `eps3d run` / `eps3d demo`")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs (created)")
    p.add_argument("--views", metavar="I,J", help="comma-separated view indices (default: all)")
    p.add_argument("--scale", type=float, default=1.0, help="render at this multiple of the camera image size (default 1)")
    p.add_argument("--min-alpha", type=float, default=0.5,
                   help="label maps show the background where the rendered opacity is below this (default 0.5)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (shown for renders of many views)")
    p.set_defaults(func=run)
    return p


@guarded
def run(args: argparse.Namespace) -> int:
    views = None
    if args.views:
        try:
            views = [int(v) for v in args.views.split(",") if v.strip()]
        except ValueError:
            raise UserError(f"--views takes comma-separated integers such as 0,2; got {args.views!r}") from None
    if not 0 < args.scale <= 16:
        raise UserError(f"--scale must be in (0, 16], got {args.scale}")
    from ..io.figures import write_figures
    from ..io.scene_file import load_scene
    from ..settings.tree import ModelSourceConfig
    from ..process.threads import set_threads

    set_threads(ModelSourceConfig().threads)  # as the node: all cores but one (no OpenMP collapse under load)

    sf = load_scene(args.scene)
    if sf.cameras is None or sf.cameras.num_views == 0:
        raise UserError(f"{args.scene} has no cameras to render from")
    title = f"{args.scene} ({sf.frame_id}{'' if sf.scale_known else ', scale unknown'})"
    res = write_figures(sf.scene, sf.cameras, args.out, views=views, scale=args.scale, min_alpha=args.min_alpha,
                        title=title, device=check_device(args.device), progress=not args.no_progress)
    h, w = res["size"]
    print(f"wrote {len(res['files'])} PNGs to {args.out} ({len(res['views'])} views of {h}x{w} (HxW); "
          f"rendered coverage {', '.join(f'{c:.0%}' for c in res['coverage'])})")
    return EXIT_OK
