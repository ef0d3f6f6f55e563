"""Time render_gaussians: 50k random Gaussians at 224x224 on the CPU (torch backend), D=3 and D=32,
plus forward+backward, and gsplat on CUDA when available. Writes JSON (``--out``) and prints it.

    python bench/bench_render.py [--out bench/results/render.json] [--n 50000] [--size 224]

The scene mimics a per-pixel Gaussian prediction: centres uniform over the image at depths 2-8 m,
std-devs log-normal around ``--px-sigma`` pixels. Wall times are medians of ``--runs`` after a
warm-up; process CPU times are reported too (wall time is unreliable on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

try:
    from eps3d_ros.render import has_gsplat, render_gaussians
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from eps3d_ros.render import has_gsplat, render_gaussians


def make_scene(n: int, size: int, d: int, px_sigma: float, seed: int = 0) -> dict:
    """n Gaussians in front of one camera (identity pose, f = size), features [n, d]."""
    g = torch.Generator().manual_seed(seed)
    f = float(size)
    K = torch.tensor([[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]])
    uv = torch.rand(n, 2, generator=g) * size
    z = 2.0 + 6.0 * torch.rand(n, 1, generator=g)
    means = torch.cat([(uv - size / 2) / f * z, z], 1)  # [n, 3]
    scales = (px_sigma * z / f) * torch.exp(0.5 * torch.randn(n, 3, generator=g))  # ~px_sigma pixels
    return dict(
        means=means, opacities=0.05 + 0.9 * torch.rand(n, generator=g), features=torch.rand(n, d, generator=g),
        viewmats=torch.eye(4)[None], Ks=K[None], width=size, height=size,
        scales=scales, rotations=torch.randn(n, 4, generator=g),
    )


def timeit(fn, runs: int, sync=lambda: None) -> dict:
    fn()  # warm-up
    sync()
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"median_s": statistics.median(wall), "runs_s": [round(x, 4) for x in wall],
            "cpu_median_s": statistics.median(cpu)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/render.json")
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--px-sigma", type=float, default=1.5, help="median Gaussian std-dev in pixels")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--no-backward", action="store_true", help="skip the forward+backward timing")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    res: dict = {
        "config": {"n": args.n, "size": args.size, "runs": args.runs, "px_sigma": args.px_sigma,
                   "torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                   "machine": platform.processor() or platform.machine(), "load_avg": os.getloadavg()},
        "torch_cpu": {},
    }
    for d in (3, 32):
        scene = make_scene(args.n, args.size, d, args.px_sigma)
        out = {}

        def fwd():
            with torch.no_grad():
                out["r"] = render_gaussians(**scene, backend="torch")

        res["torch_cpu"][f"D{d}"] = timeit(fwd, args.runs)
        res["torch_cpu"][f"D{d}"]["mean_alpha"] = out["r"].alphas.mean().item()
    if not args.no_backward:
        scene = make_scene(args.n, args.size, 3, args.px_sigma)
        names = ("means", "opacities", "features", "scales", "rotations")
        leaves = {k: scene[k].requires_grad_(True) for k in names}

        def fwd_bwd():
            r = render_gaussians(**scene, backend="torch")
            torch.autograd.grad(r.features.sum() + r.depths.sum(), list(leaves.values()))

        res["torch_cpu"]["D3_forward_backward"] = timeit(fwd_bwd, max(1, args.runs // 2))

    if has_gsplat():
        res["gsplat_cuda"] = {"device": torch.cuda.get_device_name()}
        for d in (3, 32):
            scene = {k: v.cuda() if isinstance(v, torch.Tensor) else v
                     for k, v in make_scene(args.n, args.size, d, args.px_sigma).items()}
            res["gsplat_cuda"][f"D{d}"] = timeit(lambda: render_gaussians(**scene, backend="gsplat"),
                                                 max(args.runs, 20), sync=torch.cuda.synchronize)
    else:
        res["gsplat_cuda"] = None  # needs CUDA and gsplat

    text = json.dumps(res, indent=2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
