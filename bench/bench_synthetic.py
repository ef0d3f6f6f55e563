"""Benchmark synthetic scene generation (layout + CPU ray casting) on this machine.

    python bench/bench_synthetic.py [--configs 4x224 8x518] [--repeats 5] [--seed 0]
                                    [--out bench/results/synthetic.json]

Each config is VIEWSxSIZE (square images). Times are the median of ``--repeats`` runs of
``generate_scene`` (seeds ``seed .. seed + repeats - 1``, so different layouts) after one warm-up.
Writes JSON (and prints it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from eps3d_ros.data.synthetic import generate_scene


def parse_config(text: str) -> tuple[int, int]:
    try:
        views, size = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"config must be VIEWSxSIZE (e.g. 4x224), got {text!r}") from None
    return views, size


def time_config(views: int, size: int, repeats: int, seed: int) -> dict:
    generate_scene(seed, views, size, size)  # warm-up
    times, prims, objects = [], [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        scene = generate_scene(seed + r, views, size, size)
        times.append(time.perf_counter() - t0)
        prims.append(len(scene.primitives))
        objects.append(len(scene.objects))
    return {
        "views": views, "height": size, "width": size, "runs": repeats,
        "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
        "median_s_per_view": statistics.median(times) / views,
        "mean_primitives": float(np.mean(prims)), "mean_objects": float(np.mean(objects)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", type=parse_config, nargs="+", default=[(4, 224), (8, 518)])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench/results/synthetic.json"))
    args = p.parse_args()
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    result = {
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "processor": platform.processor() or platform.machine()},
        "results": [time_config(v, s, args.repeats, args.seed) for v, s in args.configs],
    }
    text = json.dumps(result, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
