"""Benchmark the network: parameters per preset and ``tiny`` forward time on this machine.

    python bench/bench_model.py [--views 2 4 8] [--size 224] [--repeats 5] [--out bench/results/model.json]

Writes JSON (and prints it). Times are the median of ``--repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from eps3d_ros.model import EPS3D, EPS3DConfig, list_presets
from eps3d_ros.model.checkpoint import expected_shapes


def parameter_counts() -> dict[str, int]:
    out = {}
    for name in list_presets():
        shapes = expected_shapes(EPS3DConfig.from_preset(name))
        out[name] = int(sum(torch.Size(s).numel() for s in shapes.values()))
    return out


def time_forward(model: EPS3D, views: int, size: int, repeats: int, device: str) -> dict[str, float]:
    x = torch.rand(1, views, 3, size, size, device=device)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x)
            if device == "cuda":
                torch.cuda.synchronize()
            if i:  # the first run is the warm-up
                times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": repeats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--views", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=Path("bench/results/model.json"))
    args = p.parse_args()
    torch.manual_seed(0)
    model = EPS3D(EPS3DConfig.from_preset(args.preset)).to(args.device).eval()
    result = {
        "machine": {"cpu_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__, "device": args.device,
                    "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None},
        "parameters": parameter_counts(),
        "forward": {
            "preset": args.preset, "height": args.size, "width": args.size,
            "views": {str(v): time_forward(model, v, args.size, args.repeats, args.device) for v in args.views},
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
