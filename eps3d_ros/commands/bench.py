"""``eps3d bench [--quick]``: time the pipeline's stages on this machine and print JSON.

Stages: synthetic scene generation, model load + warm-up, network forward, alignment, panoptic scene
construction, text query latency (first = encoding a new text, cached = the LRU hit), rendering all
views, scene file write/read and PLY export. The forward pass and the light stages are medians of
``--repeats`` runs; the reconstruction stages (``reconstruction_s``) come from one run after warm-up.
Without ``--model`` the network is the ``tiny`` preset with random weights and the text encoder the
tiny random one (timings only). The fuller benchmarks are the scripts in ``bench/`` of the repository.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .arguments import parse_size
from .guard import EXIT_OK, UserError, guarded
from .model_folder import check_device, load_bundle

HELP = "time the pipeline's stages on this machine (JSON)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help=HELP,
                              description=HELP + ". --quick: 2 views of 112x112, 2 repeats, 2000 HDBSCAN samples.")
    p.add_argument("--quick", action="store_true", help="small sizes, a few seconds on 2 CPU cores")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the tiny preset with random weights)")
    p.add_argument("--text-model", metavar="ARCH", help="text encoder architecture (default: the model folder's, "
                                                        "else the tiny random one)")
    p.add_argument("--text-weights", metavar="FILE|TAG", help="text encoder weights ('random' for random)")
    p.add_argument("--views", type=int, help="views per reconstruction (default 4, quick 2)")
    p.add_argument("--size", metavar="HxW", help="image size (default 224x224, quick 112x112)")
    p.add_argument("--repeats", type=int, help="repeats of the timed stages (default 5, quick 2)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")
    p.add_argument("--json", metavar="FILE", help="also write the result here")
    p.set_defaults(func=run)
    return p


def _config(args: argparse.Namespace, size: tuple[int, int], views: int, device: str) -> Any:
    """The run's settings: the model given (else the tiny preset with random weights) and the synthetic classes."""
    import torch

    from ..data.scene_layout import CLASS_NAMES, STUFF_CLASSES
    from ..eval.model_eval import RECOMMENDED_SETTINGS
    from ..settings.dotted import set_dotted
    from ..settings.tree import Eps3dConfig

    cfg = Eps3dConfig()
    cfg.model.device = device
    if args.model:
        cfg.model.weights = str(Path(args.model).expanduser())
    else:
        cfg.model.allow_random_weights = True
        torch.manual_seed(0)
    if args.text_model:
        cfg.text.model = args.text_model
    if args.text_weights is not None:
        cfg.text.pretrained = args.text_weights or "random"
    cfg.pipeline.image_height, cfg.pipeline.image_width = size
    cfg.pipeline.window_size = views
    cfg.panoptic.vocabulary = list(CLASS_NAMES[1:])
    cfg.panoptic.stuff = [CLASS_NAMES[i] for i in STUFF_CLASSES]
    if not args.model:
        set_dotted(cfg, RECOMMENDED_SETTINGS)  # what a model trained here would recommend
    if args.quick:
        cfg.panoptic.clustering.max_samples = 2000
    return cfg


def _median(fn, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 5), "min_s": round(min(times), 5), "runs": repeats}


@guarded
def run(args: argparse.Namespace) -> int:
    views = args.views or (2 if args.quick else 4)
    size = parse_size(args.size or ("112x112" if args.quick else "224x224"))
    repeats = args.repeats or (2 if args.quick else 5)
    if views < 1 or repeats < 1:
        raise UserError("--views and --repeats must be >= 1")
    if args.json and not Path(args.json).expanduser().parent.exists():
        raise UserError(f"--json {args.json}: the folder does not exist")
    device = check_device(args.device)
    if args.model:
        load_bundle(Path(args.model).expanduser())  # a clear error before anything loads
    import torch

    from ..data.synthetic import generate_scene
    from ..frames.frame import synthetic_frames
    from ..io.figures import render_views
    from ..io.ply import write_gaussian_ply
    from ..io.scene_file import load_scene, reconstruct_scene_file, save_scene
    from ..pipeline.loading import load_reconstructor

    res: dict = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                             "cpu_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()},
                 "config": {"views": views, "height": size[0], "width": size[1], "repeats": repeats,
                            "model": args.model or "tiny preset, random weights"}}
    t = {}
    t0 = time.perf_counter()
    syn = generate_scene(seed=0, num_views=views, height=size[0], width=size[1])
    frames = synthetic_frames(syn)
    t["synthetic_scene_s"] = time.perf_counter() - t0

    cfg = _config(args, size, views, device)
    t0 = time.perf_counter()
    rec = load_reconstructor(cfg)
    model = rec.model
    t["load_s"] = time.perf_counter() - t0
    res["model"] = {"parameters": model.num_parameters, "device": device, "text_encoder": rec.config.text.model}

    images = torch.rand(1, views, 3, *size, device=device)

    def forward() -> None:
        with torch.inference_mode():
            model(images)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    forward()  # warm-up
    res["forward"] = _median(forward, repeats)

    sf = reconstruct_scene_file(rec, frames)[0]  # one run (the forward above was the warm-up)
    res["reconstruction_s"] = {k: round(v, 4) for k, v in sf.info["timings_s"].items()}
    scene = sf.scene
    res["scene"] = {"gaussians": scene.num_gaussians, "objects": len(scene.objects)}

    counter = iter(range(10**9))
    res["query_new_text"] = _median(lambda: scene.query(f"object {next(counter)}"), repeats)
    scene.query("mug")
    res["query_cached_text"] = _median(lambda: scene.query("mug"), max(repeats, 20))
    res["render_all_views"] = _median(lambda: render_views(scene, sf.cameras, device=device), repeats)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.eps3d"
        res["scene_file_write"] = _median(lambda: save_scene(path, sf), repeats)
        res["scene_file_read"] = _median(lambda: load_scene(path), repeats)
        res["scene_file_bytes"] = path.stat().st_size
        res["ply_write"] = _median(lambda: write_gaussian_ply(Path(tmp) / "scene.ply", scene), repeats)
    res.update({k: round(v, 4) for k, v in t.items()})
    text_out = json.dumps(res, indent=2)
    print(text_out)
    if args.json:
        Path(args.json).expanduser().write_text(text_out + "\n")
    return EXIT_OK
